"""Isolation-test parameters of the evaluation area (see tests/isolation_params.py).

Owned rows are light (no computation, no PDF rendering) and carry the agency's canary where
they hold text; quarters, schemes, ranking reports and KPI codes are HQ's or reference data.
"""
from tests.evaluation import factories as f

# Imported by tests/isolation_params.py once it has defined these two (never import this module
# first: the isolation parameters import it back).
from tests.isolation_params import Owned, Reference  # noqa: E402,I001

PARAMS: dict = {
    "result_id": Owned(lambda world, agency: f.light_result(agency).id),
    "report_id": Owned(lambda world, agency: f.light_report(agency).id),
    # settlement has its own appeal_id
    "evaluation_appeal_id": Owned(lambda world, agency: f.light_appeal(agency).id),
    "proposal_id": Owned(lambda world, agency: f.light_proposal(agency).id),
    "quarter_id": Reference(lambda world: f.light_quarter().id),
    "ranking_report_id": Reference(lambda world: f.light_ranking().id),
    "scheme_id": Reference(lambda world: 1),
    "kpi_code": Reference(lambda world: "timeliness"),
}
