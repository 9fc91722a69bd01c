"""Demo network: five regions, four product lines, 24 agencies and one account per role."""
from datetime import date

from portal import demo
from portal.auth.passwords import hash_password
from portal.auth.roles import Role
from portal.extensions import db
from tenants import services
from tenants.models import AgencyStatus, ProductLine, ProductModel, Province, Region

REGIONS = [
    ("E", "华东大区", "East", [("SH", "上海", "Shanghai"), ("JS", "江苏", "Jiangsu"),
                               ("ZJ", "浙江", "Zhejiang")]),
    ("S", "华南大区", "South", [("GD", "广东", "Guangdong"), ("FJ", "福建", "Fujian")]),
    ("N", "华北大区", "North", [("BJ", "北京", "Beijing"), ("TJ", "天津", "Tianjin"),
                               ("HE", "河北", "Hebei")]),
    ("SW", "西南大区", "Southwest", [("SC", "四川", "Sichuan"), ("CQ", "重庆", "Chongqing")]),
    ("C", "华中大区", "Central", [("HB", "湖北", "Hubei"), ("HN", "湖南", "Hunan")]),
]

PRODUCT_LINES = [
    ("AC", "空调", "Air conditioners", [("AC-KFR35", "KFR-35GW 挂机", 36),
                                        ("AC-KFR72", "KFR-72LW 柜机", 36)]),
    ("RF", "冰箱", "Refrigerators", [("RF-BCD450", "BCD-450 对开门", 36),
                                     ("RF-BCD218", "BCD-218 三门", 24)]),
    ("WM", "洗衣机", "Washing machines", [("WM-XQG100", "XQG100 滚筒", 24),
                                          ("WM-XQB80", "XQB80 波轮", 12)]),
    ("TV", "电视", "Televisions", [("TV-65U8", "65U8 液晶电视", 12),
                                   ("TV-55E3", "55E3 液晶电视", 12)]),
]

CITIES = {"SH": ["浦东", "闵行"], "JS": ["南京", "苏州", "无锡"], "ZJ": ["杭州", "宁波"],
          "GD": ["广州", "深圳", "佛山"], "FJ": ["福州", "厦门"], "BJ": ["朝阳", "海淀"],
          "TJ": ["滨海"], "HE": ["石家庄", "保定"], "SC": ["成都", "绵阳"], "CQ": ["渝北"],
          "HB": ["武汉", "宜昌"], "HN": ["长沙"]}

# The two agencies the demo accounts belong to: A in the East region, B in the South.
AGENCY_A, AGENCY_B = "SH-C01", "GD-C01"

ACCOUNTS = [
    (Role.HQ_ADMIN, "admin@hq.demo", "王总部", None, None),
    (Role.HQ_CERTIFIER, "certifier@hq.demo", "李培训", None, None),
    (Role.HQ_SETTLEMENT, "settlement@hq.demo", "张结算", None, None),
    (Role.HQ_SETTLEMENT, "settlement2@hq.demo", "赵复核", None, None),
    (Role.HQ_PARTS, "parts@hq.demo", "陈备件", None, None),
    (Role.HQ_SERVICE, "service@hq.demo", "刘服务", None, None),
    (Role.HQ_DISPATCHER, "dispatcher@hq.demo", "许坐席", None, None),
    (Role.REGIONAL_MANAGER, "east.manager@hq.demo", "周华东", None, "E"),
    (Role.REGIONAL_MANAGER, "south.manager@hq.demo", "吴华南", None, "S"),
    (Role.AUDITOR, "auditor@hq.demo", "郑审计", None, None),
    (Role.AGENCY_OWNER, "owner@sh-c01.demo", "孙站长", AGENCY_A, None),
    (Role.AGENCY_STAFF, "staff@sh-c01.demo", "钱文员", AGENCY_A, None),
    (Role.ENGINEER, "engineer@sh-c01.demo", "冯工程师", AGENCY_A, None),
    (Role.AGENCY_OWNER, "owner@gd-c01.demo", "黄站长", AGENCY_B, None),
    (Role.AGENCY_STAFF, "staff@gd-c01.demo", "林文员", AGENCY_B, None),
    (Role.ENGINEER, "engineer@gd-c01.demo", "何工程师", AGENCY_B, None),
]


def register() -> None:
    demo.register("network", load, order=10)
    if not demo.ACCOUNTS:
        demo.ACCOUNTS.extend((r.value, email, demo.DEMO_PASSWORD)
                             for r, email, *_rest in ACCOUNTS)


def _statuses(index: int) -> str:
    # Most agencies are active; a few show every other step of the lifecycle.
    return {5: AgencyStatus.PROBATION, 11: AgencyStatus.SUSPENDED, 17: AgencyStatus.APPLICANT,
            23: AgencyStatus.TERMINATED}.get(index, AgencyStatus.ACTIVE)


def load(ctx: dict) -> None:
    rng = ctx["rng"]
    regions, provinces = {}, {}
    for code, zh, en, provs in REGIONS:
        region = Region(code=code, name_zh=zh, name_en=en)
        db.session.add(region)
        db.session.flush()
        regions[code] = region
        for pcode, pzh, pen in provs:
            province = Province(region_id=region.id, code=pcode, name_zh=pzh, name_en=pen)
            db.session.add(province)
            provinces[pcode] = (region, province)
    lines = {}
    for code, zh, en, models in PRODUCT_LINES:
        line = ProductLine(code=code, name_zh=zh, name_en=en)
        db.session.add(line)
        db.session.flush()
        lines[code] = line
        for mcode, name, months in models:
            db.session.add(ProductModel(product_line_id=line.id, code=mcode, name=name,
                                        warranty_months=months))
    db.session.flush()

    agencies = {}
    index = 0
    for pcode, cities in CITIES.items():
        region, province = provinces[pcode]
        for n, city in enumerate(cities, start=1):
            kind = "center" if n == 1 else "station"
            code = f"{pcode}-{'C' if kind == 'center' else 'S'}{n:02d}"
            suffix = "家电维修中心有限公司" if kind == "center" else "家电维修服务部"
            line_codes = ["AC", "RF", "WM", "TV"] if kind == "center" else rng.sample(
                ["AC", "RF", "WM", "TV"], 2)
            agency = services.create_agency({
                "code": code, "legal_name": f"{province.name_zh}{city}{suffix}",
                "agency_type": kind, "region_id": region.id, "province_id": province.id,
                "city": city, "address": f"{city}区服务大道{rng.randint(1, 999)}号",
                "contact_name": rng.choice(["陈", "王", "李", "张", "刘"]) + "经理",
                "contact_phone": f"138{rng.randint(10000000, 99999999)}",
                "tier": 4 if kind == "center" else rng.randint(1, 3),
                "service_types": "carry_in,onsite,phone",
                "auth_valid_from": date(2025, 1, 1), "auth_valid_to": date(2027, 12, 31),
                "bank_name": "中国工商银行",
                "bank_account": f"6222{rng.randint(10**11, 10**12 - 1)}",
                "required_l2_engineers": 1,
                "email_domains": f"{code.lower()}.demo",  # owner@sh-c01.demo and so on
            }, [lines[c].id for c in line_codes], acting_user=None)
            _walk_lifecycle(agency, _statuses(index))
            agencies[code] = agency
            index += 1
    ctx.update(regions=regions, product_lines=lines, agencies=agencies)
    _accounts(ctx)
    _issuer()


DEMO_ISSUER = {"name_zh": "演示家电股份有限公司", "name_en": "Demo Appliances Co., Ltd.",
               "address_zh": "上海市浦东新区演示路 1 号 售后服务总部",
               "address_en": "After-sales Service HQ, 1 Demo Road, Pudong, Shanghai"}


def demo_logo_svg() -> bytes:
    """A neutral mark for the demo issuer: a blue tile with a white ring and a spark."""
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 120" width="120" '
        'height="120"><rect x="4" y="4" width="112" height="112" rx="22" fill="#1f3a5f"/>'
        '<circle cx="60" cy="60" r="32" fill="none" stroke="#ffffff" stroke-width="10"/>'
        '<path d="M60 34 L68 56 L90 60 L68 64 L60 86 L52 64 L30 60 L52 56 Z" '
        'fill="#f2b134"/></svg>').encode()


def demo_seal_svg(name: str = DEMO_ISSUER["name_zh"], purpose: str = "演示专用章") -> bytes:
    """A round red seal in the usual layout, generated: the name along the upper arc (one
    character at a time, each turned to the arc), a star in the middle, the purpose below."""
    import math

    size, centre, radius = 200, 100, 72
    chars = list(name)
    spread = 240  # degrees of arc the name covers, centred on the top
    step = spread / max(len(chars) - 1, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
             f'width="{size}" height="{size}">',
             '<g fill="#d42020" stroke="#d42020" '
             'font-family="WenQuanYi Micro Hei, Portal CJK, sans-serif">',
             f'<circle cx="{centre}" cy="{centre}" r="94" fill="none" stroke-width="6"/>']
    for i, char in enumerate(chars):
        angle = -spread / 2 + i * step  # 0 = straight up
        x = centre + radius * math.sin(math.radians(angle))
        y = centre - radius * math.cos(math.radians(angle))
        parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="24" stroke="none" '
                     f'text-anchor="middle" dominant-baseline="central" '
                     f'transform="rotate({angle:.1f} {x:.1f} {y:.1f})">{char}</text>')
    star = []
    for k in range(10):
        r = 26 if k % 2 == 0 else 10.5
        a = math.radians(-90 + k * 36)
        star.append(f"{centre + r * math.cos(a):.1f},{centre + r * math.sin(a):.1f}")
    parts.append(f'<polygon points="{" ".join(star)}" stroke="none"/>')
    parts.append(f'<text x="{centre}" y="152" font-size="17" stroke="none" '
                 f'text-anchor="middle">{purpose}</text>')
    parts.append("</g></svg>")
    return "".join(parts).encode()


def _issuer() -> None:
    """The demo issuer: a made-up company with a generated logo and seal."""
    from tenants import issuer

    row = issuer.current()
    issuer.save_issuer(row, DEMO_ISSUER, {"logo": demo_logo_svg(), "seal": demo_seal_svg()},
                       acting_user=None, seen_version=row.version)


def _walk_lifecycle(agency, target: str) -> None:
    path = {
        AgencyStatus.APPLICANT: [],
        AgencyStatus.PROBATION: [AgencyStatus.PROBATION],
        AgencyStatus.ACTIVE: [AgencyStatus.PROBATION, AgencyStatus.ACTIVE],
        AgencyStatus.SUSPENDED: [AgencyStatus.PROBATION, AgencyStatus.ACTIVE,
                                 AgencyStatus.SUSPENDED],
        AgencyStatus.TERMINATED: [AgencyStatus.PROBATION, AgencyStatus.TERMINATED],
    }[target]
    reasons = {AgencyStatus.PROBATION: "资质审核通过,进入试运营期",
               AgencyStatus.ACTIVE: "试运营期考核合格,正式授权",
               AgencyStatus.SUSPENDED: "连续两个季度考评为D,暂停派单整改",
               AgencyStatus.TERMINATED: "试运营期考核不合格,取消授权"}
    for status in path:
        services.change_agency_status(agency, status, reasons[status], acting_user=None)


def _accounts(ctx: dict) -> None:
    password_hash = hash_password(demo.DEMO_PASSWORD)
    users = {}
    for role, email, name, agency_code, region_code in ACCOUNTS:
        users[email] = services.create_account(
            email, acting_user=None, name=name, role=role, password_hash=password_hash,
            agency_id=ctx["agencies"][agency_code].id if agency_code else None,
            region_id=ctx["regions"][region_code].id if region_code else None)
    ctx.update(users=users, password_hash=password_hash)
