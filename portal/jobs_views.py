"""Job pages: a progress bar that updates, the outcome, and a retry for failed jobs."""
import click
from flask import Blueprint, abort, jsonify, redirect, render_template, url_for
from flask.cli import with_appcontext
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal import jobs, labels
from portal.auth.access import allow, performs
from portal.auth.policy import RETRY_JOB
from portal.auth.roles import Role
from portal.commit import committed, perform
from portal.policy import can
from portal.tenancy import get_or_404
from portal.transitions import describe, note, transition

bp = Blueprint("jobs", __name__, url_prefix="/jobs")
describe(jobs.Job, _l("job"))


@bp.route("/<int:job_id>")
@allow(*Role)
def show(job_id):
    job = get_or_404(jobs.Job, job_id)
    return render_template("portal/job.html", job=job, progress=jobs.progress_of(job))


@bp.route("/<int:job_id>/progress.json")
@allow(*Role)
def progress(job_id):
    return jsonify(jobs.progress_of(get_or_404(jobs.Job, job_id)))


@transition("job.retried", jobs.Job, label=_l("Run again"), permission=RETRY_JOB,
            source={jobs.FAILED}, target=jobs.QUEUED,
            wrong_state=_l("Only a failed job can be run again."))
def retry_job(job, *, acting_user) -> None:
    note(after={"kind": job.kind, "attempt": job.attempts + 1})


@bp.route("/<int:job_id>/retry", methods=["POST"])
@performs("job.retried")
def retry(job_id):
    job = get_or_404(jobs.Job, job_id)
    if not can(current_user, RETRY_JOB, job):
        abort(403)  # seeing a job is not starting it: only the roles that may start its kind
    if perform(retry_job, job):
        jobs.enqueue(job.id)
    return redirect(url_for("jobs.show", job_id=job.id))


@click.command("worker")
@with_appcontext
def worker():
    """Run an RQ worker for the portal's jobs (needs REDIS_URL)."""
    from rq import Worker

    redis = jobs._redis()
    if redis is None:
        raise click.ClickException("set REDIS_URL: without it jobs run inside the web process")
    Worker(["portal"], connection=redis).work()


@click.command("reap-jobs")
@with_appcontext
def reap_jobs():
    """Mark jobs whose worker died as failed, so that they can be run again."""
    with committed():
        count = jobs.reap_stale()
    click.echo(f"{count} stale jobs marked failed")


STATUS_LABELS = {jobs.QUEUED: _l("Queued"), jobs.RUNNING: _l("Running"),
                 jobs.SUCCEEDED: _l("Finished"), jobs.FAILED: _l("Failed")}


def init_app(app) -> None:
    app.register_blueprint(bp)
    labels.register("job.status", STATUS_LABELS)
    app.cli.add_command(worker)
    app.cli.add_command(reap_jobs)
