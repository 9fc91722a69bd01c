"""The API's documentation page in a real browser: the vendored Swagger UI renders every
operation of /api/v1/openapi.json, under the portal's strict Content-Security-Policy (no
violation, no script error), with nothing fetched from another origin."""
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import DESKTOP

pytestmark = pytest.mark.browser

# Every CSP violation the page meets, as the browser reports it to the document.
_WATCH_CSP = """(() => {
  window.__cspViolations = [];
  document.addEventListener("securitypolicyviolation", e => window.__cspViolations.push(
    e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || "") +
    ":" + (e.lineNumber || "")));
})();"""


def test_the_docs_page_renders_every_operation_under_the_csp(browser, live_portal):
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    context.add_init_script(script=_WATCH_CSP)
    page = context.new_page()
    errors, foreign = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: foreign.append(r.url)
            if urlsplit(r.url).netloc not in ("", urlsplit(live_portal).netloc)
            and not r.url.startswith(("data:", "blob:")) else None)
    try:
        document = page.request.get(f"{live_portal}/api/v1/openapi.json").json()
        operations = [(method.upper(), path) for path, item in document["paths"].items()
                      for method in item if method in ("get", "post", "put", "patch", "delete")]
        assert operations

        response = page.goto(f"{live_portal}/api/v1/docs")
        assert response.status == 200
        assert "script-src 'self'" in response.headers["content-security-policy"]
        blocks = page.locator(".swagger-ui .opblock")
        blocks.first.wait_for(timeout=20000)
        page.wait_for_function("n => document.querySelectorAll('.swagger-ui .opblock')"
                               ".length >= n", arg=len(operations), timeout=20000)
        shown = {(block.locator(".opblock-summary-method").inner_text().strip(),
                  block.locator(".opblock-summary-path").get_attribute("data-path"))
                 for block in blocks.all()}
        assert set(operations) <= shown, sorted(set(operations) - shown)

        # One operation opened: its parameters, responses and highlighted examples render.
        blocks.first.locator(".opblock-summary").click()
        page.locator(".swagger-ui .opblock.is-open .responses-wrapper").wait_for()
        page.locator(".swagger-ui .opblock.is-open .highlight-code").first.wait_for()
        page.wait_for_timeout(300)

        violations = page.evaluate("() => window.__cspViolations")
        assert not violations, f"CSP violations: {violations}"
        assert not errors, f"console errors: {errors}"
        assert not foreign, f"requests to other origins: {foreign}"
    finally:
        context.close()
