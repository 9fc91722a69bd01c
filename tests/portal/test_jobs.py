"""Background jobs: scope travels with the job, failures keep nothing, progress is visible."""
from datetime import timedelta

from sqlalchemy import func, select

from portal import jobs
from portal.audit.models import AuditEntry
from portal.audit.services import record
from portal.auth.roles import Role
from portal.extensions import db
from portal.models import utcnow
from portal.tenancy import ALL, agency_scope, unscoped
from tenants.models import Agency
from tests.factories import sign_in

SEEN: dict = {}


@jobs.handler("test.count_agencies")
def _count_agencies(params, progress):
    codes = db.session.scalars(select(Agency.code).order_by(Agency.code)).all()
    for n, _code in enumerate(codes, start=1):
        progress(n, len(codes), "counting")
    record("test.job_wrote", object_type="test", object_id="1")
    SEEN["codes"] = codes
    return {"agencies": len(codes)}


@jobs.handler("test.fail_halfway", roles=(Role.AGENCY_OWNER,))
def _fail_halfway(params, progress):
    record("test.half_written", object_type="test", object_id="1")
    db.session.flush()
    progress(1, 2, "half")
    raise RuntimeError("render failed")


def _start(world, kind):
    with unscoped("test starts a job"):
        job = jobs.start(kind, {}, scope=agency_scope(world.a.id), agency_id=world.a.id)
        db.session.commit()
        return job.id


def _audits(action):
    with unscoped("test"):
        return db.session.scalar(select(func.count(AuditEntry.id))
                                 .where(AuditEntry.action == action))


def test_job_runs_in_the_scope_it_was_started_with(ctx, world):
    seen_progress = []
    job = jobs.run(_start(world, "test.count_agencies"),
                   progress=lambda d, t, n: seen_progress.append((d, t)))
    assert job.status == jobs.SUCCEEDED and job.result["agencies"] == 1
    assert SEEN["codes"] == ["A-OWN"]
    assert seen_progress[-1] == (1, 1)
    assert jobs.progress_of(job)["percent"] == 100
    assert _audits("test.job_wrote") == 1


def test_failed_job_keeps_nothing_and_can_run_again(ctx, world):
    job = jobs.run(_start(world, "test.fail_halfway"))
    assert job.status == jobs.FAILED and "render failed" in job.error
    assert _audits("test.half_written") == 0
    again = jobs.run(job.id)
    assert again.attempts == 2 and again.status == jobs.FAILED


def test_stale_running_jobs_are_reaped(ctx, world):
    job_id = _start(world, "test.count_agencies")
    jobs._local_progress.pop(job_id, None)  # ids are reused across rolled-back tests
    with unscoped("test"):
        job = db.session.scalars(select(jobs.Job).where(jobs.Job.id == job_id)).one()
        job.status, job.started_at = jobs.RUNNING, utcnow() - timedelta(hours=1)
        db.session.commit()
        assert jobs.reap_stale() == 1
        assert job.status == jobs.FAILED


def test_reaping_from_the_command_line_commits_the_failures(app, world):
    """`flask reap-jobs` runs outside any scope and commits after reap_stale() returns: the
    changes must already be sent while every job was visible (on PostgreSQL row-level
    security judged them by the scope in force at the commit, and the command failed)."""
    runner = app.test_cli_runner()
    with app.app_context():
        job_id = _start(world, "test.count_agencies")
        jobs._local_progress.pop(job_id, None)
        with unscoped("test"):
            job = db.session.scalars(select(jobs.Job).where(jobs.Job.id == job_id)).one()
            job.status, job.started_at = jobs.RUNNING, utcnow() - timedelta(hours=1)
            db.session.commit()
    result = runner.invoke(args=["reap-jobs"])
    assert result.exit_code == 0, result.output
    with app.app_context(), unscoped("test"):
        job = db.session.scalars(select(jobs.Job).where(jobs.Job.id == job_id)).one()
        assert job.status == jobs.FAILED and "worker stopped" in job.error


def test_job_page_and_progress_for_its_agency_only(app, client, world):
    with app.app_context():
        job_id = _start(world, "test.count_agencies")
        jobs.run(job_id)
    sign_in(client, world.user(Role.AGENCY_STAFF))
    assert client.get(f"/jobs/{job_id}").status_code == 200
    assert client.get(f"/jobs/{job_id}/progress.json").get_json()["status"] == "succeeded"
    other = app.test_client()
    sign_in(other, world.b_users[Role.AGENCY_STAFF])
    assert other.get(f"/jobs/{job_id}").status_code == 404
    assert other.get(f"/jobs/{job_id}/progress.json").status_code == 404


def test_retry_only_for_failed_jobs(app, client, world):
    with app.app_context():
        job_id = _start(world, "test.fail_halfway")
        jobs.run(job_id)
    sign_in(client, world.user(Role.AGENCY_OWNER))
    assert client.post(f"/jobs/{job_id}/retry").status_code == 302


def test_only_the_roles_that_may_start_a_job_may_run_it_again(app, world):
    """A failed publication of a quarter is HQ service quality's (and HQ admin's) to run
    again: every other role is refused, even those who may look at the job."""
    with app.app_context(), unscoped("HQ starts a network-wide job"):
        job = jobs.start("evaluation.publish", {"quarter_id": 987654321}, scope=ALL,
                         user_id=world.user(Role.HQ_SERVICE).id)
        job.status, job.attempts = jobs.FAILED, 1
        db.session.commit()
        job_id = job.id
    starters = {Role.HQ_SERVICE, Role.HQ_ADMIN}
    for role in sorted(set(Role) - starters):
        client = app.test_client()
        sign_in(client, world.user(role))
        assert client.post(f"/jobs/{job_id}/retry").status_code in (403, 404), role
        page = client.get(f"/jobs/{job_id}")
        assert page.status_code in (200, 404), role
        assert b"Run again" not in page.data, role
        with app.app_context(), unscoped("test"):
            refused = db.session.scalars(select(jobs.Job).where(jobs.Job.id == job_id)).one()
            assert (refused.status, refused.attempts) == (jobs.FAILED, 1), role
    with app.app_context():
        assert _audits("job.retried") == 0
    for role in sorted(starters):
        client = app.test_client()
        sign_in(client, world.user(role))
        assert b"Run again" in client.get(f"/jobs/{job_id}").data, role
        assert client.post(f"/jobs/{job_id}/retry").status_code == 302, role
    with app.app_context():
        assert _audits("job.retried") == 2
