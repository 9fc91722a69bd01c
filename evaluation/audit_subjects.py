"""How the audit log names evaluation's records: quarters by period (2026Q3), an agency's
result, appeal, inspection, proposal or rating by period and agency code."""
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, cast, select

from evaluation.kpis import KPIS
from evaluation.models import (
    APPEAL_STATUS_LABELS,
    PROPOSAL_KIND_LABELS,
    PROPOSAL_STATUS_LABELS,
    QUARTER_STATUS_LABELS,
    RESULT_STATUS_LABELS,
    Appeal,
    HqRating,
    Inspection,
    Proposal,
    Quarter,
    Result,
    Scheme,
)
from portal.audit.subjects import Field, ref, state, subject
from tenants.models import Agency

KPI_LABELS = {k.code: k.label for k in KPIS}


def _period(quarter=Quarter):
    return cast(quarter.year, String) + "Q" + cast(quarter.quarter, String)


def _of_quarter(model):
    """"2026Q3 · SH-C01": the quarter of a record and its agency (the link: its result)."""
    return select(model.id, _period() + " · " + Agency.code, Result.id).join(
        Quarter, Quarter.id == model.quarter_id).join(Agency, Agency.id == model.agency_id
    ).outerjoin(Result, (Result.agency_id == model.agency_id)
                & (Result.quarter_id == model.quarter_id))


def _of_result(model):
    """A record about a result: the result's quarter and agency, linking to the result."""
    return select(model.id, _period() + " · " + Agency.code, model.result_id).join(
        Result, (Result.agency_id == model.agency_id) & (Result.id == model.result_id)).join(
        Quarter, Quarter.id == Result.quarter_id).join(Agency, Agency.id == model.agency_id)


def register() -> None:
    results = {
        "status": state("evaluation.result_status", _l("Status"), RESULT_STATUS_LABELS),
        "result_id": ref("Result", _l("Result")),
        "result_score": Field(_l("Score")),
        "kpi_code": state("evaluation.kpi", _l("KPI"), KPI_LABELS),
        "resolution": Field(_l("Resolution")),
        # The files' SHA-256, named as every page names it (never the content fingerprint).
        "reports": Field(_l("Reports (file SHA-256)")),
        "ranking": Field(_l("Network ranking (file SHA-256)")),
        "scheme_version": Field(_l("KPI scheme version")),
        "agencies": Field(_l("Agencies")),
        "graded": Field(_l("Graded")),
        "grades": Field(_l("Grades")),
        "deemed_accepted": Field(_l("Deemed accepted")),
    }
    subject("Quarter", lambda: select(Quarter.id, _period()), "evaluation.quarter",
            "quarter_id", noun=_l("Quarter"), model=Quarter,
            fields={**results, "status": state("evaluation.quarter_status", _l("Status"),
                                               QUARTER_STATUS_LABELS)})
    subject("Result", lambda: select(Result.id, _period() + " · " + Agency.code).join(
                Quarter, Quarter.id == Result.quarter_id).join(
                Agency, Agency.id == Result.agency_id),
            "evaluation.result", "result_id", noun=_l("Evaluation result"), model=Result,
            fields=results)
    subject("Appeal", lambda: _of_result(Appeal), "evaluation.result", "result_id",
            actions="evaluation.", noun=_l("Evaluation appeal"), model=Appeal,
            fields={**results, "status": state("evaluation.appeal_status", _l("Status"),
                                               APPEAL_STATUS_LABELS)})
    subject("Proposal", lambda: _of_result(Proposal), "evaluation.result", "result_id",
            noun=_l("Consequence proposal"), model=Proposal,
            fields={**results,
                    "kind": state("evaluation.proposal_kind", _l("Proposal"),
                                  PROPOSAL_KIND_LABELS),
                    "status": state("evaluation.proposal_status", _l("Status"),
                                    PROPOSAL_STATUS_LABELS)})
    subject("Inspection", lambda: _of_quarter(Inspection), "evaluation.result", "result_id",
            noun=_l("On-site inspection"), model=Inspection,
            fields={**results, "score": Field(_l("Inspection score"))})
    subject("HqRating", lambda: _of_quarter(HqRating), None, None,
            noun=_l("Rating of HQ"), model=HqRating,
            fields={"parts": Field(_l("Parts")), "settlement": Field(_l("Settlement")),
                    "support": Field(_l("Technical support")),
                    "training": Field(_l("Training"))})
    subject("Scheme", select(Scheme.id, "v" + cast(Scheme.version, String)),
            "evaluation.scheme", "scheme_id", noun=_l("KPI scheme"), model=Scheme,
            fields={"effective": Field(_l("Effective from")), "kpis": Field(_l("KPIs"))})
