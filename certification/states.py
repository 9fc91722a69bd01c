"""Certificate states, validity arithmetic and the labels the pages show."""
from datetime import date, timedelta
from enum import StrEnum

from flask_babel import lazy_gettext as _l

from certification.models import EDUCATION_LABELS, ExamResult, NominationStatus, SessionStatus
from portal import labels
from portal.clock import add_months

EXPIRING_DAYS = 60  # a certificate with this many days left or fewer is "expiring"

LEVEL_LABELS = {1: _l("Junior"), 2: _l("Intermediate"), 3: _l("Senior")}


class CertificateState(StrEnum):
    NOT_YET_VALID = "not_yet_valid"
    VALID = "valid"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    REVOKED = "revoked"
    RENEWED = "renewed"


STATE_LABELS = {
    CertificateState.NOT_YET_VALID: _l("Not yet valid"),
    CertificateState.VALID: _l("Valid"),
    CertificateState.EXPIRING: _l("Expiring"),
    CertificateState.EXPIRED: _l("Expired"),
    CertificateState.REVOKED: _l("Revoked"),
    CertificateState.RENEWED: _l("Renewed"),
}
# Bootstrap badge classes (no inline styles: the CSP forbids them).
STATE_BADGES = {
    CertificateState.NOT_YET_VALID: "text-bg-info",
    CertificateState.VALID: "text-bg-success",
    CertificateState.EXPIRING: "text-bg-warning",
    CertificateState.EXPIRED: "text-bg-secondary",
    CertificateState.REVOKED: "text-bg-danger",
    CertificateState.RENEWED: "text-bg-light border",
}
NOMINATION_LABELS = {
    NominationStatus.PENDING: _l("Waiting for a seat"),
    NominationStatus.ADMITTED: _l("Admitted"),
    NominationStatus.PASSED: _l("Passed"),
    NominationStatus.FAILED: _l("Not passed"),
    NominationStatus.ABSENT: _l("Absent"),
    NominationStatus.WITHDRAWN: _l("Withdrawn"),
}
RESULT_LABELS = {
    ExamResult.PASSED: _l("Passed"),
    ExamResult.FAILED: _l("Not passed"),
    ExamResult.ABSENT: _l("Absent"),
}
SESSION_LABELS = {
    SessionStatus.OPEN: _l("Open for admission"),
    SessionStatus.SCORED: _l("Scored"),
}


def validity_end(valid_from: date, months: int) -> date:
    """The last valid day of a certificate valid for `months` from `valid_from` (inclusive)."""
    return add_months(valid_from, months) - timedelta(days=1)


def state_of(cert, today: date, *, renewed: bool = False) -> CertificateState:
    """The state of `cert` on `today`; `renewed` says a later certificate renews it.

    Revoked from `revoked_on` on (inclusive); valid through `valid_to` (inclusive); expiring
    when `valid_to` is at most EXPIRING_DAYS away.
    """
    if cert.revoked_on is not None and cert.revoked_on <= today:
        return CertificateState.REVOKED
    if renewed:
        return CertificateState.RENEWED
    if today > cert.valid_to:
        return CertificateState.EXPIRED
    if today < cert.valid_from:
        return CertificateState.NOT_YET_VALID
    if (cert.valid_to - today).days <= EXPIRING_DAYS:
        return CertificateState.EXPIRING
    return CertificateState.VALID


def is_valid_on(cert, day: date) -> bool:
    """The rule of queries.valid_certificate_exists, for one loaded certificate."""
    return (cert.valid_from <= day <= cert.valid_to
            and (cert.revoked_on is None or cert.revoked_on > day))


def level_label(level: int) -> str:
    return f"L{level} {LEVEL_LABELS.get(level, '')}".strip()


def certificate_state(cert, today: date) -> CertificateState:
    """A loaded certificate's state (its `renewed_by` loaded with it, not one by one)."""
    return state_of(cert, today, renewed=cert.renewed_by is not None)


def register_labels(app) -> None:
    """The words the certification templates read (portal.labels), and the state helper."""
    labels.register("certification.state", STATE_LABELS, badges=STATE_BADGES)
    labels.register("certification.level", LEVEL_LABELS)
    labels.register("certification.nomination", NOMINATION_LABELS)
    labels.register("certification.exam_result", RESULT_LABELS)
    labels.register("certification.session", SESSION_LABELS)
    labels.register("certification.education", EDUCATION_LABELS)
    app.add_template_global(certificate_state)
