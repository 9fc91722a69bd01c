"""A live portal on a loopback port with demo data, and Debian's Chromium driven by Playwright.

Skips with a clear reason when Chromium is missing, unless PORTAL_REQUIRE_BROWSER=1 (CI).
"""
import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("PORTAL_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("PORTAL_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here but /usr/bin/chromium is missing")
        pytest.skip("no Chromium: apt-get install -y chromium (the browser tests drive it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def live_portal(tmp_path_factory):
    """The portal with the demo network, served by Werkzeug on 127.0.0.1."""
    from flask_migrate import upgrade

    from portal import create_app
    from portal.cli import load_demo

    instance = tmp_path_factory.mktemp("live")
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(instance / "live.sqlite3"),
        "SECRET_KEY": "browser-tests", "ARGON2_MEMORY_COST": 1024, "ARGON2_TIME_COST": 1,
        "ARGON2_PARALLELISM": 1, "UPLOAD_ROOT": str(instance / "files"),
        "RATELIMIT_STORAGE_URI": "memory://",
    })
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory, revision="heads")
        load_demo()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
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
