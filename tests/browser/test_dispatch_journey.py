"""Dispatch in a real browser, on the demo network, in both languages (issue #18).

HQ's dispatcher takes a call in Shanghai's Pudong and offers it to the agency the suggestion
ranks (SH-C01 covers its own city); SH-C01's owner, on a phone-width screen, accepts the offer
and books the appointment; time then runs past the on-site arrival target (the live portal
runs in this process, so time-machine moves its clock) and the board shows the arrival as
breached; the tick escalates it to the East region's manager, who finds it in the inbox and
on the board; the engineer's late arrival is recorded on the work order and the order's
timeline says "met late". Every page is photographed at desktop and phone width and switched
to the other language (see conftest.Journey); axe-core checks each one.
"""
import re
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import time_machine

from portal.clock import local_today, to_local
from tests.browser.conftest import DESKTOP, PASSWORD, PHONE

DISPATCHER = "dispatcher@hq.demo"
OWNER = "owner@sh-c01.demo"
MANAGER = "east.manager@hq.demo"
AGENCY = "SH-C01"
FAULT = "空调不制冷，室外机不转（派单浏览器测试）"


# --- the live portal's database, read and ticked from the test ----------------------------------


def _live_database(tmp_path_factory) -> Path:
    """The live portal's SQLite file (conftest.live_portal keeps it in a "live" folder)."""
    found = sorted(tmp_path_factory.getbasetemp().glob("live*/live.sqlite3"),
                   key=lambda p: p.stat().st_mtime)
    assert found, "no live portal database"
    return found[-1]


_APPS: dict = {}


@contextmanager
def _portal(database: Path, base: str):
    """An app on the live portal's database (the same process, so the same moved clock):
    for what the test reads and for the tick a scheduler would run."""
    from portal import create_app
    from portal.tenancy import unscoped

    app = _APPS.get(database)
    if app is None:
        app = _APPS[database] = create_app({
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
            "SECRET_KEY": "browser-tests", "PORTAL_BASE_URL": base,
            "MAIL_DELIVERY": "manual", "RATELIMIT_STORAGE_URI": "memory://"})
    with app.test_request_context(base_url=base), unscoped("the browser test reads its facts"):
        yield app


def _network_facts(database: Path, base: str) -> dict:
    """SH-C01's place and an on-site product it is authorized for; the East region's
    manager (SH-C01's region)."""
    from sqlalchemy import select

    from portal.auth.models import User
    from portal.extensions import db
    from tenants.models import Agency, ProductModel

    with _portal(database, base):
        agency = db.session.scalars(select(Agency).where(Agency.code == AGENCY)).one()
        assert "onsite" in agency.service_type_list, agency.service_type_list
        line = sorted(agency.product_lines, key=lambda x: x.code)[0]
        model = db.session.scalars(select(ProductModel).where(
            ProductModel.product_line_id == line.id).order_by(ProductModel.id)).first()
        manager = db.session.scalars(select(User).where(User.email == MANAGER)).one()
        assert manager.region_id == agency.region_id, "SH-C01 is not in the manager's region"
        return {"agency_id": agency.id, "province_id": agency.province_id,
                "city": agency.city, "line_id": line.id, "model_id": model.id}


def _arrival_clock(database: Path, base: str, agency_id: int, order_id: int) -> dict:
    from dispatch import sla
    from portal.extensions import db
    from service.models import WorkOrder

    with _portal(database, base):
        clocks = sla.order_clocks(agency_id, order_id)
        arrival = next(c for c in clocks if c.milestone == sla.Milestone.ARRIVAL)
        number = db.session.get(WorkOrder, order_id).number
        return {"due_at": arrival.due_at, "escalate_at": arrival.escalate_at,
                "met_at": arrival.met_at, "started_at": arrival.started_at,
                "target_seconds": arrival.target_seconds, "number": number}


def _tick(database: Path, base: str) -> dict:
    """The scheduler's tick (reminders and escalations), as `flask inbox tick` runs it."""
    from inbox.reminders import tick
    from portal.extensions import db

    with _portal(database, base):
        made = tick()
        db.session.commit()
        return made


def _state_labels(database: Path, base: str, state: str) -> set[str]:
    """A clock state's label in both languages."""
    from flask_babel import force_locale

    from dispatch import sla

    with _portal(database, base):
        labels = set()
        for locale in ("en", "zh_CN"):
            with force_locale(locale):
                labels.add(str(sla.CLOCK_STATE_LABELS[sla.ClockState(state)]))
        return labels


# --- page helpers ------------------------------------------------------------------------------


def _submit(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def _path(url: str) -> str:
    return urlsplit(url).path


def _phone_user(journey, email: str, locale: str):
    """The page of `email` signed in on a phone (390×844, touch): the agency answers its
    offers on the road. Kept among the journey's pages (closed with them)."""
    if email in journey.pages:
        return journey.pages[email]
    context = journey.browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True,
        locale="zh-CN" if locale == "zh_CN" else "en-US")
    page = context.new_page()
    page.on("console", lambda m: journey.errors.append(f"{email}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: journey.errors.append(f"{email}: {e}"))
    page.on("dialog", lambda dialog: dialog.accept())
    journey.pages[email] = page
    _sign_in(journey, page, email)
    if journey.language(page) != locale:
        journey.switch(page)
    return page


def _sign_in(journey, page, email: str) -> None:
    """Sign in (again: once the clock has moved days ahead, the session has expired)."""
    page.goto(f"{journey.base}/auth/sign-in")
    if page.locator("input[name=password]").count() == 0:
        return  # still signed in
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form [type=submit]")
    assert _path(page.url) == "/", f"{email} could not sign in: {page.url}"


def _phone_step(journey, page, name: str, *, switch: bool = True) -> None:
    """A journey step of the phone user: photographed at both widths like every step, then
    back to the phone's width for what the user does next."""
    page.set_viewport_size(DESKTOP)
    journey.step(page, name, switch=switch)
    page.set_viewport_size(PHONE)


def _on_phone(page) -> None:
    width = page.evaluate("() => window.innerWidth")
    assert width == PHONE["width"], f"not at phone width: {width}px"


def _local_input(moment) -> str:
    """A datetime-local field's value for an instant (the network's wall clock)."""
    return to_local(moment).strftime("%Y-%m-%dT%H:%M")


def _inbox_tasks(page, text: str):
    """The inbox's open-task buttons whose title holds `text`."""
    rows = page.locator(".list-group-item").filter(
        has=page.locator(".badge.text-bg-primary")).filter(has_text=text)
    return rows.locator("form[action$='/open'] button")


# --- the journey -------------------------------------------------------------------------------


def test_a_call_is_dispatched_accepted_on_a_phone_and_its_late_arrival_escalates(
        journey, tmp_path_factory):
    base = journey.base
    database = _live_database(tmp_path_factory)
    facts = _network_facts(database, base)
    serial = f"BRDSP{int(time.time())}"

    # 1. The hotline: the dispatcher takes the call.
    dispatcher = journey.as_user(DISPATCHER, "zh_CN")
    dispatcher.goto(f"{base}/dispatch/requests/new")
    journey.step(dispatcher, "dispatcher-call-form")
    call = "form:has(input[name=call_key])"
    dispatcher.fill(f"{call} input[name=customer_name]", "吴女士")
    dispatcher.fill(f"{call} input[name=customer_phone]", "13912345678")
    dispatcher.select_option(f"{call} select[name=province_id]", str(facts["province_id"]))
    dispatcher.fill(f"{call} input[name=city]", facts["city"])
    dispatcher.fill(f"{call} input[name=district]", "陆家嘴")
    dispatcher.fill(f"{call} input[name=street]", "银城中路 8 号 1201 室")
    dispatcher.select_option(f"{call} select[name=product_line_id]", str(facts["line_id"]))
    dispatcher.select_option(f"{call} select[name=product_model_id]", str(facts["model_id"]))
    dispatcher.fill(f"{call} input[name=serial_number]", serial)
    dispatcher.select_option(f"{call} select[name=service_type]", "onsite")
    dispatcher.fill(f"{call} textarea[name=fault_description]", FAULT)
    _submit(dispatcher, f"{call} button.btn-primary")
    assert re.fullmatch(r"/dispatch/requests/\d+", _path(dispatcher.url)), (
        dispatcher.url, dispatcher.locator("main").inner_text()[:600])
    request_path = _path(dispatcher.url)
    journey.step(dispatcher, "dispatcher-request-suggestions")

    # 2. The suggestion lists SH-C01 (it covers its own city); the dispatcher offers it.
    offer_form = dispatcher.locator("form[action$='/offer']").filter(
        has=dispatcher.locator(f"input[name=agency_id][value='{facts['agency_id']}']"))
    assert offer_form.count() == 1, dispatcher.locator("main").inner_text()[:1500]
    with dispatcher.expect_navigation():
        offer_form.locator("button").click()
    assert _path(dispatcher.url) == request_path, dispatcher.url
    assert dispatcher.locator("form[action$='/withdraw']").count() == 1, "no open offer"
    offer_link = dispatcher.locator("#offer-history a[href*='/dispatch/offers/']")
    assert offer_link.count() == 1
    offer_path = offer_link.get_attribute("href")
    journey.step(dispatcher, "dispatcher-offered")

    # 3. SH-C01's owner, on a phone: the offer, accepted; the appointment, booked.
    owner = _phone_user(journey, OWNER, "zh_CN")
    owner.goto(f"{base}/dispatch/offers")
    _on_phone(owner)
    assert owner.locator(f"a[href='{offer_path}']").count() == 1, "the offer is not listed"
    _phone_step(journey, owner, "owner-offers")
    with owner.expect_navigation():
        owner.locator(f"a[href='{offer_path}']").first.click()
    assert _path(owner.url) == offer_path
    assert "吴女士" not in owner.content(), "the offer shows the customer before accepting"
    _phone_step(journey, owner, "owner-offer")
    _on_phone(owner)
    _submit(owner, "form[action$='/accept'] button")
    assert re.fullmatch(r"/dispatch/orders/\d+", _path(owner.url)), (
        owner.url, owner.locator("main").inner_text()[:600])
    order_path = _path(owner.url)
    order_id = int(order_path.rsplit("/", 1)[1])
    assert "吴女士" in owner.locator("#customer").inner_text()
    assert owner.locator("#clocks #clock-arrival").count() == 1, "no arrival clock"
    _phone_step(journey, owner, "owner-order-accepted")

    _on_phone(owner)
    form = "#appointment-form"
    engineers = [v for v in owner.locator(f"{form} select[name=engineer_id] option")
                 .evaluate_all("all => all.map(o => o.value)") if v not in ("", "0")]
    assert engineers, "SH-C01 has no engineer to send"
    visit = (local_today() + timedelta(days=1)).isoformat()
    owner.select_option(f"{form} select[name=engineer_id]", engineers[0])
    owner.fill(f"{form} input[name=day]", visit)
    owner.fill(f"{form} input[name=time_from]", "09:00")
    owner.fill(f"{form} input[name=time_to]", "11:00")
    assert not owner.is_checked(f"{form} input[name=customer_later]")
    _submit(owner, f"{form} button.btn-primary")
    assert _path(owner.url) == order_path, owner.url
    assert owner.locator("#current-appointment").count() == 1, (
        owner.locator("main").inner_text()[:800])
    assert owner.locator(f"{form} select[name=reason]").count() == 1  # now a reschedule
    _phone_step(journey, owner, "owner-appointment-booked")

    # 4. The engineer does not come: the clock runs an hour past the arrival target.
    clock = _arrival_clock(database, base, facts["agency_id"], order_id)
    assert clock["met_at"] is None
    late = clock["due_at"] + timedelta(hours=1)
    assert late < clock["escalate_at"], "an hour late should not yet be escalated to HQ"
    with time_machine.travel(late, tick=True):
        _sign_in(journey, dispatcher, DISPATCHER)  # the session expired days ago
        dispatcher.goto(f"{base}/dispatch/sla?kind=order&milestone=arrival&agency={AGENCY}")
        row = dispatcher.locator("#sla-rows tr.sla-row").filter(
            has=dispatcher.locator(f"a[href='{order_path}']"))
        assert row.count() == 1, dispatcher.locator("main").inner_text()[:1500]
        assert row.get_attribute("data-state") == "breached", row.get_attribute("data-state")
        assert row.locator("td.text-danger").count() == 1  # "breached … ago"
        journey.step(dispatcher, "dispatcher-board-breached")

        # 5. The tick escalates the breach to the region's manager.
        made = _tick(database, base)
        assert made.get("sla.breached", 0) >= 1, made
        manager = journey.as_user(MANAGER, "en")
        manager.goto(f"{base}/inbox/?kind=task")
        task = _inbox_tasks(manager, clock["number"])
        assert task.count() == 1, manager.locator("main").inner_text()[:1500]
        journey.step(manager, "manager-inbox-breach")
        with manager.expect_navigation():
            _inbox_tasks(manager, clock["number"]).click()
        assert _path(manager.url) == order_path, manager.url
        assert manager.locator("#clock-arrival .badge.text-bg-danger").count() == 1
        customer = manager.locator("#customer").inner_text()  # masked for a region (§2.3)
        assert "吴女士" not in customer and "13912345678" not in customer, customer
        journey.step(manager, "manager-order")
        manager.goto(f"{base}/dispatch/sla?kind=order&milestone=arrival")
        assert manager.locator("#sla-rows tr.sla-row").filter(
            has=manager.locator(f"a[href='{order_path}']")).get_attribute(
            "data-state") == "breached"
        journey.step(manager, "manager-board")

        # 6. The engineer arrives, half an hour after the target; the owner records it.
        _sign_in(journey, owner, OWNER)
        owner.goto(f"{base}/service/orders/{order_id}/edit")
        _on_phone(owner)
        owner.fill("#order-form input[name=arrived_at]", _local_input(
            clock["due_at"] + timedelta(minutes=30)))
        _submit(owner, "#order-form > button.btn-primary")
        assert _path(owner.url) == f"/service/orders/{order_id}", (
            owner.url, owner.locator("main").inner_text()[:800])
        _phone_step(journey, owner, "owner-arrival-recorded")

        owner.goto(f"{base}{order_path}")
        met_late = _state_labels(database, base, "met_late")
        badge = owner.locator("#clock-arrival .badge")
        assert badge.inner_text().strip() in met_late, badge.inner_text()
        assert "text-bg-danger" in badge.get_attribute("class")
        _phone_step(journey, owner, "owner-order-met-late")
        stopped = _arrival_clock(database, base, facts["agency_id"], order_id)
        assert stopped["met_at"] is not None and stopped["met_at"] > stopped["due_at"]

        # 7. The board keeps running clocks only: the arrival is off it; the next tick
        # closes the manager's task (the clock stopped).
        dispatcher.goto(f"{base}/dispatch/sla?kind=order&milestone=arrival&agency={AGENCY}")
        assert dispatcher.locator(f"#sla-rows a[href='{order_path}']").count() == 0
        journey.step(dispatcher, "dispatcher-board-after-arrival")
        _tick(database, base)
        manager.goto(f"{base}/inbox/?kind=task")
        assert _inbox_tasks(manager, clock["number"]).count() == 0, "the task stayed open"
        journey.step(manager, "manager-inbox-closed", switch=False)
    journey.finish()
