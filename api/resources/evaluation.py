"""Quarterly evaluation results: an agency owner reads their agency's results of published
quarters (a quarter not published yet is missing, as on the pages: the publication guard of
evaluation.queries filters every read in an agency's scope); HQ reads all, a regional manager
their region's."""
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import contains_eager

from api.core import PageArgs, api_allow, etag_of, page, page_schema
from api.openapi import sends_etag
from evaluation import kpis, services
from evaluation.models import Appeal, KpiValue, Quarter, Result, ResultStatus
from evaluation.policy import READERS
from portal.extensions import db
from portal.tenancy import get_or_404

blp = Blueprint("api_evaluation", __name__, url_prefix="/api/v1/evaluation",
                description="Quarterly evaluation results (an agency: its own, once "
                            "published; HQ: all).")


def _standing(result: Result) -> str:
    """Where it stands now: final also once published and the 7 days to answer are over."""
    if services.stands_final(result.status, result.quarter.appeal_deadline_at):
        return ResultStatus.FINAL.value
    return result.status


class EvaluationKpiOut(Schema):
    code = fields.String(required=True)
    label = fields.Function(lambda v: str(kpis.BY_CODE[v.code].label)
                            if v.code in kpis.BY_CODE else v.code, required=True,
                            metadata={"type": "string"})
    position = fields.Integer(required=True)
    weight = fields.Integer(required=True)
    min_count = fields.Integer(required=True)
    numerator = fields.Integer(required=True)
    denominator = fields.Integer(required=True)
    raw = fields.Decimal(as_string=True, allow_none=True)
    points = fields.Decimal(as_string=True, allow_none=True)
    effective_weight = fields.Decimal(as_string=True, allow_none=True)
    is_sufficient = fields.Boolean(required=True)


class EvaluationResultOut(Schema):
    id = fields.Integer(required=True)
    agency_id = fields.Integer(required=True)
    region_id = fields.Integer(required=True)
    quarter_id = fields.Integer(required=True)
    year = fields.Integer(attribute="quarter.year", required=True)
    quarter = fields.Integer(attribute="quarter.quarter", required=True)
    label = fields.String(attribute="quarter.label", required=True,
                          metadata={"example": "2025Q1"})
    score = fields.Decimal(as_string=True, allow_none=True)
    grade = fields.String(allow_none=True, metadata={"enum": list("ABCD")})
    previous_grade = fields.String(allow_none=True)
    rank_national = fields.Integer(allow_none=True)
    rank_national_of = fields.Integer(allow_none=True)
    rank_region = fields.Integer(allow_none=True)
    rank_region_of = fields.Integer(allow_none=True)
    elimination_warning = fields.Boolean(required=True)
    coverage_gaps = fields.Integer(required=True)
    tier_at = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"enum": [s.value for s in ResultStatus]})
    standing = fields.Function(_standing, required=True, metadata={
        "type": "string", "enum": [s.value for s in ResultStatus],
        "description": "The status, except that a published result nobody answered stands "
                       "final once the 7 days to answer are over."})
    computed_at = fields.DateTime(required=True)
    published_at = fields.DateTime(attribute="quarter.published_at", allow_none=True)
    appeal_deadline_at = fields.DateTime(attribute="quarter.appeal_deadline_at",
                                         allow_none=True)
    acknowledged_at = fields.DateTime(allow_none=True)
    finalized_at = fields.DateTime(allow_none=True)
    version = fields.Integer(required=True)


class EvaluationResultDetailOut(EvaluationResultOut):
    kpis = fields.List(fields.Nested(EvaluationKpiOut), required=True,
                       metadata={"description": "Its KPIs in the scheme's order."})


class _WithKpis:
    """A result and its KPI values, for the detail schema."""

    def __init__(self, result: Result):
        self._result = result
        self.kpis = list(db.session.scalars(select(KpiValue).where(
            KpiValue.agency_id == result.agency_id, KpiValue.result_id == result.id)
            .order_by(KpiValue.position, KpiValue.id)))

    def __getattr__(self, name):
        return getattr(self._result, name)


class ResultArgs(PageArgs):
    year = fields.Integer(load_default=None, validate=validate.Range(2000, 2100))
    quarter = fields.Integer(load_default=None, validate=validate.Range(1, 4))
    agency_id = fields.Integer(load_default=None, validate=validate.Range(1))
    status = fields.String(load_default=None,
                           validate=validate.OneOf([s.value for s in ResultStatus]),
                           metadata={"description": "The stored status."})


ResultPage = page_schema(EvaluationResultOut, "EvaluationResultPage")


def _changed_since(when):
    """Computed, published, acknowledged, appealed, decided on appeal or finalized at or
    after `when`."""
    appeal = exists(select(Appeal.id).where(
        Appeal.agency_id == Result.agency_id, Appeal.result_id == Result.id,
        or_(Appeal.lodged_at >= when, Appeal.resolved_at >= when)))
    return or_(Result.computed_at >= when, Result.acknowledged_at >= when,
               Result.finalized_at >= when, Quarter.published_at >= when, appeal)


@blp.route("/results/")
@api_allow(*READERS)
@blp.arguments(ResultArgs, location="query")
@blp.response(200, ResultPage)
def list_results(args):
    """Results the account may read, by id (an agency: published quarters only). Filter by
    year, quarter, agency and status; ``updated_since``: computed, published, answered,
    appealed or finalized at or after that instant."""
    stmt = (select(Result).join(Quarter, Quarter.id == Result.quarter_id)
            .options(contains_eager(Result.quarter)))
    if args.get("year") is not None:
        stmt = stmt.where(Quarter.year == args["year"])
    if args.get("quarter") is not None:
        stmt = stmt.where(Quarter.quarter == args["quarter"])
    if args.get("agency_id") is not None:
        stmt = stmt.where(Result.agency_id == args["agency_id"])
    if args.get("status"):
        stmt = stmt.where(Result.status == args["status"])
    if args.get("updated_since") is not None:
        stmt = stmt.where(_changed_since(args["updated_since"]))
    return page(stmt, Result, {**args, "updated_since": None})


@blp.route("/results/<int:result_id>")
@api_allow(*READERS)
@blp.response(200, EvaluationResultDetailOut)
@blp.doc(**sends_etag())
def get_result(result_id):
    """One result with its KPIs (ETag: its version)."""
    row = get_or_404(Result, result_id)
    return _WithKpis(row), 200, {"ETag": etag_of(row)}
