"""Job pages: a progress bar that updates, the outcome, and a retry for failed jobs."""
import click
from flask import Blueprint, abort, flash, jsonify, redirect, render_template, url_for
from flask.cli import with_appcontext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal import jobs
from portal.audit.services import record
from portal.auth.access import allow
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import get_or_404

bp = Blueprint("jobs", __name__, url_prefix="/jobs")
WRITERS = tuple(r for r in Role if r != Role.AUDITOR)


@bp.route("/<int:job_id>")
@allow(*Role)
def show(job_id):
    job = get_or_404(jobs.Job, job_id)
    return render_template("portal/job.html", job=job, progress=jobs.progress_of(job),
                           may_retry=jobs.may_start(job.kind, current_user.role))


@bp.route("/<int:job_id>/progress.json")
@allow(*Role)
def progress(job_id):
    return jsonify(jobs.progress_of(get_or_404(jobs.Job, job_id)))


@bp.route("/<int:job_id>/retry", methods=["POST"])
@allow(*WRITERS)
def retry(job_id):
    job = get_or_404(jobs.Job, job_id)
    if not jobs.may_start(job.kind, current_user.role):
        abort(403)  # seeing a job is not starting it: only the roles that may start its kind
    if job.status != jobs.FAILED:
        flash(_("Only a failed job can be run again."), "warning")
        return redirect(url_for("jobs.show", job_id=job.id))
    job.status = jobs.QUEUED
    record("job.retried", job, after={"kind": job.kind, "attempt": job.attempts + 1})
    db.session.commit()
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
    count = jobs.reap_stale()
    db.session.commit()
    click.echo(f"{count} stale jobs marked failed")


STATUS_LABELS = {jobs.QUEUED: _l("Queued"), jobs.RUNNING: _l("Running"),
                 jobs.SUCCEEDED: _l("Finished"), jobs.FAILED: _l("Failed")}


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.context_processor(lambda: {"job_status_labels": STATUS_LABELS})
    app.cli.add_command(worker)
    app.cli.add_command(reap_jobs)
