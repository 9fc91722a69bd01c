"""The settlement catalog passes the portal's catalog checks (until CATALOGS lists it)."""
import pytest

from tests.portal import test_i18n

AREA = {"settlement": ["settlement", "templates/settlement"]}


@pytest.fixture(autouse=True)
def catalog(monkeypatch):
    monkeypatch.setattr(test_i18n, "CATALOGS", {**test_i18n.CATALOGS, **AREA})


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_catalog_is_complete_and_placeholders_match(locale, tmp_path):
    test_i18n.test_catalog_is_complete_and_placeholders_match("settlement", locale, tmp_path)


def test_catalog_holds_every_message_of_its_sources(tmp_path):
    test_i18n.test_catalog_holds_every_message_of_its_sources("settlement", tmp_path)


def test_pages_read_in_chinese(app, client, world):
    from portal.auth.roles import Role
    from tests.factories import sign_in

    sign_in(client, world.user(Role.HQ_SETTLEMENT))
    client.post("/locale", data={"locale": "zh_CN"})
    body = client.get("/settlements/").get_data(as_text=True)
    assert "全网结算单" in body and "按状态汇总" in body and "Totals per state" not in body
    body = client.get("/settlements/rate-cards/").get_data(as_text=True)
    assert "费率表" in body
