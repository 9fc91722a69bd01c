"""Evaluation commands: compute, publish and finalize a quarter for the whole network, with a
progress bar. They run the same jobs and services as the web pages."""
import time
from contextlib import contextmanager

import click
from flask.cli import AppGroup
from sqlalchemy import select

from evaluation import compute, publication, services
from evaluation.models import Quarter
from portal import jobs
from portal.commit import committed
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.periods import Period
from portal.tenancy import ALL, unscoped

evaluation_cli = AppGroup("evaluation", help="Quarterly evaluation of the network.")


def init_app(app) -> None:
    app.cli.add_command(evaluation_cli)


def _period(text: str) -> Period:
    period = Period.parse(text)
    if period is None:
        raise click.BadParameter(f"{text!r} is not a quarter such as 2026Q3")
    return period


def _quarter(period: Period) -> Quarter:
    quarter = db.session.scalars(select(Quarter).where(
        Quarter.year == period.year, Quarter.quarter == period.quarter)).one_or_none()
    if quarter is None:
        raise click.ClickException(f"{period.label} has not been computed yet")
    return quarter


def _run_job(kind: str, params: dict, label: str) -> dict:
    """Start a network-wide job, show its progress and return its result (or fail)."""
    with committed():
        job = jobs.start(kind, params, scope=ALL)
    started = time.monotonic()
    with click.progressbar(length=1, label=label, show_pos=True) as bar:
        seen = [0]

        def progress(done: int, total: int, note: str) -> None:
            bar.length = max(total, 1)
            bar.update(done - seen[0])
            seen[0] = done

        finished = jobs.run(job.id, progress=progress)
    if finished.status != jobs.SUCCEEDED:
        raise click.ClickException(finished.error or "the job failed")
    click.echo(f"done in {time.monotonic() - started:.2f} s: {finished.result}")
    return finished.result


@contextmanager
def _operator(reason: str):
    """The whole network, a refusal shown as the command's error (nothing written)."""
    with unscoped(reason):
        try:
            yield
        except DomainError as error:
            raise click.ClickException(error.message) from error


@evaluation_cli.command("compute")
@click.argument("quarter")
def compute_command(quarter: str):
    """Compute the drafts of QUARTER (e.g. 2026Q3) for every agency."""
    period = _period(quarter)
    with _operator("an operator computes the whole network from the command line"):
        _run_job("evaluation.compute", {"period": compute.check_computable(period).label},
                 f"Computing {period.label}")


@evaluation_cli.command("publish")
@click.argument("quarter")
def publish_command(quarter: str):
    """Publish QUARTER: ranks, proposals and every report PDF (zh_CN and en)."""
    period = _period(quarter)
    with _operator("an operator publishes the whole network from the command line"):
        found = _quarter(period)
        publication.check_publishable(found)
        _run_job("evaluation.publish", {"quarter_id": found.id}, f"Publishing {period.label}")


@evaluation_cli.command("finalize")
@click.argument("quarter")
def finalize_command(quarter: str):
    """Make QUARTER final once its appeals are decided and the 7 days have passed."""
    period = _period(quarter)
    with _operator("an operator closes a quarter from the command line"), committed():
        waiting = services.finalize_quarter(_quarter(period), acting_user=None)
    click.echo(f"{period.label} is final ({waiting} results deemed accepted)")
