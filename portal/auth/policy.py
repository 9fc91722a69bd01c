"""Who may do what in the core: one's own session and account, and running a job again."""
from flask_babel import lazy_gettext as _l

from portal.auth.roles import Role
from portal.policy import rule

SIGN_IN = rule("auth.sign_in", *Role)
SIGN_OUT = rule("auth.sign_out", *Role)
CHANGE_PASSWORD = rule("auth.change_password", *Role)
CHANGE_LOCALE = rule("user.change_locale", *Role)


def _may_start(user, job) -> bool:
    from portal import jobs

    return jobs.may_start(job.kind, user.role)


# Seeing a job is not starting it: only the roles that may start its kind run it again.
RETRY_JOB = rule("job.retry", *(r for r in Role if r != Role.AUDITOR), when=_may_start,
                 refusal=_l("Only the roles that may start this kind of job can run it again."))
