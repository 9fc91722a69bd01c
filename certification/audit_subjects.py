"""How the audit log names certification's records: certificates by number, engineers by
name, programs by product line and level, exam sessions by date and place."""
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, cast, select

from certification.models import (
    EDUCATION_LABELS,
    Certificate,
    Engineer,
    ExamSeat,
    ExamSession,
    Nomination,
    Program,
)
from certification.states import NOMINATION_LABELS, SESSION_LABELS
from portal.audit.subjects import Field, day, ref, state, subject
from tenants.models import ProductLine


def _program_label():
    return select(Program.id, ProductLine.code + " · L" + cast(Program.level, String)).join(
        ProductLine, ProductLine.id == Program.product_line_id)


def _session_label():
    return select(ExamSession.id, cast(ExamSession.exam_date, String) + " " + ExamSession.place)


def register() -> None:
    program = ref("Program", _l("Program"))
    engineer = ref("Engineer", _l("Engineer"))
    subject("Certificate", select(Certificate.id, Certificate.number),
            "certification.certificate", "certificate_id", noun=_l("Certificate"),
            model=Certificate,
            fields={"number": Field(_l("Certificate number")), "engineer_id": engineer,
                    "program_id": program, "revoked_on": day(_l("Revoked on"))})
    subject("Engineer", select(Engineer.id, Engineer.name), "certification.engineer",
            "engineer_id", noun=_l("Engineer"), model=Engineer,
            fields={"name": Field(_l("Full name")), "phone": Field(_l("Phone")),
                    "education": state("certification.education", _l("Education"),
                                       EDUCATION_LABELS),
                    "hire_date": day(_l("Hire date")), "left_on": day(_l("Left on")),
                    "product_line_ids": ref("ProductLine", _l("Product lines")),
                    "user_id": ref("User", _l("Portal account")),
                    "withdrawn_nomination_ids": ref("Nomination", _l("Withdrawn nominations")),
                    "id_number_changed": Field(_l("ID number changed"), "bool")})
    subject("Nomination", select(Nomination.id, Engineer.name, Nomination.engineer_id).join(
                Engineer, (Engineer.agency_id == Nomination.agency_id)
                & (Engineer.id == Nomination.engineer_id)),
            "certification.engineer", "engineer_id", noun=_l("Nomination"), model=Nomination,
            fields={"status": state("certification.nomination", _l("Status"),
                                    NOMINATION_LABELS),
                    "engineer_id": engineer, "program_id": program,
                    "note": Field(_l("Note for the training department")),
                    "nominated_by_id": ref("User", _l("Nominated by"))})
    session_fields = {"program_id": program, "exam_date": day(_l("Exam date")),
                      "place": Field(_l("Place")), "capacity": Field(_l("Capacity (seats)")),
                      "status": state("certification.session", _l("Status"), SESSION_LABELS),
                      "nomination_ids": ref("Nomination", _l("Nominees")),
                      "session_id": ref("ExamSession", _l("Exam session")),
                      "nomination_id": ref("Nomination", _l("Nomination")),
                      "seat_no": Field(_l("Seat")), "seat_nos": Field(_l("Seats")),
                      "passed": Field(_l("Passed")), "failed": Field(_l("Not passed")),
                      "absent": Field(_l("Absent")),
                      "certificates": Field(_l("Certificates issued"))}
    subject("ExamSession", _session_label, "certification.session", "exam_session_id",
            noun=_l("Exam session"), model=ExamSession, fields=session_fields)
    subject("ExamSeat", select(ExamSeat.id, Engineer.name, ExamSeat.session_id).join(
                Engineer, (Engineer.agency_id == ExamSeat.agency_id)
                & (Engineer.id == ExamSeat.engineer_id)),
            "certification.session", "exam_session_id", noun=_l("Exam seat"), model=ExamSeat,
            fields=session_fields)
    subject("Program", _program_label, "certification.program_edit", "program_id",
            noun=_l("Certification program"), model=Program,
            fields={"product_line_id": ref("ProductLine", _l("Product line")),
                    "level": Field(_l("Level")),
                    "validity_months": Field(_l("Validity (months)")),
                    "theory_pass_mark": Field(_l("Pass mark, theory")),
                    "practical_pass_mark": Field(_l("Pass mark, practical")),
                    "retake_wait_days": Field(_l("Waiting period before a retake (days)")),
                    "max_attempts": Field(_l("Maximum attempts")),
                    "min_education": state("certification.education", _l("Minimum education"),
                                           EDUCATION_LABELS),
                    "min_experience_years": Field(_l("Minimum experience (years)")),
                    "is_active": Field(_l("Open for nominations"), "bool")})
