"""Synthetic network, first part: seven regions and their provinces, product lines and models,
agencies of every type, tier and lifecycle state, their history and every role's accounts."""
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from portal import synth
from portal.auth.models import User
from portal.auth.roles import Role
from tenants.demo import PRODUCT_LINES
from tenants.models import (
    Agency,
    AgencyProductLine,
    AgencyStatus,
    AgencyStatusChange,
    ProductLine,
    ProductModel,
    Province,
    Region,
)

# Each region (code 中文 English) and below it its provinces (code 中文 English capital
# weight of agencies).
_NETWORK = """
E 华东大区 East
    SH 上海 Shanghai 上海 4 | JS 江苏 Jiangsu 南京 8 | ZJ 浙江 Zhejiang 杭州 6
    AH 安徽 Anhui 合肥 5 | FJ 福建 Fujian 福州 4 | JX 江西 Jiangxi 南昌 4 | SD 山东 Shandong 济南 9
S 华南大区 South
    GD 广东 Guangdong 广州 10 | GX 广西 Guangxi 南宁 4 | HI 海南 Hainan 海口 1
N 华北大区 North
    BJ 北京 Beijing 北京 3 | TJ 天津 Tianjin 天津 2 | HE 河北 Hebei 石家庄 6 | SX 山西 Shanxi 太原 3
    NM 内蒙古 Inner Mongolia 呼和浩特 2
C 华中大区 Central
    HA 河南 Henan 郑州 8 | HB 湖北 Hubei 武汉 5 | HN 湖南 Hunan 长沙 5
SW 西南大区 Southwest
    CQ 重庆 Chongqing 重庆 3 | SC 四川 Sichuan 成都 7 | GZ 贵州 Guizhou 贵阳 3
    YN 云南 Yunnan 昆明 4 | XZ 西藏 Tibet 拉萨 1
NW 西北大区 Northwest
    SN 陕西 Shaanxi 西安 3 | GS 甘肃 Gansu 兰州 2 | QH 青海 Qinghai 西宁 1 | NX 宁夏 Ningxia 银川 1
    XJ 新疆 Xinjiang 乌鲁木齐 2
NE 东北大区 Northeast
    LN 辽宁 Liaoning 沈阳 4 | JL 吉林 Jilin 长春 2 | HL 黑龙江 Heilongjiang 哈尔滨 3
"""


def _parse_network(text: str) -> list[tuple]:
    """[(code, 中文, English, [(province code, 中文, English, capital, weight)])]"""
    regions: list[tuple] = []
    for line in filter(str.strip, text.splitlines()):
        if not line.startswith(" "):
            regions.append((*line.split(maxsplit=2), []))
            continue
        for item in line.split("|"):
            code, zh, rest = item.split(maxsplit=2)
            en, capital, weight = rest.rsplit(maxsplit=2)
            regions[-1][3].append((code, zh, en, capital, int(weight)))
    return regions


REGIONS = _parse_network(_NETWORK)

HQ_ACCOUNTS = [(Role.HQ_ADMIN, "admin", "总部管理员"), (Role.HQ_CERTIFIER, "certifier", "培训认证"),
               (Role.HQ_SETTLEMENT, "settlement", "结算审核"),
               (Role.HQ_SETTLEMENT, "settlement2", "结算复核"),
               (Role.HQ_PARTS, "parts", "备件中心"), (Role.HQ_SERVICE, "service", "服务质量"),
               (Role.HQ_DISPATCHER, "dispatcher", "呼叫中心"),
               (Role.AUDITOR, "auditor", "审计")]
AGENCY_ACCOUNTS = [(Role.AGENCY_OWNER, "owner", "站长"), (Role.AGENCY_STAFF, "staff", "文员"),
                   (Role.ENGINEER, "engineer", "工程师")]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘蒋蔡余杜叶程"
# Share of agencies per lifecycle state (the rest are active).
STATE_SHARES = [(AgencyStatus.APPLICANT, 0.02), (AgencyStatus.PROBATION, 0.04),
                (AgencyStatus.SUSPENDED, 0.02), (AgencyStatus.TERMINATED, 0.02)]
LIFECYCLE = {
    AgencyStatus.APPLICANT: [],
    AgencyStatus.PROBATION: [AgencyStatus.PROBATION],
    AgencyStatus.ACTIVE: [AgencyStatus.PROBATION, AgencyStatus.ACTIVE],
    AgencyStatus.SUSPENDED: [AgencyStatus.PROBATION, AgencyStatus.ACTIVE, AgencyStatus.SUSPENDED],
    AgencyStatus.TERMINATED: [AgencyStatus.PROBATION, AgencyStatus.ACTIVE,
                              AgencyStatus.TERMINATED],
}
REASONS = {AgencyStatus.APPLICANT: "Agency registered",
           AgencyStatus.PROBATION: "资质审核通过,进入试运营期",
           AgencyStatus.ACTIVE: "试运营期考核合格,正式授权",
           AgencyStatus.SUSPENDED: "连续两个季度考评为D,暂停派单整改",
           AgencyStatus.TERMINATED: "考核不合格,取消授权"}


@dataclass
class LineInfo:
    id: int
    code: str
    models: list  # [(model id, model code, warranty months)]


@dataclass
class AgencyInfo:
    """What later generators need of an agency, without reading it back."""

    id: int
    code: str
    region_id: int
    tier: int
    status: str
    city: str
    line_ids: list
    weight: float  # its share of the network's engineers and work orders
    accounts: dict = field(default_factory=dict)  # role -> synth.Account

    @property
    def works(self) -> bool:
        """Applicants have no engineers or orders yet."""
        return self.status != AgencyStatus.APPLICANT


@dataclass
class NetworkInfo:
    lines: list
    agencies: list
    hq: dict  # "admin", "settlement", … -> synth.Account
    managers: dict  # region id -> synth.Account
    password_hash: str




def build(net: synth.Network) -> None:
    rng = net.rng("network")
    step = net.step("network: agencies", net.sizes.agencies)
    provinces, regions = _regions(net)
    lines = _product_lines(net)
    from portal.auth.passwords import hash_password

    info = NetworkInfo(lines=lines, agencies=[], hq={}, managers={},
                       password_hash=hash_password(synth.SYNTH_PASSWORD))
    _hq_accounts(net, info, regions)
    weights = [p[4] for p in provinces]
    chosen = rng.choices(provinces, weights=weights, k=net.sizes.agencies)
    ids = net.ids(Agency, len(chosen))
    per_province: dict = {}
    for agency_id, province in zip(ids, sorted(chosen, key=lambda p: p[2]), strict=True):
        n = per_province[province[2]] = per_province.get(province[2], 0) + 1
        info.agencies.append(_agency(net, rng, info, agency_id, province, n))
        step.advance()
    net.data["network"] = info


def _regions(net) -> tuple[list[tuple], dict]:
    """(province id, region id, code, capital, weight) of every province, and the region ids."""
    out, regions = [], {}
    for code, zh, en, provinces in REGIONS:
        [region_id] = net.ids(Region, 1)
        regions[code] = region_id
        net.add(Region, {"id": region_id, "code": f"{net.tag}-{code}", "name_zh": zh,
                         "name_en": en})
        for pcode, pzh, pen, capital, weight in provinces:
            [province_id] = net.ids(Province, 1)
            net.add(Province, {"id": province_id, "region_id": region_id,
                               "code": f"{net.tag}-{pcode}", "name_zh": pzh, "name_en": pen})
            out.append((province_id, region_id, pcode, capital, weight))
    net.writer.flush()
    return out, regions


def _product_lines(net) -> list[LineInfo]:
    out = []
    for code, zh, en, models in PRODUCT_LINES:
        [line_id] = net.ids(ProductLine, 1)
        net.add(ProductLine, {"id": line_id, "code": f"{net.tag}-{code}", "name_zh": zh,
                              "name_en": en, "is_active": True})
        line = LineInfo(line_id, f"{net.tag}-{code}", [])
        for mcode, name, months in models:
            [model_id] = net.ids(ProductModel, 1)
            model_code = f"{net.tag}-{mcode}"
            net.add(ProductModel, {"id": model_id, "product_line_id": line_id,
                                   "code": model_code, "name": name,
                                   "warranty_months": months})
            line.models.append((model_id, model_code, months))
        out.append(line)
    net.writer.flush()
    return out


def _account(net, info: NetworkInfo, role: Role, email: str, name: str, *, agency_id=None,
             region_id=None, created: datetime) -> synth.Account:
    [user_id] = net.ids(User, 1)
    import secrets

    net.add(User, {"id": user_id, "email": email, "name": name,
                   "password_hash": info.password_hash, "role": role.value,
                   "agency_id": agency_id, "region_id": region_id, "locale": None,
                   "is_active_account": True, "session_token": secrets.token_urlsafe(24),
                   "created_at": created, "last_sign_in_at": None})
    return synth.Account(user_id, email, role.value)


def _hq_accounts(net, info: NetworkInfo, regions: dict) -> None:
    domain = f"{net.tag.lower()}.synth"
    created = datetime.combine(net.history_start - timedelta(days=400), time(1), tzinfo=UTC)
    for role, key, name in HQ_ACCOUNTS:
        info.hq[key] = _account(net, info, role, f"{key}@{domain}", f"{name}{net.tag}",
                                created=created)
    for code, zh, _en, _provinces in REGIONS:
        info.managers[regions[code]] = _account(
            net, info, Role.REGIONAL_MANAGER, f"{code.lower()}.manager@{domain}", f"{zh}经理",
            region_id=regions[code], created=created)
    for key, account in info.hq.items():
        net.audit("user.created", "User", account.id, at=created,
                  after={"email": account.email, "role": account.role, "key": key})


def _state(rng) -> str:
    roll = rng.random()
    for state, share in STATE_SHARES:
        if roll < share:
            return state
        roll -= share
    return AgencyStatus.ACTIVE


def _agency(net, rng, info: NetworkInfo, agency_id: int, province, n: int) -> AgencyInfo:
    province_id, region_id, pcode, capital, _weight = province
    is_center = n == 1 or rng.random() < 0.15
    lines = [line.id for line in info.lines]
    line_ids = lines if is_center else sorted(rng.sample(lines, rng.randint(2, 3)))
    status = _state(rng)
    code = f"{net.tag}-{pcode}{n:04d}"
    registered = net.history_start - timedelta(days=rng.randint(200, 2000))
    tier = rng.randint(4, 5) if is_center else rng.randint(1, 3)
    kind = "center" if is_center else "station"
    created = datetime.combine(registered, time(2), tzinfo=UTC)
    domain = f"{code.lower()}.synth"  # its accounts' addresses, and the owner's to give
    net.add(Agency, {
        "id": agency_id, "code": code,
        "legal_name": f"{capital}{'家电维修中心有限公司' if is_center else '家电维修服务部'}{n}号",
        "agency_type": kind, "region_id": region_id, "province_id": province_id,
        "city": capital, "address": f"{capital}服务大道{rng.randint(1, 999)}号",
        "contact_name": rng.choice(SURNAMES) + "经理",
        "contact_phone": f"138{rng.randint(10**7, 10**8 - 1)}", "tier": tier, "status": status,
        "service_types": "carry_in,onsite,phone", "auth_valid_from": date(2025, 1, 1),
        "auth_valid_to": date(2027, 12, 31), "bank_name": "中国工商银行",
        "bank_account": f"6222{rng.randint(10**11, 10**12 - 1)}", "required_l2_engineers": 1,
        "email_domains": domain, "created_at": created})
    for line_id in line_ids:
        net.add(AgencyProductLine, {"agency_id": agency_id, "product_line_id": line_id})
    _history(net, rng, info, agency_id, status, registered)
    agency = AgencyInfo(id=agency_id, code=code, region_id=region_id, tier=tier, status=status,
                        city=capital, line_ids=line_ids,
                        weight=(3.0 if is_center else 1.0) * rng.lognormvariate(0, 0.4))
    for role, key, name in AGENCY_ACCOUNTS:
        agency.accounts[role] = _account(net, info, role, f"{key}@{domain}",
                                         rng.choice(SURNAMES) + name, agency_id=agency_id,
                                         created=created)
    return agency


def _history(net, rng, info: NetworkInfo, agency_id: int, status: str, registered: date) -> None:
    """The lifecycle from registration to today's state, one change row and audit entry each."""
    admin = info.hq["admin"]
    steps = [(None, AgencyStatus.APPLICANT)]
    previous = AgencyStatus.APPLICANT
    for state in LIFECYCLE[status]:
        steps.append((previous, state))
        previous = state
    day = registered
    for n, (before, after) in enumerate(steps):
        if n:
            day = min(day + timedelta(days=rng.randint(30, 180)), net.today - timedelta(days=1))
        at = datetime.combine(day, time(3), tzinfo=UTC)
        net.add(AgencyStatusChange, {"agency_id": agency_id, "from_status": before,
                                     "to_status": after, "reason": REASONS[after],
                                     "actor_id": admin.id if n else None, "at": at})
        if n:
            net.audit("agency.status_changed", "Agency", agency_id, at=at, actor=admin,
                      agency_id=agency_id, before={"status": before},
                      after={"status": after, "reason": REASONS[after]})
        else:
            net.audit("agency.created", "Agency", agency_id, at=at, actor=admin,
                      agency_id=agency_id, after={"status": after})


synth.register("network", build, order=10)
