"""Demo data of the certification area: engineers of every agency (order 20), then programs,
exam history and certificates in every state (order 25)."""
from datetime import UTC, date, datetime, time, timedelta

from certification.models import Education, Engineer, EngineerProductLine, EngineerStatus
from portal import demo
from portal.extensions import db

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "强", "磊", "军", "勇", "杰", "涛", "明", "超", "鹏", "华", "斌", "俊", "辉"]


def register() -> None:
    demo.register("engineers", load_engineers, order=20)
    register_certification()


def load_engineers(ctx: dict) -> None:
    """Four to eight engineers per agency, on the agency's product lines.

    Puts ``ctx["engineers"] = {agency_code: [Engineer, ...]}`` for later loaders.
    """
    rng = ctx["rng"]
    engineers: dict[str, list[Engineer]] = {}
    serial = 0
    for code, agency in ctx["agencies"].items():
        lines = [p.id for p in agency.product_lines]
        engineers[code] = []
        for n in range(rng.randint(4, 8)):
            serial += 1
            engineer = Engineer(
                agency_id=agency.id,
                name=rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(["", *GIVEN]),
                id_number=f"3101{rng.randint(10**13, 10**14 - 1)}",
                phone=f"139{rng.randint(10000000, 99999999)}",
                education=rng.choice([Education.COLLEGE, Education.COLLEGE, Education.BACHELOR,
                                      Education.SECONDARY]),
                hire_date=date(2026, 11, 1) - timedelta(days=rng.randint(90, 3650)),
                status=EngineerStatus.LEFT if n == 7 else EngineerStatus.ACTIVE,
            )
            db.session.add(engineer)
            db.session.flush()
            for line_id in rng.sample(lines, k=min(len(lines), rng.randint(1, 2))):
                db.session.add(EngineerProductLine(agency_id=agency.id, engineer_id=engineer.id,
                                                   product_line_id=line_id))
            engineers[code].append(engineer)
    db.session.flush()
    ctx["engineers"] = engineers


# --- programs, exam history and certificates in every state (order 25) ------------------------

# Program rules per level: validity months, pass marks, retake wait days, attempts, min years.
LEVEL_RULES = {1: (24, 60, 60, 30, 3, 1), 2: (24, 70, 70, 60, 3, 2), 3: (36, 80, 75, 90, 2, 4)}
PLACES = ["总部培训中心(上海)", "华南培训中心(广州)", "华北培训中心(北京)", "西南培训中心(成都)"]
REVOKE_REASONS = ["考试舞弊,经核实取消认证资格", "证书被他人冒用,经查属实",
                  "违规维修造成安全事故,取消认证"]
# Demo accounts of the engineer role and the engineer rows they are (agency code, index).
ENGINEER_ACCOUNTS = {"engineer@sh-c01.demo": ("SH-C01", "冯工程师"),
                     "engineer@gd-c01.demo": ("GD-C01", "何工程师")}


def register_certification() -> None:
    demo.register("certification", load_certification, order=25)


def load_certification(ctx: dict) -> None:
    """Programs for every product line × level, three years of exam sessions with scores, and
    certificates valid, expiring, expired, revoked and renewed; one session open today with
    about thirty nominees waiting to be admitted, one future session with admitted nominees."""
    from portal.clock import local_today

    today = local_today()
    rng = ctx["rng"]
    programs = _programs(ctx["product_lines"])
    favourites = _link_accounts(ctx)
    line_of = _engineers_by_line(ctx)
    # The demo's certifier records the scores: the certificates name her (李培训).
    history = _History(rng, favourites, ctx["users"].get("certifier@hq.demo"))
    for n, (code, line) in enumerate(sorted(ctx["product_lines"].items())):
        pool = [e for e in line_of.get(line.id, []) if e.status == EngineerStatus.ACTIVE
                and e.id not in favourites]
        rng.shuffle(pool)
        place = PLACES[n % len(PLACES)]
        old, expiring = pool[0::5], pool[1::5]
        current = [e for e in line_of.get(line.id, []) if e.id in favourites] + [
            e for i, e in enumerate(pool) if i % 5 > 1]
        history.run(programs[(code, 1)], today - timedelta(days=800), place, old)
        history.run(programs[(code, 1)], today - timedelta(days=700), place, expiring)
        history.run(programs[(code, 1)], today - timedelta(days=420), place, current)
        failed = history.run(programs[(code, 2)], today - timedelta(days=300), place,
                             expiring + current, fail=0.25)
        history.run(programs[(code, 2)], today - timedelta(days=200), place, failed)
        history.run(programs[(code, 3)], today - timedelta(days=100), place, current[:3])
        # Renewal before expiry: half of the expiring level-1 holders pass again.
        history.run(programs[(code, 1)], today - timedelta(days=15), place,
                    expiring[: len(expiring) // 2], fail=0, nominate_before=10)
    newcomers = _new_hires(ctx, today)
    _revoke_some(rng, today)
    _open_sessions(ctx, programs, line_of, newcomers, today)
    db.session.flush()


def _programs(lines: dict) -> dict:
    from certification import services

    out = {}
    for code, line in sorted(lines.items()):
        for level, (months, theory, practical, wait, attempts, years) in LEVEL_RULES.items():
            out[(code, level)] = services.create_program({
                "product_line_id": line.id, "level": level, "validity_months": months,
                "theory_pass_mark": theory, "practical_pass_mark": practical,
                "retake_wait_days": wait, "max_attempts": attempts,
                "min_experience_years": years, "min_education": Education.COLLEGE,
                "is_active": True}, acting_user=None)
    return out


def _link_accounts(ctx: dict) -> set:
    """The demo engineer accounts are engineers of their agencies, with college and years."""
    linked = set()
    for email, (code, name) in ENGINEER_ACCOUNTS.items():
        user = ctx["users"].get(email)
        engineer = ctx["engineers"][code][0]
        engineer.name, engineer.user_id = name, user.id
        engineer.education, engineer.status = Education.BACHELOR, EngineerStatus.ACTIVE
        engineer.hire_date = date(2019, 4, 1)
        linked.add(engineer.id)
    db.session.flush()
    return linked


def _engineers_by_line(ctx: dict) -> dict:
    from sqlalchemy import select

    engineers = {e.id: e for es in ctx["engineers"].values() for e in es}
    out: dict[int, list] = {}
    for engineer_id, line_id in db.session.execute(
            select(EngineerProductLine.engineer_id, EngineerProductLine.product_line_id)
            .order_by(EngineerProductLine.id)):
        out.setdefault(line_id, []).append(engineers[engineer_id])
    return out


class _History:
    """Runs past sessions through the real services, on the dates they took place."""

    def __init__(self, rng, favourites: set, certifier=None):
        self.rng, self.favourites, self.certifier = rng, favourites, certifier

    def run(self, program, exam_date, place, engineers, *, fail=0.15, nominate_before=21):
        from certification import exams, services
        from portal.errors_domain import DomainError

        nominations = []
        for engineer in engineers:
            try:
                nominations.append(services.nominate_engineer(
                    engineer, program, today=exam_date - timedelta(days=nominate_before),
                    acting_user=None))
            except DomainError:
                continue  # not eligible on that day: the agency would not have nominated
        if not nominations:
            return []
        capacity = max(10, -(-len(nominations) // 10) * 10)
        session = exams.create_session({"program_id": program.id, "exam_date": exam_date,
                                        "place": place, "capacity": capacity}, acting_user=None)
        seats = exams.admit_nominations(session, [n.id for n in nominations], acting_user=None)
        rows = [self._row(program, seat, fail) for seat in seats]
        exams.record_scores(session, rows, today=exam_date, acting_user=self.certifier)
        self._backdate(session, nominations, seats, exam_date, nominate_before)
        by_seat = {r.seat_id: r for r in rows}
        return [s.engineer for s in seats
                if by_seat[s.id].absent or by_seat[s.id].theory < program.theory_pass_mark
                or by_seat[s.id].practical < program.practical_pass_mark]

    def _row(self, program, seat, fail):
        from certification.exams import ScoreRow

        rng = self.rng
        if seat.engineer_id not in self.favourites and rng.random() < fail:
            if rng.random() < 0.2:
                return ScoreRow(seat.id, None, None, absent=True)
            return ScoreRow(seat.id, rng.randint(35, program.theory_pass_mark - 1),
                            rng.randint(50, 95))
        return ScoreRow(seat.id, rng.randint(program.theory_pass_mark, 98),
                        rng.randint(program.practical_pass_mark, 99))

    @staticmethod
    def _backdate(session, nominations, seats, exam_date, nominate_before):
        from sqlalchemy import select

        from certification.models import Certificate

        def at(day, hour):
            return datetime.combine(day, time(hour), tzinfo=UTC)

        session.created_at = at(exam_date - timedelta(days=nominate_before + 10), 2)
        session.scored_at = at(exam_date + timedelta(days=2), 8)
        for n in nominations:
            n.nominated_at = at(exam_date - timedelta(days=nominate_before), 3)
            n.closed_at = session.scored_at
        for seat in seats:
            seat.admitted_at = at(exam_date - timedelta(days=7), 6)
            seat.scored_at = session.scored_at
        for cert in db.session.scalars(select(Certificate).where(
                Certificate.seat_id.in_([s.id for s in seats]))):
            cert.issued_at = session.scored_at
        db.session.flush()


def _revoke_some(rng, today) -> None:
    from sqlalchemy import select

    from certification import services
    from certification.models import Certificate

    candidates = list(db.session.scalars(
        select(Certificate).where(Certificate.level == 2, Certificate.valid_to > today,
                                  Certificate.revoked_at.is_(None))
        .order_by(Certificate.id)))
    for n, cert in enumerate(rng.sample(candidates, k=min(3, len(candidates)))):
        services.revoke_certificate(cert, REVOKE_REASONS[n], today - timedelta(days=5 + 7 * n),
                                    today=today, acting_user=None)


def _new_hires(ctx: dict, today) -> list:
    """Two recent hires per agency authorized for air conditioners, not yet certified."""
    rng, ac = ctx["rng"], ctx["product_lines"]["AC"]
    hires = []
    for code, agency in sorted(ctx["agencies"].items()):
        if ac.id not in {p.id for p in agency.product_lines}:
            continue
        for _n in range(2):
            engineer = Engineer(
                agency_id=agency.id,
                name=rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
                id_number=f"4401{rng.randint(10**13, 10**14 - 1)}",
                phone=f"137{rng.randint(10000000, 99999999)}",
                education=rng.choice([Education.COLLEGE, Education.BACHELOR]),
                hire_date=today - timedelta(days=rng.randint(400, 900)),
                status=EngineerStatus.ACTIVE)
            db.session.add(engineer)
            db.session.flush()
            db.session.add(EngineerProductLine(agency_id=agency.id, engineer_id=engineer.id,
                                               product_line_id=ac.id))
            ctx["engineers"][code].append(engineer)
            hires.append(engineer)
    db.session.flush()
    return hires


def _open_sessions(ctx, programs, line_of, newcomers, today) -> None:
    """Today's session with about thirty nominees waiting, and a future one partly filled."""
    from certification import exams, services
    from portal.errors_domain import DomainError

    def nominate(engineers, program, limit):
        done = []
        for engineer in engineers:
            if len(done) == limit:
                break
            try:
                done.append(services.nominate_engineer(engineer, program, today=today,
                                                       note="年度认证计划", acting_user=None))
            except DomainError:
                continue  # not eligible today
        return done

    home = [e for code in ("SH-C01", "GD-C01") for e in ctx["engineers"][code]]
    exams.create_session({"program_id": programs[("AC", 1)].id, "exam_date": today,
                          "place": PLACES[0], "capacity": 40}, acting_user=None)
    nominate(home + newcomers, programs[("AC", 1)], 30)
    future = exams.create_session({"program_id": programs[("AC", 3)].id,
                                   "exam_date": today + timedelta(days=21),
                                   "place": PLACES[2], "capacity": 20}, acting_user=None)
    waiting = nominate(line_of.get(ctx["product_lines"]["AC"].id, []), programs[("AC", 3)], 8)
    if waiting:
        exams.admit_nominations(future, [n.id for n in waiting], acting_user=None)
