"""Evaluation pages: who sees what, forms and bad input, the drill-down adding up, downloads,
and constant query counts."""
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import select

from evaluation.models import Appeal, Quarter, Report, Result
from portal.auth.roles import Role
from portal.extensions import db
from portal.tenancy import unscoped
from tests.evaluation import factories as f
from tests.evaluation.test_compute import build_worked_example
from tests.factories import sign_in


@pytest.fixture
def published(app, world, fast_pdfs):
    """The worked example and a little data for A2 and B, computed and published (2026Q2)."""
    with app.app_context(), unscoped("test builds a published quarter"):
        g._audit_actor = None
        build_worked_example(world)
        for agency, n in ((world.a2, 12), (world.b, 15)):
            for k in range(n):
                f.order(agency, world.line, hours=1 if k % 4 else 30, text="CANARY")
        quarter = f.published(inspections={world.a: 88})
        ids = {a: f.result_of(quarter, a).id for a in (world.a, world.a2, world.b)}
        db.session.commit()
        return {"quarter": quarter.id, "a": ids[world.a], "a2": ids[world.a2],
                "b": ids[world.b]}


def _get(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code,
                                            response.get_data(as_text=True)[:300])
    return response.get_data(as_text=True)


def test_agency_sees_its_evaluation_and_kpis(client, world, published):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    body = _get(client, "/evaluation/")
    assert "2026Q2" in body and "CANARY-B" not in body
    body = _get(client, f"/evaluation/results/{published['a']}")
    assert "64.61" in body and "Response timeliness" in body
    assert "Too little data (minimum 10)" in body  # settlement accuracy
    assert "Appeal" in body and "Acknowledge" in body
    svg = client.get(f"/evaluation/results/{published['a']}/trend.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert b"<script" not in svg.data


def test_foreign_and_sibling_results_are_404_for_agencies(client, world, published):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    for key in ("a2", "b"):
        _get(client, f"/evaluation/results/{published[key]}", 404)
        _get(client, f"/evaluation/results/{published[key]}/kpis/timeliness", 404)
        _get(client, f"/evaluation/results/{published[key]}/trend.svg", 404)


@pytest.mark.parametrize("role", [Role.AGENCY_STAFF, Role.ENGINEER])
def test_only_the_owner_reads_the_agencys_evaluation(client, world, published, role):
    """Staff handle orders and parts, engineers their own work (PRODUCT.md §1): their own
    agency's evaluation is refused like any page their role may not open, and not offered."""
    sign_in(client, world.user(role))
    result = published["a"]
    for url in ("/evaluation/", f"/evaluation/results/{result}",
                f"/evaluation/results/{result}/kpis/timeliness",
                f"/evaluation/results/{result}/trend.svg", "/evaluation/service-level",
                f"/evaluation/quarters/{published['quarter']}/rating"):
        _get(client, url, 403)
    home = _get(client, "/")
    assert 'href="/evaluation/"' not in home and "Quarterly evaluation" not in home


def test_drilldown_records_add_up_to_the_kpi(client, world, published):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    body = _get(client, f"/evaluation/results/{published['a']}/kpis/timeliness")
    # 20 completed orders, 4 outside the SLA listed: 16 within, the stored numerator.
    assert "4 listed below; 16 of 20 count towards the KPI." in body
    assert body.count('<td class="mono"><a href="/service/orders/') == 4
    body = _get(client, f"/evaluation/results/{published['a']}/kpis/satisfaction")
    assert "10 revisits, scores summing to 41." in body
    scores = [int(s) for s in body.split('data-score="')[1:] for s in [s.split('"')[0]]]
    assert len(scores) == 10 and sum(scores) == 41  # = numerator; 41 / 10 = 4.10
    assert scores == sorted(scores)  # lowest first
    body = _get(client, f"/evaluation/results/{published['a']}/kpis/returns")
    assert "1 listed below; 3 of 4 count towards the KPI." in body
    body = _get(client, f"/evaluation/results/{published['a']}/kpis/rework")
    assert "The 1 records listed below are the KPI’s count." in body
    body = _get(client, f"/evaluation/results/{published['a']}/kpis/complaints")
    assert "The 1 records listed below" in body
    _get(client, f"/evaluation/results/{published['a']}/kpis/nonsense", 404)


def _rows(body: str) -> list[str]:
    """The rows of the page's records table."""
    if "<tbody>" not in body:
        return []
    return body.split("<tbody>")[1].split("</tbody>")[0].split("<tr")[1:]


def test_every_kpis_records_reconcile_with_its_figure(app, client, world):
    """For every KPI the listed records give the stored numerator and denominator: the bad
    ones are the difference (late, not fixed, uncertified, returns late, lines adjusted), the
    counted ones the numerator (rework, complaints), the revisits both (count and sum)."""
    with app.app_context(), unscoped("test builds a computed quarter"):
        g._audit_actor = None
        build_worked_example(world)
        f.settlement_lines(world.a, world.line, month=f.Q.months[1],
                           decisions=["approved"] * 8 + ["adjusted", "denied", "pending"])
        quarter = f.computed()
        f.inspect(quarter, world.a, 88)
        result = f.result_of(f.computed(), world.a)
        stored = {code: (v.numerator, v.denominator) for code, v in
                  f.values_of(result).items()}
        result_id = result.id
        db.session.commit()
    assert stored["settlement"] == (8, 10)  # the pending line is not decided yet
    # A draft: the region's manager reads it (the agency only once it is published).
    sign_in(client, world.user(Role.REGIONAL_MANAGER))
    listed = {}
    for code in stored:
        body = _get(client, f"/evaluation/results/{result_id}/kpis/{code}")
        rows = _rows(body)
        listed[code] = len(rows)
        numerator, denominator = stored[code]
        assert f'data-live="numerator">{numerator}<' in body, code
        assert f'data-live="denominator">{denominator}<' in body, code
        if code == "satisfaction":
            scores = [int(row.split('data-score="')[1].split('"')[0]) for row in rows]
            assert (sum(scores), len(scores)) == (numerator, denominator)
        elif code in ("rework", "complaints"):
            assert len(rows) == numerator, code
        elif code == "inspection":
            assert len(rows) == 1 and f"<td>{numerator}</td>" in rows[0]
        else:
            assert len(rows) == denominator - numerator, code
    assert listed == {"satisfaction": 10, "timeliness": 4, "first_time_fix": 3,
                      "rework": 1, "complaints": 1, "returns": 1, "certified": 2,
                      "settlement": 2, "inspection": 1}


def test_drilldown_lists_nothing_of_other_agencies(app, client, world, published):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    for code in ("timeliness", "satisfaction", "first_time_fix", "certified", "returns",
                 "settlement", "inspection", "complaints", "rework"):
        body = _get(client, f"/evaluation/results/{published['a']}/kpis/{code}")
        assert "CANARY-B" not in body and "CANARY-S" not in body


def test_hq_sees_the_ranking_distribution_and_risk(client, world, published):
    sign_in(client, world.user(Role.HQ_SERVICE))
    body = _get(client, f"/evaluation/quarters/{published['quarter']}")
    assert "A-OWN" in body and "B-FOR" in body and "Agencies at risk" in body
    assert "EVL-2026Q2-NET-v1-ZH" in body


def test_regional_manager_sees_only_the_region(client, world, published):
    sign_in(client, world.user(Role.REGIONAL_MANAGER))
    body = _get(client, f"/evaluation/quarters/{published['quarter']}")
    assert "A-OWN" in body and "A-SIB" in body and "B-FOR" not in body
    assert "NET-v1" not in body  # the network ranking names every agency
    _get(client, f"/evaluation/results/{published['b']}", 404)
    _get(client, f"/evaluation/results/{published['a2']}")


def test_network_ranking_pdf_is_for_hq_only(app, client, world, published):
    with app.app_context(), unscoped("test"):
        from evaluation.models import RankingReport

        ranking = db.session.scalars(select(RankingReport)).first().id
    for role, status in ((Role.AGENCY_OWNER, 403), (Role.REGIONAL_MANAGER, 403),
                         (Role.AUDITOR, 200), (Role.HQ_ADMIN, 200)):
        client = app.test_client()
        sign_in(client, world.user(role))
        assert client.get(f"/evaluation/ranking-reports/{ranking}.pdf").status_code == status


def test_an_agency_never_downloads_another_agencys_report(app, client, world, published):
    with app.app_context(), unscoped("test"):
        reports = {a: db.session.scalars(select(Report.id).where(Report.agency_id == a)).first()
                   for a in (world.a.id, world.a2.id, world.b.id)}
    sign_in(client, world.user(Role.AGENCY_OWNER))
    assert client.get(f"/evaluation/reports/{reports[world.a.id]}.pdf").status_code == 200
    assert client.get(f"/evaluation/reports/{reports[world.a2.id]}.pdf").status_code == 404
    assert client.get(f"/evaluation/reports/{reports[world.b.id]}.pdf").status_code == 404


def test_acknowledge_once(app, client, world, published):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    url = f"/evaluation/results/{published['a']}/acknowledge"
    assert client.post(url).status_code == 302
    response = client.post(url)
    assert response.status_code == 422
    assert "not awaiting your acknowledgement" in response.get_data(as_text=True)
    with app.app_context(), unscoped("test"):
        result = db.session.scalars(select(Result).where(Result.id == published["a"])).one()
        assert result.status == "final" and result.final_reason == "acknowledged"


def test_appeal_needs_a_reason_and_a_known_kpi(app, client, world, published):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    url = f"/evaluation/results/{published['a']}/appeal"
    assert "Lodge the appeal" in _get(client, url)
    response = client.post(url, data={"reason": "short", "kpi_code": ""})
    assert response.status_code == 200 and "Field must be between 10 and 4000" in \
        response.get_data(as_text=True)
    response = client.post(url, data={"reason": "x" * 20, "kpi_code": "bogus"})
    assert response.status_code == 200
    response = client.post(url, data={"reason": "Two revisits belong to another agency.",
                                       "kpi_code": "satisfaction"})
    assert response.status_code == 302
    with app.app_context(), unscoped("test"):
        assert db.session.scalars(select(Appeal)).one().kpi_code == "satisfaction"


def _age(app, quarter_id, days=8):
    """Move a quarter's publication `days` back (its 7 days then over)."""
    with app.app_context(), unscoped("test"):
        quarter = db.session.scalars(select(Quarter).where(Quarter.id == quarter_id)).one()
        quarter.published_at -= timedelta(days=days)
        quarter.appeal_deadline_at -= timedelta(days=days)
        db.session.commit()


def test_appeal_after_the_deadline_is_refused(app, client, world, published):
    _age(app, published["quarter"])
    sign_in(client, world.user(Role.AGENCY_OWNER))
    response = client.post(f"/evaluation/results/{published['a']}/appeal",
                           data={"reason": "Late but still unhappy about it."})
    assert response.status_code == 200
    assert "The 7 days to acknowledge or appeal ended" in response.get_data(as_text=True)
    response = client.post(f"/evaluation/results/{published['a']}/acknowledge")
    assert response.status_code == 422
    # the page no longer offers either: the result stands, final
    body = _get(client, f"/evaluation/results/{published['a']}")
    assert "No appeal within 7 days" in body and "The 7 days to acknowledge or appeal ended" \
        in body
    assert f"/evaluation/results/{published['a']}/appeal" not in body
    assert f"/evaluation/results/{published['a']}/acknowledge" not in body
    assert "Awaiting acknowledgement" not in _get(client, "/evaluation/")  # the list agrees
    with app.app_context(), unscoped("test"):
        assert db.session.scalars(select(Appeal)).all() == []


def test_the_answer_buttons_are_offered_within_the_seven_days(client, world, published):
    sign_in(client, world.user(Role.AGENCY_OWNER))
    body = _get(client, f"/evaluation/results/{published['a']}")
    assert f"/evaluation/results/{published['a']}/appeal" in body
    assert f"/evaluation/results/{published['a']}/acknowledge" in body
    assert "Acknowledge or appeal by" in body
    assert "Awaiting acknowledgement" in _get(client, "/evaluation/")


def test_hq_resolves_an_appeal_with_bad_input_kept_on_the_form(app, client, world, published):
    owner = app.test_client()
    sign_in(owner, world.user(Role.AGENCY_OWNER))
    owner.post(f"/evaluation/results/{published['a']}/appeal",
               data={"reason": "The inspection was done on the wrong day.",
                     "kpi_code": "inspection"})
    with app.app_context(), unscoped("test"):
        appeal_id = db.session.scalars(select(Appeal.id)).one()
    sign_in(client, world.user(Role.HQ_SERVICE))
    url = f"/evaluation/appeals/{appeal_id}/resolve"
    assert "Decide the appeal" in _get(client, url)
    good = {"decision": "upheld", "resolution": "correct", "kpi_code": "inspection",
            "numerator": 95, "denominator": 1, "note": "Corrected score."}
    for bad, message in (
            ({"decision": ""}, "This field is required"),
            ({"decision": "sideways"}, "Not a valid choice"),
            ({"note": "ok"}, "between 5 and 4000"),
            ({"resolution": ""}, "Choose how the result is corrected"),
            ({"kpi_code": ""}, "Choose the KPI to correct"),
            ({"kpi_code": "bogus"}, "Not a valid choice"),
            ({"numerator": 150}, "from 0 to 100"),  # an inspection score is 0–100
            ({"numerator": "many"}, "Not a valid integer"),
            ({"numerator": -1}, "at least 0"),
            ({"kpi_code": "timeliness", "numerator": 21, "denominator": 20},
             "cannot exceed its total"),
            ({"kpi_code": "satisfaction", "numerator": 60, "denominator": 10},
             "between 1 and 5 times")):
        response = client.post(url, data={**good, **bad})
        assert response.status_code == 200, bad
        assert message in response.get_data(as_text=True), (bad, message)
    with app.app_context(), unscoped("test"):
        assert db.session.scalars(select(Appeal)).one().status == "open"
        assert db.session.scalars(select(Report.version)).all().count(2) == 0
    assert client.post(url, data=good).status_code == 302
    body = owner.get(f"/evaluation/results/{published['a']}").get_data(as_text=True)
    assert "Corrected on appeal: Corrected score." in body and "v2" in body
    # decided: the form is gone, a second decision is refused
    assert client.get(url).status_code == 302
    assert client.post(url, data={**good, "numerator": 10}).status_code == 409


def test_a_rejected_appeal_shows_hqs_reason_to_the_agency(app, client, world, published):
    owner = app.test_client()
    sign_in(owner, world.user(Role.AGENCY_OWNER))
    owner.post(f"/evaluation/results/{published['a']}/appeal",
               data={"reason": "Two late orders were rescheduled by customers.",
                     "kpi_code": "timeliness"})
    with app.app_context(), unscoped("test"):
        appeal_id = db.session.scalars(select(Appeal.id)).one()
    sign_in(client, world.user(Role.HQ_ADMIN))
    assert client.post(f"/evaluation/appeals/{appeal_id}/resolve", data={
        "decision": "rejected", "note": "The time records are right."}).status_code == 302
    body = owner.get(f"/evaluation/results/{published['a']}").get_data(as_text=True)
    assert "The time records are right." in body and "Appeal rejected" in body


def test_finalize_refuses_a_quarter_that_is_not_ready(app, client, world, published):
    sign_in(client, world.user(Role.HQ_SERVICE))
    url = f"/evaluation/quarters/{published['quarter']}/finalize"
    with app.app_context(), unscoped("test"):
        version = db.session.scalars(select(Quarter.version)).one()
    response = client.post(url, data={"seen_version": version})
    assert response.status_code == 422 and "may still acknowledge or appeal" in \
        response.get_data(as_text=True)
    _age(app, published["quarter"])
    assert client.post(url, data={"seen_version": version}).status_code == 302
    response = client.post(url, data={"seen_version": version})
    assert response.status_code == 422 and "Only a published quarter" in response.get_data(
        as_text=True)
    with app.app_context(), unscoped("test"):
        assert set(db.session.scalars(select(Result.status))) == {"final"}


def test_inspection_only_for_the_region_and_while_draft(app, client, world, fast_pdfs):
    with app.app_context(), unscoped("test"):
        g._audit_actor = None
        quarter = f.computed()
        ids = {a: f.result_of(quarter, a).id for a in (world.a, world.b)}
        db.session.commit()
    sign_in(client, world.user(Role.REGIONAL_MANAGER))
    url = f"/evaluation/results/{ids[world.a]}/inspection"
    assert client.post(url, data={"score": "abc"}).status_code == 200
    assert client.post(url, data={"score": 101}).status_code == 200
    assert client.post(url, data={"score": 77, "note": "ok"}).status_code == 302
    assert client.post(f"/evaluation/results/{ids[world.b]}/inspection",
                       data={"score": 77}).status_code == 404
    body = _get(client, f"/evaluation/results/{ids[world.a]}")
    assert "Score 77" in body


def test_compute_from_the_page_runs_the_job(app, client, world):
    from evaluation import compute

    sign_in(client, world.user(Role.HQ_SERVICE))
    response = client.post("/evaluation/compute", data={"period": "2026Q2"})
    assert response.status_code == 302 and "/jobs/" in response.headers["Location"]
    body = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Quarter computation" in body and "evaluation.compute" not in body
    progress = client.get(response.headers["Location"] + "/progress.json").get_json()
    assert progress["status"] == "succeeded" and progress["percent"] == 100
    assert progress["total"] == len(compute.STEPS)  # the job reported its steps
    assert progress["result"]["agencies"] == 3 and progress["result"]["period"] == "2026Q2"
    for bad, message in (("", "This field is required"), ("2026Q5", "such as 2026Q3"),
                         ("next quarter", "longer than 10"), ("2999Q1", "such as 2026Q3"),
                         ("2199Q4", "has not ended"), ("1999Q4", "such as 2026Q3")):
        response = client.post("/evaluation/compute", data={"period": bad})
        assert response.status_code == 422 and message in response.get_data(as_text=True)


def test_publish_from_the_page_reports_each_agency(app, client, world, fast_pdfs):
    with app.app_context(), unscoped("test"):
        g._audit_actor = None
        quarter = f.computed()
        qid, version = quarter.id, quarter.version
        db.session.commit()
    sign_in(client, world.user(Role.HQ_ADMIN))
    response = client.post(f"/evaluation/quarters/{qid}/publish",
                           data={"seen_version": version})
    job = response.headers["Location"]
    progress = client.get(job + "/progress.json").get_json()
    # one step per agency report (both languages), then the network ranking
    assert progress["status"] == "succeeded" and progress["total"] == 3 + 1
    assert progress["note"] == ""  # finished: no step is under way any more
    assert progress["result"]["reports"] == 6


def test_publish_needs_an_up_to_date_page(app, client, world, fast_pdfs):
    with app.app_context(), unscoped("test"):
        g._audit_actor = None
        quarter = f.computed()
        qid, version = quarter.id, quarter.version
        db.session.commit()
    sign_in(client, world.user(Role.HQ_SERVICE))
    url = f"/evaluation/quarters/{qid}/publish"
    for data in ({}, {"seen_version": "x"}, {"seen_version": version + 5}):
        response = client.post(url, data=data)
        assert response.status_code == 422 and "reload the page" in response.get_data(as_text=True)
    response = client.post(url, data={"seen_version": version})
    assert "/jobs/" in response.headers["Location"]
    with app.app_context(), unscoped("test"):
        assert db.session.scalars(select(Quarter).where(Quarter.id == qid)).one().status \
            == "published"


def test_auditor_reads_everything_and_writes_nothing(app, client, world, published):
    sign_in(client, world.user(Role.AUDITOR))
    _get(client, f"/evaluation/quarters/{published['quarter']}")
    _get(client, f"/evaluation/results/{published['b']}")
    for url in (f"/evaluation/results/{published['a']}/acknowledge",
                f"/evaluation/quarters/{published['quarter']}/finalize", "/evaluation/compute"):
        assert client.post(url).status_code == 403


def test_pages_run_a_constant_number_of_queries(app, client, world, published, query_counter):
    sign_in(client, world.user(Role.HQ_ADMIN))
    pages = [f"/evaluation/quarters/{published['quarter']}", "/evaluation/",
             f"/evaluation/results/{published['a']}",
             f"/evaluation/results/{published['a']}/kpis/timeliness",
             f"/evaluation/results/{published['a']}/kpis/satisfaction",
             "/evaluation/appeals/", "/evaluation/proposals/", "/evaluation/service-level",
             "/evaluation/schemes/"]
    before = {}
    for url in pages:
        with query_counter as counter:
            _get(client, url)
        before[url] = counter.count
    with app.app_context(), unscoped("test adds agencies"):
        g._audit_actor = None
        from tests.factories import make_agency

        quarter = db.session.scalars(select(Quarter)).one()
        for n in range(4):
            agency = make_agency(world.region1, f"Q-{n}")
            db.session.add(Result(agency_id=agency.id, quarter_id=quarter.id,
                                  region_id=agency.region_id, tier_at=3,
                                  agency_status_at="active", status="published"))
        db.session.commit()
    for url in pages:
        with query_counter as counter:
            _get(client, url)
        assert counter.count == before[url], (url, before[url], counter.count)
        assert counter.count <= 25, (url, counter.count)


def test_every_page_renders_in_chinese(client, world, published):
    sign_in(client, world.user(Role.HQ_ADMIN))
    client.post("/locale", data={"locale": "zh_CN"})
    for url in ("/evaluation/", f"/evaluation/quarters/{published['quarter']}",
                f"/evaluation/results/{published['a']}", "/evaluation/schemes/",
                "/evaluation/schemes/1", "/evaluation/schemes/new", "/evaluation/verify",
                "/evaluation/service-level", "/evaluation/proposals/", "/evaluation/appeals/"):
        body = _get(client, url)
        assert "考核" in body, url
