"""The issuer of documents: HQ admin sets the name, address, logo and seal; documents carry them.

Images are judged by content (PNG or a plain SVG drawing), refused with a clear message and no
change when they could script or load anything, and every change is in the audit log.
"""
import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tenants import issuer
from tenants.demo import demo_logo_svg, demo_seal_svg
from tenants.models import IssuerIdentity
from tests.factories import sign_in

pytestmark = pytest.mark.usefixtures("own_upload_root")

NAMES = {"name_zh": "测试电器股份有限公司", "name_en": "Test Appliances Co., Ltd.",
         "address_zh": "上海市测试路 8 号", "address_en": "8 Test Road, Shanghai"}


def _png(size=(40, 20)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def _row(app) -> IssuerIdentity:
    with app.app_context():
        return issuer.current()


def _files(app) -> list[Path]:
    root = Path(app.config["UPLOAD_ROOT"]) / "issuer"
    return sorted(root.glob("*")) if root.exists() else []


def _post(client, app, **changes):
    data = {**NAMES, "version": _row(app).version or 1, **changes}
    return client.post("/network/issuer", data=data, content_type="multipart/form-data")


@pytest.fixture
def admin(client, world):
    sign_in(client, world.user(Role.HQ_ADMIN))
    return client


def test_hq_admin_sets_names_logo_and_seal_and_the_audit_log_keeps_the_hashes(app, admin):
    response = _post(admin, app, logo=(io.BytesIO(_png()), "logo.png"),
                     seal=(io.BytesIO(demo_seal_svg()), "seal.svg"))
    assert response.status_code == 302
    row = _row(app)
    assert (row.name_zh, row.name_en) == (NAMES["name_zh"], NAMES["name_en"])
    assert (row.logo_type, row.seal_type) == ("image/png", "image/svg+xml")
    assert len(_files(app)) == 2
    page = admin.get("/network/issuer").data.decode()
    assert row.logo_sha256 in page and row.seal_sha256 in page
    image = admin.get("/network/issuer/logo")
    assert image.status_code == 200 and image.data == _png()
    assert "default-src 'none'" in image.headers["Content-Security-Policy"]
    with app.app_context(), unscoped("test reads the audit log"):
        entry = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "issuer.changed")).one()
    assert entry.after["logo_sha256"] == row.logo_sha256
    assert entry.after["name_zh"] == NAMES["name_zh"]


def test_replacing_and_removing_an_image_leaves_no_orphan_file(app, admin):
    _post(admin, app, logo=(io.BytesIO(_png()), "a.png"))
    first = _files(app)
    _post(admin, app, logo=(io.BytesIO(_png((50, 50))), "b.png"))
    second = _files(app)
    assert len(second) == 1 and second != first
    _post(admin, app, remove_logo="y")
    assert _files(app) == [] and _row(app).logo_file is None
    assert admin.get("/network/issuer/logo").status_code == 404


SCRIPTED = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
EVENT = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>'
LINKED = (b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
          b'<a xlink:href="https://evil.example/"><rect/></a></svg>')
FETCHING = (b'<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill:url(file:///etc/passwd)"'
            b'/></svg>')
ENTITY = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "boom">]>'
          b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>')
FOREIGN = (b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><div>x</div>'
           b'</foreignObject></svg>')


@pytest.mark.parametrize("data,message", [
    (b"GIF89a\x01\x00\x01\x00", b"Only PNG and SVG"),
    (b"\x89PNG\r\n\x1a\nnot really a png", b"cannot be read"),
    (b"<svg broken", b"cannot be read"),
    (b'<?xml version="1.0"?><html><svg/></html>', b"not an SVG"),
    (SCRIPTED, b"plain drawing"),
    (EVENT, b"plain drawing"),
    (LINKED, b"plain drawing"),
    (FETCHING, b"plain drawing"),
    (ENTITY, b"plain drawing"),
    (FOREIGN, b"plain drawing"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 5000, b"larger than 4 KB"),
], ids=["gif", "fake-png", "broken-svg", "html", "script", "onload", "link", "url-fetch",
        "entity", "foreign-object", "too-large"])
def test_a_bad_image_is_refused_with_a_message_and_changes_nothing(app, admin, data, message,
                                                                   monkeypatch):
    monkeypatch.setitem(app.config, "PORTAL_ISSUER_IMAGE_MAX_BYTES", 4096)
    before = _row(app).version
    response = _post(admin, app, name_zh="改过的名字", seal=(io.BytesIO(data), "seal.svg"))
    assert response.status_code == 200
    assert message.lower() in response.data.lower()
    row = _row(app)
    assert row.name_zh != "改过的名字" and row.version == before
    assert _files(app) == []


def test_an_oversized_png_is_refused(app, admin):
    response = _post(admin, app, logo=(io.BytesIO(_png((5000, 10))), "wide.png"))
    assert b"at most 4096 pixels" in response.data
    assert _files(app) == []


def test_a_stale_page_changes_nothing(app, admin):
    _post(admin, app)
    response = _post(admin, app, name_zh="旧页面", version=1)
    assert response.status_code == 200 and b"out of date" in response.data
    assert _row(app).name_zh == NAMES["name_zh"]


@pytest.mark.parametrize("role", [Role.HQ_SETTLEMENT, Role.AUDITOR, Role.AGENCY_OWNER,
                                  Role.REGIONAL_MANAGER])
def test_only_hq_admin_sees_or_changes_the_issuer(app, client, world, role):
    sign_in(client, world.user(role))
    assert client.get("/network/issuer").status_code in (403, 404)
    assert _post(client, app, name_zh="别人改的").status_code in (403, 404)
    assert client.get("/network/issuer/logo").status_code in (403, 404)
    assert _row(app).name_zh != "别人改的"


def test_a_document_without_identity_carries_the_portal_name(ctx):
    info, images = issuer.document_issuer("zh_CN")
    assert info["configured"] is False and images == {}
    assert info["name"] == "服务网络门户" or info["name"] == "Service Network Portal"
    assert info["logo"] is None and info["seal"] is None


def test_documents_carry_the_configured_issuer_with_its_seal(ctx, world):
    issuer.save_issuer(issuer.current(), NAMES,
                       {"logo": demo_logo_svg(), "seal": demo_seal_svg()}, acting_user=None,
                       seen_version=issuer.current().version)
    zh, images = issuer.document_issuer("zh_CN")
    en, _images = issuer.document_issuer("en")
    assert (zh["name"], en["name"]) == (NAMES["name_zh"], NAMES["name_en"])
    assert zh["seal"] == "portal-image:seal" and set(images) == {"logo", "seal"}
    from flask import render_template_string

    from portal.pdf import PortalAssetFetcher

    fetcher = PortalAssetFetcher(images)
    assert fetcher.fetch("portal-image:seal").read() == demo_seal_svg()
    with pytest.raises(ValueError):
        fetcher.fetch("portal-image:../../etc/passwd")
    html = render_template_string(
        '{% from "portal/pdf/_document.html" import letterhead, seal %}'
        '{{ letterhead(issuer) }}{{ seal(issuer) }}', issuer=zh)
    assert NAMES["name_zh"] in html and 'src="portal-image:seal"' in html


def test_the_demo_seal_and_logo_pass_the_checks_and_render(ctx):
    assert issuer.checked_image(demo_seal_svg(), "seal") == "image/svg+xml"
    assert issuer.checked_image(demo_logo_svg(), "logo") == "image/svg+xml"
