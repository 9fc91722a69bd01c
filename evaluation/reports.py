"""What a report says, as plain values, and the PDFs rendered from it.

One hash story. The value an auditor compares is the *file SHA-256*: the SHA-256 of the PDF's
bytes, computed when the portal issues the file and shown under that name beside each
download, on the "Verify a report" page and in the audit log. A PDF cannot print the hash of
its own bytes, so its footer prints something else under another name: the *content
fingerprint*, a digest of the report's figures (a plain, language-free record of numbers and
codes: the same for the Chinese and English files). It is never called a SHA-256 where people
read it, and never matches a file's.
"""
import hashlib
import json
from contextlib import contextmanager
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app, has_request_context
from flask_babel import force_locale
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from evaluation import charts, kpis
from evaluation.consequences import REASON_LABELS
from evaluation.models import (
    PROPOSAL_KIND_LABELS,
    KpiValue,
    Proposal,
    ProposalStatus,
    Quarter,
    QuarterStatus,
    Result,
    ServiceLevel,
)
from portal.clock import local_day, local_today
from portal.extensions import db
from portal.periods import Period
from tenants.issuer import render_document

LOCALES = ("zh_CN", "en")
TENTH = Decimal("0.1")


def mean_of(seconds: int, count: int, unit: int) -> Decimal | None:
    """Mean duration in hours (unit 3600) or days (86400), one place; None without data."""
    if not count:
        return None
    return (Decimal(seconds) / count / unit).quantize(TENTH, rounding=ROUND_HALF_UP)


def service_figures(parts, settlement, verdict) -> dict:
    """HQ's service from (count, seconds) pairs: parts hours, settlement and verdict days."""
    return {"parts_hours": mean_of(parts[1], parts[0], 3600), "parts_count": parts[0],
            "settlement_days": mean_of(settlement[1], settlement[0], 86400),
            "settlement_count": settlement[0],
            "verdict_days": mean_of(verdict[1], verdict[0], 86400), "verdict_count": verdict[0]}


def level_figures(level: ServiceLevel | None) -> dict:
    if level is None:
        return service_figures((0, 0), (0, 0), (0, 0))
    return service_figures((level.parts_count, level.parts_seconds),
                           (level.settlement_count, level.settlement_seconds),
                           (level.verdict_count, level.verdict_seconds))


def result_service(result: Result) -> dict:
    return service_figures((result.hq_parts_count, result.hq_parts_seconds),
                           (result.hq_settlement_count, result.hq_settlement_seconds),
                           (result.hq_verdict_count, result.hq_verdict_seconds))


# --- loading everything the reports of many results need, in a fixed number of queries ------------


def load_context(quarter: Quarter, results: list[Result]) -> dict:
    """KPI figures, trends, proposals and service levels of `results` (five queries). The
    trend holds published (or final) quarters only, beside this one as it stands: nothing
    of a draft reaches a report or a proposal through a later quarter (§2.5)."""
    ids = [r.id for r in results] or [0]
    agency_ids = [r.agency_id for r in results] or [0]
    values: dict[int, list] = {}
    for value in db.session.scalars(select(KpiValue).where(KpiValue.result_id.in_(ids))
                                    .order_by(KpiValue.result_id, KpiValue.position)):
        values.setdefault(value.result_id, []).append(value)
    period = Period(quarter.year, quarter.quarter)
    earlier = [p.index for p in period.last(4)]
    trend: dict[int, dict] = {}
    for agency_id, index, score, grade in db.session.execute(
            select(Result.agency_id, Quarter.year * 4 + Quarter.quarter - 1, Result.score,
                   Result.grade).join(Quarter, Quarter.id == Result.quarter_id)
            .where(Result.agency_id.in_(agency_ids), Quarter.status != QuarterStatus.DRAFT,
                   (Quarter.year * 4 + Quarter.quarter - 1).in_(earlier))):
        trend.setdefault(agency_id, {})[index] = (score, grade)
    proposals: dict[int, list] = {}
    for proposal in db.session.scalars(select(Proposal).where(
            Proposal.result_id.in_(ids), Proposal.status != ProposalStatus.WITHDRAWN)
            .order_by(Proposal.id)):
        proposals.setdefault(proposal.result_id, []).append(proposal)
    levels = {lv.region_id: lv for lv in db.session.scalars(
        select(ServiceLevel).where(ServiceLevel.quarter_id == quarter.id))}
    return {"values": values, "trend": trend, "proposals": proposals, "levels": levels,
            "period": period, "scheme": quarter.scheme}


def trend_points(context: dict, result: Result) -> list[tuple[str, Decimal | None, str | None]]:
    """The last four quarters of the agency, oldest first (this one as it stands now)."""
    known = context["trend"].get(result.agency_id, {})
    known[context["period"].index] = (result.score, result.grade)
    return [(p.label, *known.get(p.index, (None, None))) for p in context["period"].last(4)]


def issue_day(quarter: Quarter) -> date:
    """The day a quarter's reports are dated: the network's local day of its publication
    (never the day they are rendered or read); a draft's preview is dated today."""
    return local_day(quarter.published_at) if quarter.published_at else local_today()


def issued_day(version: int, created_at: datetime, quarter: Quarter) -> date:
    """The day a stored file was issued, as it prints it: version 1 is dated the local day of
    its quarter's publication, a later version the local day it was issued (re-issued)."""
    if version == 1 and quarter.published_at is not None:
        return local_day(quarter.published_at)
    return local_day(created_at)


def superseding(version: int, issued_on: date) -> dict:
    """What a new version says it replaces: the version before it and that one's issue day."""
    return {"version": version, "issued_on": issued_on.isoformat()}


def report_figures(quarter: Quarter, result: Result, context: dict, *, version: int,
                   proposals: list | None = None, issued_on: date | None = None,
                   supersedes: dict | None = None) -> dict:
    """The language-free record of one agency's report (what the fingerprint covers), dated
    `issued_on` (by default the quarter's publication day); a later version names the one it
    `supersedes` (see `superseding`)."""
    agency = result.agency
    proposals = context["proposals"].get(result.id, []) if proposals is None else proposals
    return {
        "kind": "agency", "number": report_number(quarter, agency.code, version),
        "version": version, "period": quarter.label,
        "issued_on": (issued_on or issue_day(quarter)).isoformat(), "supersedes": supersedes,
        "agency": {"code": agency.code, "name": agency.legal_name, "tier": result.tier_at,
                   "region_zh": result.region.name_zh, "region_en": result.region.name_en},
        "score": _s(result.score), "grade": result.grade,
        "rank_national": [result.rank_national, result.rank_national_of],
        "rank_region": [result.rank_region, result.rank_region_of],
        "previous_grade": result.previous_grade,
        "elimination_warning": result.elimination_warning,
        "coverage_gaps": result.coverage_gaps,
        "scheme_version": context["scheme"].version, "sla": context["scheme"].sla_minutes,
        **({"dispatch_clocks": True} if context["scheme"].dispatch_clocks else {}),
        "kpis": [_kpi_figures(v) for v in context["values"].get(result.id, [])],
        "trend": [[label, _s(score), grade] for label, score, grade in
                  trend_points(context, result)],
        "proposals": [{"kind": p.kind, "from_tier": p.from_tier, "to_tier": p.to_tier,
                       "to_status": p.to_status, "reasons": p.reason_codes}
                      for p in proposals],
        "hq": {"agency": _plain(result_service(result)),
               "region": _plain(level_figures(context["levels"].get(result.region_id))),
               "network": _plain(level_figures(context["levels"].get(None)))},
    }


def _kpi_figures(v: KpiValue) -> dict:
    """One KPI of a report; a timed KPI of a version with the clocks adds how many of its
    orders they measured (absent otherwise, so that older reports' figures are unchanged)."""
    out = {"code": v.code, "numerator": v.numerator, "denominator": v.denominator,
           "raw": _s(v.raw), "points": _s(v.points), "weight": v.weight,
           "effective_weight": _s(v.effective_weight), "min_count": v.min_count,
           "sufficient": v.is_sufficient, "correction": v.correction_note}
    if v.by_clocks is not None:
        out["by_clocks"] = v.by_clocks
    return out


def ranking_figures(quarter: Quarter, results: list[Result], version: int,
                    issued_on: date | None = None, supersedes: dict | None = None) -> dict:
    rows = sorted(results, key=lambda r: (r.rank_national or 10**9, r.agency.code))
    return {"kind": "ranking", "number": report_number(quarter, "NET", version),
            "version": version, "period": quarter.label,
            "issued_on": (issued_on or issue_day(quarter)).isoformat(), "supersedes": supersedes,
            "rows": [{"code": r.agency.code, "name": r.agency.legal_name,
                      "region_zh": r.region.name_zh, "region_en": r.region.name_en,
                      "score": _s(r.score), "grade": r.grade, "rank": r.rank_national,
                      "rank_region": r.rank_region, "warning": r.elimination_warning}
                     for r in rows]}


def _s(value) -> str | None:
    return None if value is None else str(value)


def _plain(data: dict) -> dict:
    return {k: _s(v) if isinstance(v, Decimal) else v for k, v in data.items()}


def report_number(quarter: Quarter, code: str, version: int) -> str:
    return f"EVL-{quarter.label}-{code}-v{version}"


def fingerprint(figures: dict) -> str:
    canonical = json.dumps(figures, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- rendering -----------------------------------------------------------------------------------


def _labels() -> dict:
    return {"kpi": {k.code: k for k in kpis.KPIS}, "proposal_kinds": PROPOSAL_KIND_LABELS,
            "reasons": REASON_LABELS}


@contextmanager
def _page_context():
    """Templates expect a request (the navigation reads the signed-in user): jobs and
    commands render in a blank one, on the current app context, scope and session."""
    if has_request_context():
        yield
        return
    with current_app.test_request_context():
        yield


def _dates(figures: dict) -> dict:
    """The issue day and what the version supersedes, as dates for the template."""
    before = figures.get("supersedes")
    return {"issued_on": date.fromisoformat(figures["issued_on"]),
            "supersedes": before and {"version": before["version"],
                                      "issued_on": date.fromisoformat(before["issued_on"])}}


def render_report(figures: dict, locale: str) -> bytes:
    """One agency's report PDF in `locale` (the trend chart inline as SVG markup)."""
    svg = charts.trend_svg([(label, None if score is None else Decimal(score))
                            for label, score, _grade in figures["trend"]])
    with _page_context(), force_locale(locale):
        formulas = {k.code: kpis.formula_text(k, figures["sla"],
                                              figures.get("dispatch_clocks", False))
                    for k in kpis.KPIS}
        shares = {v["code"]: kpis.clock_share(v.get("by_clocks"), v["denominator"])
                  for v in figures["kpis"]}
        return render_document("evaluation/pdf/report.html", locale=locale, r=figures,
                               fp=fingerprint(figures), chart=Markup(svg),  # noqa: S704 - pygal
                               labels=_labels(), formulas=formulas, suffix=kpis.UNIT_SUFFIX,
                               shares=shares,
                               **_dates(figures))


def render_ranking(figures: dict, locale: str) -> bytes:
    with _page_context():
        return render_document("evaluation/pdf/ranking.html", locale=locale, r=figures,
                               fp=fingerprint(figures), **_dates(figures))


def pdf_set(figures: dict, render) -> list[dict]:
    """Both language versions of one report: bytes, file SHA-256, number and fingerprint."""
    out = []
    for locale in LOCALES:
        body = render(figures, locale)
        out.append({"locale": locale, "content": body, "size_bytes": len(body),
                    "sha256": hashlib.sha256(body).hexdigest(),
                    "number": f"{figures['number']}-{'ZH' if locale == 'zh_CN' else 'EN'}",
                    "fingerprint": fingerprint(figures), "version": figures["version"]})
    return out


def results_for_reports(quarter_id: int, agency_id: int | None = None, *,
                        fresh: bool = False) -> list[Result]:
    """The results of a quarter with their agencies and regions (`fresh`: as the database
    holds them now, not as this session last saw them)."""
    stmt = (select(Result).options(joinedload(Result.agency), joinedload(Result.region))
            .where(Result.quarter_id == quarter_id))
    if agency_id is not None:
        stmt = stmt.where(Result.agency_id == agency_id)
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    return list(db.session.scalars(stmt.order_by(Result.id)))

