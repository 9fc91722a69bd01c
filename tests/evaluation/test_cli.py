"""The commands: compute and publish a quarter with a progress bar, finalize it."""
from sqlalchemy import select

from evaluation.models import Quarter
from portal.extensions import db
from portal.tenancy import unscoped
from tests.evaluation import factories as f


def test_compute_publish_and_finalize_from_the_command_line(app, world, fast_pdfs):
    with app.app_context(), unscoped("test"):
        for _n in range(12):
            f.order(world.a, world.line, hours=1)
        db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["evaluation", "compute", "2026Q2"])
    assert result.exit_code == 0, result.output
    assert "Computing 2026Q2" in result.output and "done in" in result.output
    result = runner.invoke(args=["evaluation", "publish", "2026Q2"])
    assert result.exit_code == 0, result.output
    assert "Publishing 2026Q2" in result.output and "'reports': 6" in result.output
    with app.app_context(), unscoped("test"):
        assert db.session.scalars(select(Quarter)).one().status == "published"
    result = runner.invoke(args=["evaluation", "finalize", "2026Q2"])
    assert result.exit_code != 0  # the agencies still have their 7 days
    result = runner.invoke(args=["evaluation", "compute", "2026Q2"])
    assert result.exit_code != 0


def test_bad_quarters_are_refused(app, world):
    runner = app.test_cli_runner()
    for args in (["compute", "2026Q7"], ["compute", "later"], ["publish", "2026Q1"],
                 ["compute", "2999Q1"], ["finalize", "2026Q1"]):
        result = runner.invoke(args=["evaluation", *args])
        assert result.exit_code != 0, args
