"""Dispatch (统一派单): from HQ's hotline to the agency's door, on a running clock.

The network calendar and its business-hours arithmetic (calendar.py, network_calendar.py);
agencies' coverage areas (coverage.py); the hotline's service requests (requests.py); offers
to agencies (offers.py); appointments (appointments.py); SLA targets and clocks (sla.py)."""


def init_app(app) -> None:
    # The tables and pages: the calendar, service requests, coverage areas.
    from dispatch import (  # noqa: F401
        appointments,
        coverage,
        demo,
        models,
        offers,
        requests,
        sla,
        synth,
        views_coverage,
        views_offers,
        views_requests,
        views_sla,
        views_status,
    )
    from dispatch.views import bp

    app.register_blueprint(bp)
    demo.register()
    sla.connect()
