"""Dispatch: the network's clock. So far the network calendar on which SLA clocks run
(working hours per weekday, China's statutory holidays and adjusted workdays, HQ's exceptions)
and its business-hours arithmetic (dispatch/calendar.py); service requests, offers,
appointments and SLA milestones come next (issue #18)."""


def init_app(app) -> None:
    # The tables and pages: the calendar, service requests, coverage areas.
    from dispatch import (  # noqa: F401
        coverage,
        demo,
        models,
        requests,
        views_coverage,
        views_requests,
    )
    from dispatch.views import bp

    app.register_blueprint(bp)
    demo.register()
