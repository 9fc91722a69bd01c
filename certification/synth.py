"""Synthetic network, certification: programs, engineers of every agency, their exam history
(sessions, nominations, seats) and certificates valid, expired, renewed and revoked.

The validity windows go to the service generator, which marks each work order's engineer as
certified on its service date by the same rule as ``queries.valid_certificate_exists``.
"""
import string
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from certification.demo import GIVEN, LEVEL_RULES, PLACES, REVOKE_REASONS, SURNAMES
from certification.models import (
    Certificate,
    Engineer,
    EngineerProductLine,
    ExamSeat,
    ExamSession,
    Nomination,
    Program,
)
from portal import synth
from portal.auth.roles import Role
from portal.clock import add_months

CAPACITY = 500
CODE_LETTERS = string.ascii_uppercase + string.digits


@dataclass
class CertificationInfo:
    # agency id -> [(engineer id, [line ids], left on)], the first one has the engineer account
    engineers: dict = field(default_factory=dict)
    # engineer id -> {line id: [(valid_from, valid_to, revoked_on)]}
    windows: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))

    def is_certified(self, engineer_id: int, line_id: int, day: date) -> bool:
        for valid_from, valid_to, revoked_on in self.windows.get(engineer_id, {}).get(line_id,
                                                                                      ()):
            if valid_from <= day <= valid_to and (revoked_on is None or revoked_on > day):
                return True
        return False


@dataclass
class _Attempt:
    program: tuple  # (program id, level, validity months, line id)
    day: date
    agency_id: int
    engineer_id: int
    passed: bool
    certificate: dict | None = None




def build(net: synth.Network) -> None:
    network = net.data["network"]
    rng = net.rng("certification")
    programs = _programs(net, network.lines)
    info = CertificationInfo()
    agencies = network.agencies
    floor = 2 if net.sizes.engineers >= 2 * len(agencies) else 1
    counts = synth.spread(max(net.sizes.engineers - floor * len(agencies), 0),
                     [a.weight if a.works else 0.2 for a in agencies])
    step = net.step("certification: engineers", len(agencies))
    attempts: list[_Attempt] = []
    for agency, count in zip(agencies, counts, strict=True):
        attempts.extend(_engineers(net, rng, info, programs, agency, floor + count))
        step.advance()
    _exams(net, rng, network, attempts)
    net.data["certification"] = info



def _programs(net, lines) -> dict:
    """{(line id, level): (program id, level, validity months, line id)}."""
    out = {}
    for line in lines:
        for level, (months, theory, practical, wait, attempts, years) in LEVEL_RULES.items():
            [program_id] = net.ids(Program, 1)
            net.add(Program, {"id": program_id, "product_line_id": line.id, "level": level,
                              "validity_months": months, "theory_pass_mark": theory,
                              "practical_pass_mark": practical, "retake_wait_days": wait,
                              "max_attempts": attempts, "min_experience_years": years,
                              "min_education": "college", "is_active": True})
            out[(line.id, level)] = (program_id, level, months, line.id)
    return out


def _engineers(net, rng, info: CertificationInfo, programs: dict, agency, count: int) -> list:
    ids = net.ids(Engineer, count)
    account = agency.accounts.get(Role.ENGINEER)
    mine, attempts = [], []
    for n, engineer_id in enumerate(ids):
        hire = net.today - timedelta(days=rng.randint(120, 3650))
        left = n > 0 and rng.random() < 0.05
        left_on = net.today - timedelta(days=rng.randint(10, 200)) if left else None
        if left_on is not None and left_on <= hire:
            left_on = hire + timedelta(days=30)
        lines = (agency.line_ids[:2] if n == 0 else
                 sorted(rng.sample(agency.line_ids, min(len(agency.line_ids),
                                                        rng.choice([1, 1, 2])))))
        net.add(Engineer, {
            "id": engineer_id, "agency_id": agency.id,
            "name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(["", *GIVEN]),
            "id_number": f"{rng.randint(110000, 659000)}{engineer_id:012d}",
            "phone": f"139{rng.randint(10**7, 10**8 - 1)}",
            "education": rng.choice(["college", "college", "bachelor", "secondary"]),
            "hire_date": hire, "status": "left" if left_on else "active",
            "user_id": account.id if n == 0 and account else None,
            "created_at": datetime.combine(hire, time(2), tzinfo=UTC), "left_on": left_on})
        for line_id in lines:
            net.add(EngineerProductLine, {"agency_id": agency.id, "engineer_id": engineer_id,
                                          "product_line_id": line_id})
            attempts.extend(_career(net, rng, info, programs, agency.id, engineer_id, line_id,
                                    hire, favourite=n == 0))
        mine.append((engineer_id, lines, left_on))
        net.audit("engineer.created", "Engineer", engineer_id, agency_id=agency.id,
                  at=datetime.combine(hire, time(2), tzinfo=UTC),
                  actor=agency.accounts.get(Role.AGENCY_OWNER), after={"hire_date": str(hire)})
    info.engineers[agency.id] = mine
    return attempts


def _exam_day(day: date) -> date:
    """Exams take place on the 10th and the 25th."""
    return day.replace(day=10) if day.day <= 17 else day.replace(day=25)


def _career(net, rng, info, programs, agency_id, engineer_id, line_id, hire, *, favourite):
    """An engineer's attempts on one product line: L1, often L2, sometimes L3, renewals."""
    out = []
    day = _exam_day(hire + timedelta(days=rng.randint(60, 400)))
    levels = [1] + ([2] if favourite or rng.random() < 0.6 else [])
    if len(levels) == 2 and (favourite or rng.random() < 0.15):
        levels.append(3)
    for level in levels:
        if day >= net.today - timedelta(days=3):
            break
        program = programs[(line_id, level)]
        if not favourite and rng.random() < 0.1:  # failed once, passed at the next session
            out.append(_Attempt(program, day, agency_id, engineer_id, passed=False))
            day = _exam_day(day + timedelta(days=45))
            if day >= net.today - timedelta(days=3):
                break
        out.extend(_passes(net, rng, info, program, agency_id, engineer_id, day))
        day = _exam_day(day + timedelta(days=rng.randint(150, 500)))
    return out


def _passes(net, rng, info, program, agency_id, engineer_id, day):
    """A passed attempt, its certificate, and its renewals while they expire before today."""
    out, renewal_of = [], None
    while True:
        valid_to = add_months(day, program[2]) - timedelta(days=1)
        revoked = (program[1] == 2 and renewal_of is None and rng.random() < 0.005
                   and day + timedelta(days=40) < net.today)
        revoked_on = day + timedelta(days=rng.randint(30, 300)) if revoked else None
        if revoked_on is not None and revoked_on >= net.today:
            revoked_on = net.today - timedelta(days=1)
        cert = {"program_id": program[0], "product_line_id": program[3], "level": program[1],
                "valid_from": day, "valid_to": valid_to, "revoked_on": revoked_on,
                "renewal_of": renewal_of}
        attempt = _Attempt(program, day, agency_id, engineer_id, passed=True, certificate=cert)
        out.append(attempt)
        info.windows[engineer_id][program[3]].append((day, valid_to, revoked_on))
        renew_on = _exam_day(valid_to - timedelta(days=20))
        if revoked or valid_to >= net.today or rng.random() < 0.4 or renew_on >= net.today:
            return out
        renewal_of, day = attempt, renew_on


def _exams(net, rng, network, attempts: list[_Attempt]) -> None:
    """Sessions of ≤ 500 seats per program and exam day; a nomination and a seat per attempt,
    a certificate per pass."""
    certifier = network.hq["certifier"]
    by_session: dict = defaultdict(list)
    for attempt in attempts:
        by_session[(attempt.program[0], attempt.day)].append(attempt)
    step = net.step("certification: exams", len(attempts))
    cert_ids = iter(net.ids(Certificate, sum(a.passed for a in attempts)))
    owners = {a.id: a.accounts.get(Role.AGENCY_OWNER) for a in network.agencies}
    for (program_id, day), group in sorted(by_session.items(), key=lambda kv: kv[0][1]):
        for chunk in range(0, len(group), CAPACITY):
            seats = group[chunk:chunk + CAPACITY]
            [session_id] = net.ids(ExamSession, 1)
            scored = datetime.combine(day + timedelta(days=2), time(8), tzinfo=UTC)
            net.add(ExamSession, {
                "id": session_id, "program_id": program_id, "exam_date": day,
                "place": PLACES[program_id % len(PLACES)], "capacity": CAPACITY,
                "status": "scored", "created_by_id": certifier.id,
                "created_at": datetime.combine(day - timedelta(days=30), time(2), tzinfo=UTC),
                "scored_at": scored})
            for seat_no, attempt in enumerate(seats, start=1):
                _seat(net, rng, attempt, session_id, seat_no, scored, owners, cert_ids)
                step.advance()
            net.audit("exam_session.scored", "ExamSession", session_id, at=scored,
                      actor=certifier, after={"seats": len(seats),
                                              "passed": sum(a.passed for a in seats)})


def _seat(net, rng, attempt: _Attempt, session_id, seat_no, scored, owners, cert_ids) -> None:
    [nomination_id] = net.ids(Nomination, 1)
    [seat_id] = net.ids(ExamSeat, 1)
    owner = owners.get(attempt.agency_id)
    nominated = datetime.combine(attempt.day - timedelta(days=21), time(3), tzinfo=UTC)
    net.add(Nomination, {
        "id": nomination_id, "agency_id": attempt.agency_id, "engineer_id": attempt.engineer_id,
        "program_id": attempt.program[0], "status": "passed" if attempt.passed else "failed",
        "note": "", "nominated_by_id": owner.id if owner else None, "nominated_at": nominated,
        "closed_at": scored})
    theory = rng.randint(72, 98) if attempt.passed else rng.randint(35, 59)
    net.add(ExamSeat, {
        "id": seat_id, "agency_id": attempt.agency_id, "session_id": session_id,
        "session_capacity": CAPACITY, "seat_no": seat_no, "nomination_id": nomination_id,
        "engineer_id": attempt.engineer_id, "program_id": attempt.program[0],
        "exam_date": attempt.day,
        "admitted_at": datetime.combine(attempt.day - timedelta(days=7), time(6), tzinfo=UTC),
        "theory_score": theory, "practical_score": rng.randint(76, 99),
        "result": "passed" if attempt.passed else "failed", "scored_at": scored})
    if attempt.certificate is None:
        return
    cert = attempt.certificate
    cert_id = cert["id"] = next(cert_ids)
    renewal = cert.pop("renewal_of")
    revoked_on = cert["revoked_on"]
    net.add(Certificate, {
        **cert, "id": cert_id, "agency_id": attempt.agency_id,
        "engineer_id": attempt.engineer_id,
        "number": f"{net.tag}L{cert['level']}-{cert_id:09d}",
        "verification_code": "".join(rng.choice(CODE_LETTERS) for _n in range(8)),
        "issued_at": scored, "seat_id": seat_id,
        "renewal_of_id": renewal.certificate["id"] if renewal else None,
        "revoked_at": datetime.combine(revoked_on, time(4), tzinfo=UTC) if revoked_on else None,
        "revoke_reason": rng.choice(REVOKE_REASONS) if revoked_on else None})


synth.register("certification", build, order=20)
