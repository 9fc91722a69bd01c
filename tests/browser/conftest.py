"""A live portal on a loopback port with demo data, and Debian's Chromium driven by Playwright.

Skips with a clear reason when Chromium is missing, unless PORTAL_REQUIRE_BROWSER=1 (CI).
One live server with the demo network serves the whole session; each journey signs in its
users in browser contexts of their own. `Journey.step()` photographs a page at 1366×768 and
at a phone's 390×844, checks that nothing overflows sideways on the phone, and switches the
language with the navigation bar's button (checking that the page really changed language),
so every page of a journey is seen in both languages.

Accessibility: axe-core (tests/browser/node_modules, `make browser-deps`) checks every page any
browser test shows, in every context made from the `browser` fixture: each document when the
tab leaves it (a navigation waits for the check), the pages still open when the test ends, and
every journey step again at phone width. A violation of WCAG 2.1 A/AA with impact serious or
critical fails the test, listed by page. axe-core comes in as an init script and reports
through a binding (both by the DevTools protocol), so the portal's Content-Security-Policy
stays as strict as in production. A context made with java_script_enabled=False is not checked.
"""
import email
import email.policy
import json
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("PORTAL_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
PASSWORD = "demo-portal-2026"
REQUIRED = os.environ.get("PORTAL_REQUIRE_BROWSER") == "1"
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


# --- accessibility: axe-core on every page ----------------------------------------------------

# In every document of a watched context, after axe-core's source: a top-level portal page
# runs axe once loaded and reports through the __portalAxeReport binding; __portalAxeRun()
# runs it again (once per window width), e.g. at phone width. Runs never overlap.
_AXE_RUNNER = """(() => {
  if (window.top !== window || !/^https?:$/.test(location.protocol)) { return; }
  const tags = %s, blocking = %s;
  const done = {};
  window.__portalAxeRun = () => {
    const key = "w" + window.innerWidth;
    if (done[key]) { return Promise.resolve(null); }
    done[key] = true;
    const run = (window.__portalAxeChain || Promise.resolve()).then(() => window.axe.run(
      document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]}))
    .then(result => ({
      url: location.href, lang: document.documentElement.lang, width: window.innerWidth,
      violations: result.violations.filter(v => blocking.includes(v.impact)).map(v => ({
        id: v.id, impact: v.impact, help: v.help, more: Math.max(0, v.nodes.length - 5),
        nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + (n.failureSummary
          ? " — " + n.failureSummary.split("\\n").slice(1).join(" ").trim() : ""))}))}));
    window.__portalAxeChain = run.catch(() => null);
    return run;
  };
  window.addEventListener("load", () => {
    window.__portalAxeRun()
      .then(found => window.__portalAxeReport(found || {url: location.href}))
      .catch(error => window.__portalAxeReport({url: location.href, error: String(error)}));
  });
})();"""
REPORT_WAIT_MS = 20000


class Accessibility:
    """axe-core in every page of the browser contexts it watches; what it finds is kept for
    the running test (see the module's docstring).

    Each top-level document runs axe itself once loaded (an init script, which the page's
    CSP does not govern) and reports through a binding. Before a tab navigates away, the
    route handler waits for the report of the document it leaves, so no page goes unchecked
    however fast a test clicks on."""

    def __init__(self, source: str):
        self.script = source + "\n" + _AXE_RUNNER % (json.dumps(AXE_TAGS),
                                                     json.dumps(list(BLOCKING)))
        self.violations: list[str] = []
        self.contexts: list = []
        self.reported: dict = {}  # page -> has its current document reported?
        self.pages = 0

    def start_test(self) -> None:
        self.violations, self.contexts = [], []

    def watch(self, context) -> None:
        context.add_init_script(script=self.script)
        context.expose_binding("__portalAxeReport", self._on_report)
        context.route("**/*", self._on_route)
        context.on("page", self._track)
        close = context.close

        def checked_close(*args, **kwargs):
            self.check_context(context)
            return close(*args, **kwargs)

        context.close = checked_close
        self.contexts.append(context)

    def _track(self, page) -> None:
        self.reported[page] = True  # about:blank: nothing to check

        def loaded(_):
            if page.url.startswith("http"):
                self.reported[page] = False

        page.on("domcontentloaded", loaded)
        page.on("close", lambda _: self.reported.pop(page, None))

    def _on_report(self, source, payload) -> None:
        page = source["page"]
        if page in self.reported and payload.get("url") == page.url:
            self.reported[page] = True
        self._record(payload)

    def _record(self, payload) -> list[str]:
        if not payload:
            return []
        where = f"{payload.get('url')} ({payload.get('lang')}, {payload.get('width')}px)"
        if payload.get("error"):
            problems = [f"{payload['url']}: axe-core failed: {payload['error']}"]
        else:
            if "violations" in payload:
                self.pages += 1
            problems = [
                f"{where}: {v['id']} [{v['impact']}] {v['help']}: " + "; ".join(v["nodes"])
                + (f" (+{v['more']} more)" if v["more"] else "")
                for v in payload.get("violations", [])]
        self.violations.extend(problems)
        return problems

    def _on_route(self, route) -> None:
        request = route.request
        try:
            if request.is_navigation_request() and request.frame.parent_frame is None:
                self.wait_for_report(request.frame.page)
        finally:
            route.fallback()

    def wait_for_report(self, page) -> None:
        """Until the document `page` shows has reported (its tab may then leave it)."""
        waited = 0
        while not self.reported.get(page, True) and not page.is_closed():
            if waited >= REPORT_WAIT_MS:
                self.violations.append(f"{page.url}: axe-core did not report within "
                                       f"{REPORT_WAIT_MS / 1000:.0f} s")
                self.reported[page] = True
                break
            page.wait_for_timeout(50)
            waited += 50

    def check_context(self, context) -> None:
        for page in list(context.pages):
            if not page.is_closed():
                self.wait_for_report(page)

    def check_open_pages(self) -> None:
        for context in self.contexts:
            self.check_context(context)

    def check(self, page) -> list[str]:
        """axe-core again on the document `page` shows, at the window's present width."""
        self.wait_for_report(page)
        if not page.url.startswith("http"):
            return []
        return self._record(page.evaluate(
            "() => window.__portalAxeRun ? window.__portalAxeRun() : null"))


class CheckedBrowser:
    """The Playwright browser whose every context is watched by `accessibility`."""

    def __init__(self, browser, accessibility: Accessibility):
        self._browser, self.accessibility = browser, accessibility

    def __getattr__(self, name):
        return getattr(self._browser, name)

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)
        if kwargs.get("java_script_enabled", True):  # axe-core is a script
            self.accessibility.watch(context)
        return context

    def new_page(self, **kwargs):
        context = self.new_context(**kwargs)
        page = context.new_page()
        page.on("close", lambda _: context.close())
        return page


_ACCESSIBILITY: Accessibility | None = None


@pytest.fixture(scope="session")
def accessibility():
    """axe-core, from tests/browser/node_modules (npm ci --prefix tests/browser)."""
    global _ACCESSIBILITY
    if not AXE.exists():
        message = (f"axe-core is missing ({AXE}): run `make browser-deps` "
                   "(npm ci --prefix tests/browser); every browser test checks its pages with it")
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    _ACCESSIBILITY = Accessibility(AXE.read_text(encoding="utf-8"))
    yield _ACCESSIBILITY
    _ACCESSIBILITY = None


@pytest.fixture(autouse=True)
def _accessibility_per_test(accessibility):
    accessibility.start_test()
    yield
    accessibility.check_open_pages()  # pages a test left open in teardown fixtures' contexts
    late, accessibility.violations = accessibility.violations, []
    if late:
        pytest.fail("accessibility (axe-core) violations:\n" + "\n".join(late), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Once the test's body has run, the pages it still shows are checked too, and every
    violation found during the test fails it."""
    result = yield
    checker = _ACCESSIBILITY
    if checker is not None:
        checker.check_open_pages()
        found, checker.violations = checker.violations, []
        if found:
            raise AssertionError(f"{len(found)} accessibility (axe-core) violations, serious or "
                                 "critical:\n" + "\n".join(dict.fromkeys(found)))
    return result


@pytest.fixture(scope="session")
def browser(accessibility):
    if not Path(CHROMIUM).exists():
        if REQUIRED:
            pytest.fail("Chromium is required here but /usr/bin/chromium is missing")
        pytest.skip("no Chromium: apt-get install -y chromium (the browser tests drive it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield CheckedBrowser(browser, accessibility)
        browser.close()


class Mailbox:
    """aiosmtpd handler keeping every message the live portal sends, in order."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.port = 0
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, match, timeout: float = 20.0):
        """The first message `match` accepts, waiting for delivery (a thread of the portal
        sends within seconds of the commit)."""
        def found():
            return next((m for m in self.messages if match(m)), None)

        with self._arrived:
            message = self._arrived.wait_for(found, timeout)
        assert message is not None, (
            f"no such e-mail within {timeout}s; received: "
            f"{[(m['To'], m['Subject']) for m in self.messages]}")
        return message

    def wait_all(self, match, *, after: int = 0, quiet: float = 3.0, timeout: float = 60.0):
        """Every message after the first `after` that `match` accepts, once none has come
        for `quiet` seconds (a batch's delivery has ended)."""
        deadline, last, count = time.monotonic() + timeout, time.monotonic(), -1
        while time.monotonic() < deadline:
            found = [m for m in self.messages[after:] if match(m)]
            if len(found) != count:
                count, last = len(found), time.monotonic()
            elif found and time.monotonic() - last >= quiet:
                return found
            time.sleep(0.2)
        raise AssertionError(f"e-mails still arriving or none after {timeout}s: {count}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def mailbox():
    """A real SMTP server on a loopback port: the live portal's e-mail goes there."""
    from aiosmtpd.controller import Controller

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=_free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


def _buffered(app):
    """The WSGI app with each response read to the end and closed before it is sent: when the
    browser drops a request (a favicon as the tab moves on), Werkzeug's development server can
    skip closing the response, and the file it had open would be a ResourceWarning."""
    def application(environ, start_response):
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

    return application


@pytest.fixture(scope="session")
def live_portal(tmp_path_factory, browser, mailbox):
    """The portal with the demo network, served by Werkzeug on 127.0.0.1."""
    from flask_migrate import upgrade

    from portal import create_app
    from portal.cli import load_demo

    instance = tmp_path_factory.mktemp("live")
    prebuilt = os.environ.get("PORTAL_LIVE_DEMO")  # a folder with demo.sqlite3 and files/
    if prebuilt:  # faster reruns while writing journeys: a copy of a demo database
        shutil.copy(Path(prebuilt) / "demo.sqlite3", instance / "live.sqlite3")
        shutil.copytree(Path(prebuilt) / "files", instance / "files")
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(instance / "live.sqlite3"),
        "SECRET_KEY": "browser-tests", "ARGON2_MEMORY_COST": 1024, "ARGON2_TIME_COST": 1,
        "ARGON2_PARALLELISM": 1, "UPLOAD_ROOT": str(instance / "files"),
        "RATELIMIT_STORAGE_URI": "memory://",
    })
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory, revision="heads")
        if not prebuilt:
            load_demo()
    server = make_server("127.0.0.1", 0, _buffered(app), threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    # E-mail on after the demo is loaded (else its history would be queued and sent): every
    # change the journeys make is e-mailed, as in production, to the test's SMTP server.
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=mailbox.port, PORTAL_BASE_URL=base,
                      MAIL_DELIVERY="background")
    from portal.extensions import mail

    mail.init_app(app)  # Flask-Mailman reads the host and port at init_app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


@pytest.fixture
def shot(request):
    """Save a screenshot of a page as a test artifact: shot(page, "step-name")."""
    folder = ARTIFACTS / "screenshots" / request.node.name
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


class Journey:
    """Browser contexts of the journey's users, and the checks every step makes."""

    def __init__(self, browser, base: str, folder: Path):
        self.browser, self.base, self.folder = browser, base, folder
        self.pages: dict[str, object] = {}
        self.errors: list[str] = []
        self.layout: list[str] = []
        self.shots: list[Path] = []
        self.switches = 0
        self.n = 0

    def as_user(self, email: str, locale: str = "zh_CN"):
        """The page of `email`, signed in (once) in a context of its own."""
        if email in self.pages:
            return self.pages[email]
        context = self.browser.new_context(viewport=DESKTOP, accept_downloads=True,
                                           locale="zh-CN" if locale == "zh_CN" else "en-US")
        page = context.new_page()
        page.on("console", lambda m: self.errors.append(f"{email}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"{email}: {e}"))
        page.on("dialog", lambda dialog: dialog.accept())  # the portal's confirm() questions
        page.goto(f"{self.base}/auth/sign-in")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("form [type=submit]")
        assert page.url == f"{self.base}/", (
            f"{email} could not sign in: {page.url}; cookies "
            f"{[(c['name'], len(c['value']), c.get('expires')) for c in context.cookies()]}; "
            f"page says {page.inner_text('main')[:300]!r}")
        self.pages[email] = page
        if self.language(page) != locale:
            self.switch(page)
        return page

    @staticmethod
    def language(page) -> str:
        return "zh_CN" if page.get_attribute("html", "lang") == "zh-CN" else "en"

    def switch(self, page) -> str:
        """Press the language button; the page comes back in the other language."""
        before, title = self.language(page), page.title()
        target = "en" if before == "zh_CN" else "zh_CN"
        button = page.locator(f"button[name=locale][value={target}]")
        if not button.is_visible():
            page.click("button.navbar-toggler")
            button.wait_for(state="visible")
            page.wait_for_timeout(400)  # the menu's collapse animation
        with page.expect_navigation():
            button.click()
        after = self.language(page)
        assert after == target, f"language switch on {page.url} left {after}"
        assert page.title() != title, f"{page.url}: the title did not change language ({title})"
        if target == "zh_CN":
            assert re.search(r"[\u4e00-\u9fff]", page.title()), page.title()
        self.switches += 1
        return after

    def step(self, page, name: str, *, switch: bool = True) -> None:
        """Photograph the page at desktop and phone width, check the phone layout, then
        switch the language (the journey goes on in the other one)."""
        self.n += 1
        language = self.language(page)
        base = f"{self.n:02d}-{name}-{language}"
        self._photo(page, f"{base}-desktop")
        page.set_viewport_size(PHONE)
        overflow = page.evaluate(
            "() => [document.scrollingElement.scrollWidth, window.innerWidth]")
        checker = getattr(self.browser, "accessibility", None)
        if checker is not None:
            checker.check(page)  # axe-core at phone width too
        self._photo(page, f"{base}-phone")
        page.set_viewport_size(DESKTOP)
        if overflow[0] > overflow[1]:  # judged at the end: the journey goes on
            self.layout.append(f"{name} ({page.url}) overflows at phone width: "
                               f"{overflow[0]} > {overflow[1]}px")
        assert "Traceback" not in page.content()
        if switch:
            self.switch(page)

    def _photo(self, page, name: str) -> None:
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)

    def finish(self) -> None:
        """The checks judged over the whole journey."""
        assert not self.errors, self.errors  # no CSP violations or script errors
        assert not self.layout, self.layout

    def close(self) -> None:
        for page in self.pages.values():
            page.context.close()


@pytest.fixture
def journey(browser, live_portal, request):
    folder = ARTIFACTS / "screenshots" / request.node.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    made = Journey(browser, live_portal, folder)
    yield made
    made.close()
    print(f"\n{request.node.name}: {made.n} steps, {len(made.shots)} screenshots, "
          f"{made.switches} language switches, {len(made.errors)} console errors, "
          f"{len(made.layout)} pages overflowing at phone width")
