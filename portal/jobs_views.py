"""Job pages: a progress bar that updates, the outcome, and a retry for failed jobs."""
import io

import click
from flask import Blueprint, abort, jsonify, redirect, render_template, send_file, url_for
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
    download = url_for("jobs.download", job_id=job.id)
    outcome = [(text, url) for text, url in jobs.outcome_of(job)
               if url != download or _may_download(job)]
    return render_template("portal/job.html", job=job, progress=jobs.progress_of(job),
                           title=jobs.title_of(job.kind), outcome=outcome)


def _may_download(job) -> bool:
    """A job's file holds its rows as typed (an agency's customers unmasked): the agency's
    own users read an agency's file, HQ the files of HQ's jobs; seeing the job is not
    enough (HQ and regional managers see every agency's jobs)."""
    return job.agency_id == getattr(current_user, "agency_id", None)


@bp.route("/<int:job_id>/progress.json")
@allow(*Role)
def progress(job_id):
    return jsonify(jobs.progress_of(get_or_404(jobs.Job, job_id)))


@bp.route("/<int:job_id>/file")
@allow(*Role)
def download(job_id):
    """The file a finished job left (an import's rows with errors), to its agency's users
    (HQ's jobs: to HQ)."""
    job = get_or_404(jobs.Job, job_id)
    if not _may_download(job):
        abort(404)
    result = job.result if job.status == jobs.SUCCEEDED and job.result else {}
    name = result.get("file")
    try:
        path = jobs.file_path(job.id, name)
    except ValueError:
        abort(404)
    if not path.is_file():
        abort(404)  # none, or removed a week after the job
    # Read whole: no open file handle outlives the response.
    return send_file(io.BytesIO(path.read_bytes()), mimetype=result.get("mimetype", "text/csv"),
                     as_attachment=True, download_name=result.get("file_name", name), max_age=0)


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
    """Mark jobs whose worker died as failed, so that they can be run again; remove old job
    files and what the areas' housekeeping expires (kept import files)."""
    with committed():
        count = jobs.reap_stale()
    click.echo(f"{count} stale jobs marked failed")
    with committed():
        for what, removed in jobs.run_housekeeping().items():
            click.echo(f"{what}: {removed} removed")


STATUS_LABELS = {jobs.QUEUED: _l("Queued"), jobs.RUNNING: _l("Running"),
                 jobs.SUCCEEDED: _l("Finished"), jobs.FAILED: _l("Failed")}


def init_app(app) -> None:
    app.register_blueprint(bp)
    labels.register("job.status", STATUS_LABELS)
    app.cli.add_command(worker)
    app.cli.add_command(reap_jobs)
