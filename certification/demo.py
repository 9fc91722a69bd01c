"""Demo engineers for every agency (the certification area adds programs and certificates)."""
from datetime import date, timedelta

from certification.models import Education, Engineer, EngineerProductLine, EngineerStatus
from portal import demo
from portal.extensions import db

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "强", "磊", "军", "勇", "杰", "涛", "明", "超", "鹏", "华", "斌", "俊", "辉"]


def register() -> None:
    demo.register("engineers", load_engineers, order=20)


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
