"""Home-page cards: an agency's latest evaluation and score trend; HQ's latest quarter, the
grade distribution of the latest published one and HQ's own service level."""
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import func, select

from evaluation import charts as trend_charts
from evaluation import format_1, format_2, queries
from evaluation.models import Quarter, QuarterStatus, Result, ServiceLevel
from evaluation.policy import AGENCY_READERS
from evaluation.reports import mean_of
from portal import charts
from portal.auth.roles import HQ_ROLES, Role
from portal.extensions import db
from portal.memo import remembered
from portal.navigation import add_widget
from portal.periods import Period

TREND_QUARTERS = 4  # as the PDF report's trend
LEVEL_QUARTERS = 4
GRADES = ("A", "B", "C", "D")
DAY = 86400



def _trend(results: list[Result]) -> charts.Chart:
    """The agency's scores over the four quarters up to its latest published one: the same
    chart as its result page and PDF report, with the figures as a table."""
    latest = results[0].quarter
    known = {r.quarter.index: (r.score, r.grade) for r in results}
    periods = Period(latest.year, latest.quarter).last(TREND_QUARTERS)
    points = [(p.label, *known.get(p.index, (None, None))) for p in periods]
    rows = tuple((label, "—" if score is None else format_2(score), grade or "—")
                 for label, score, grade in points)
    scores = tuple((label, score) for label, score, _grade in points)
    svg = remembered("chart.trend", lambda: trend_charts.trend_svg(list(scores)), scores)
    return charts.Chart(_("Score by quarter"), svg, ("", _("Score"), _("Grade")), rows)


def _agency(user) -> dict:
    """The latest published result and the trend (a draft quarter is not the agency's to see
    yet: the publication guard hides it). One query."""
    results = queries.agency_results(user.agency_id, limit=TREND_QUARTERS)
    return {"result": results[0] if results else None,
            "chart": _trend(results) if results else None}


def _drawn(name: str, title: str, labels: tuple, series: tuple, **options) -> charts.Chart:
    """Bars drawn once a minute per reader and figures (pygal takes 10–40 ms a chart)."""
    return remembered(f"chart.{name}", lambda: charts.bars(title, labels, series, name=name,
                                                           **options),
                      title, labels, series)


def _nothing(title: str) -> charts.Chart:
    """A chart without figures: the page says so, nothing is drawn."""
    return charts.Chart(title, "", (), ())


def _grade_chart(quarter: Quarter | None, grades: dict) -> charts.Chart:
    if quarter is None:
        return _nothing(_("Grades of the latest published quarter"))
    labels = GRADES + ((_("No grade"),) if grades.get(None) else ())
    values = tuple(grades.get(g, 0) for g in GRADES) + ((grades[None],) if grades.get(None)
                                                        else ())
    return _drawn("grades", _("Grades in %(period)s (latest published quarter)",
                              period=quarter.label), labels, ((_("Agencies"), values),),
                  formatter=charts.count_text)


def _level_chart(quarters: list[Quarter], levels: dict, scope: str) -> charts.Chart:
    """Mean days of HQ's service per published quarter, oldest first (gaps without data)."""
    shown = list(reversed(quarters[:LEVEL_QUARTERS]))
    title = _("HQ’s service level in days (mean): %(scope)s", scope=scope)
    if not shown:
        return _nothing(title)

    def days(quarter, count, seconds):
        level = levels.get(quarter.id)
        return mean_of(getattr(level, seconds), getattr(level, count), DAY) if level else None

    series = (
        (_("Parts request turnaround"),
         tuple(days(q, "parts_count", "parts_seconds") for q in shown)),
        (_("Settlement cycle"),
         tuple(days(q, "settlement_count", "settlement_seconds") for q in shown)),
        (_("Complaint verdict time"),
         tuple(days(q, "verdict_count", "verdict_seconds") for q in shown)),
    )
    return _drawn("service-level", title, tuple(q.label for q in shown), series,
                  formatter=format_1, height=300)


def _network(user) -> dict:
    """Four queries: recent quarters, grades of the latest and latest published one, HQ's
    service levels (the regional manager's region; the guard limits the grades to it)."""
    recent = list(db.session.scalars(select(Quarter).order_by(
        Quarter.year.desc(), Quarter.quarter.desc()).limit(LEVEL_QUARTERS + 4)))
    quarter = recent[0] if recent else None
    published = [q for q in recent if q.status != QuarterStatus.DRAFT]
    shown = published[0] if published else None
    ids = {q.id for q in (quarter, shown) if q is not None} or {0}
    counts: dict[int, dict] = {}
    for quarter_id, grade, n in db.session.execute(
            select(Result.quarter_id, Result.grade, func.count())
            .where(Result.quarter_id.in_(ids)).group_by(Result.quarter_id, Result.grade)):
        counts.setdefault(quarter_id, {})[grade] = n
    regional = user.role == Role.REGIONAL_MANAGER
    region_id = user.region_id if regional else None
    level_stmt = select(ServiceLevel).where(
        ServiceLevel.quarter_id.in_([q.id for q in published[:LEVEL_QUARTERS]] or [0]),
        ServiceLevel.region_id == region_id if regional else ServiceLevel.region_id.is_(None))
    levels = {lv.quarter_id: lv for lv in db.session.scalars(level_stmt)}
    scope = (user.region.name(str(get_locale())) if regional and user.region
             else _("the network"))
    return {"quarter": quarter, "grades": counts.get(quarter.id, {}) if quarter else {},
            "grade_chart": _grade_chart(shown, counts.get(shown.id, {}) if shown else {}),
            "level_chart": _level_chart(published, levels, scope)}


def register() -> None:
    add_widget("evaluation/_widget_agency.html", AGENCY_READERS, _agency, order=60)
    add_widget("evaluation/_widget_network.html", HQ_ROLES, _network, order=60)
