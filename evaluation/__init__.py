"""Quarterly evaluation (考核): KPI schemes, network-wide computation, publication with stored
reports, acknowledgement and appeals, consequences, and HQ's own service level."""


def init_app(app) -> None:
    from evaluation import (  # noqa: F401 - job handlers
        cli,
        compute,
        demo,
        profile,
        publication,
        views_hq,  # noqa: F401 - HQ's routes on the blueprint
        widgets,
    )
    from evaluation.models import (
        APPEAL_STATUS_LABELS,
        FINAL_REASON_LABELS,
        PROPOSAL_KIND_LABELS,
        PROPOSAL_STATUS_LABELS,
        QUARTER_STATUS_LABELS,
        RESULT_STATUS_LABELS,
    )
    from evaluation.views import bp

    app.register_blueprint(bp)
    cli.init_app(app)
    demo.register()
    from evaluation import synth  # noqa: F401 - registers its synthetic network generator
    widgets.register()
    profile.register()
    _register_grade_source()

    from evaluation.consequences import REASON_LABELS
    from evaluation.kpis import KPIS

    # Globals rather than a context processor: the area's macros use them when imported.
    app.jinja_env.globals.update({
        "evl_num": format_2, "evl_num1": format_1, "evl_link": link_if_known,
        "evl_kpi_labels": {k.code: k.label for k in KPIS},
        "evl_quarter_statuses": QUARTER_STATUS_LABELS,
        "evl_result_statuses": RESULT_STATUS_LABELS,
        "evl_appeal_statuses": APPEAL_STATUS_LABELS,
        "evl_proposal_kinds": PROPOSAL_KIND_LABELS,
        "evl_proposal_statuses": PROPOSAL_STATUS_LABELS,
        "evl_final_reasons": FINAL_REASON_LABELS,
        "evl_reasons": REASON_LABELS})


def format_2(value) -> str:
    """A score, points or raw value: two places, in the reader's locale."""
    from decimal import Decimal

    from flask_babel import format_decimal

    return format_decimal(Decimal(str(value)), format="#,##0.00")


def format_1(value) -> str:
    from decimal import Decimal

    from flask_babel import format_decimal

    return format_decimal(Decimal(str(value)), format="#,##0.0")


def link_if_known(endpoint: str, **values) -> str | None:
    """A URL to another area's page, or None when that area is not installed."""
    from flask import current_app, url_for

    return url_for(endpoint, **values) if endpoint in current_app.view_functions else None


def _register_grade_source() -> None:
    """Final grades feed the settlement area's grade line (it asks by a signal)."""
    from settlement.api import grade_wanted

    grade_wanted.connect(_answer_grade, weak=False)


def _answer_grade(_sender, *, agency_id: int, year: int, quarter: int) -> str | None:
    from evaluation.services import final_grade

    return final_grade(agency_id, year, quarter)
