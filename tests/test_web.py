"""The web app over the store: every role against every route (pages and JSON API), CSRF, sessions, secrets at
rest, the CSV upload preview and confirm, corrections and retractions."""

from __future__ import annotations

import re
import warnings
from datetime import timedelta

import pytest
from sqlmodel import Session, select

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
from fastapi.testclient import TestClient  # noqa: E402

from db.engine import make_engine  # noqa: E402
from db.tables import AuditEvent, Measurement, ProposalItem, UploadPreview, User, WebSession, utc_now  # noqa: E402
from e2t_al.web.app import create_app  # noqa: E402
from e2t_al.web.security import PERMISSIONS, SESSION_COOKIE  # noqa: E402
from web_lab import CAMPAIGN, PASSWORD, ROLES, copied_lab, count_rows, csrf_of, seed_lab  # noqa: E402

C = f"/campaigns/{CAMPAIGN}"
GOOD_CSV = "candidate,value,unit,method\ng02,4.9,eV,UV-vis\ng03,5200,meV,UV-vis\n"


@pytest.fixture
def lab(lab_template, tmp_path):
    """A fresh copy of the seeded lab for each test (writes of one test never reach another)."""
    source, seeded = lab_template
    url = copied_lab(source, tmp_path)
    client = TestClient(create_app(url), follow_redirects=False)
    return client, url, seeded


def sign_in(client: TestClient, username: str, password: str = PASSWORD):
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_of(page.text),
                                       "next": "/"})


def signed_in(client: TestClient, role: str) -> str:
    """Sign ``role`` in; returns the session's CSRF token."""
    assert sign_in(client, role).status_code == 303
    return csrf_of(client.get("/account").text)


# ---- the role table: (method, path, form or JSON, permission) ----------------------------------------------
PAGES = [
    ("GET", "/", None, "view"),
    ("GET", C, None, "view"),
    ("GET", f"{C}/plots/best_so_far.png", None, "view"),
    ("GET", f"{C}/plots/best_so_far.json", None, "view"),
    ("GET", f"{C}/proposals", None, "view"),
    ("GET", f"{C}/measurements", None, "view"),
    ("GET", f"{C}/candidates/g01", None, "view"),
    ("GET", "/account", None, "view"),
    ("POST", "/account/token", {}, "view"),
    ("GET", "/audit", None, "audit"),
    ("GET", "/admin/users", None, "manage_users"),
    ("POST", "/admin/users", {"username": "newcomer", "role": "viewer", "password": "long enough pw"}, "manage_users"),
    ("POST", f"{C}/proposals/1/decision", {"decision": "approved", "comment": "ok"}, "decide"),
    ("POST", f"{C}/proposals/decide-all", {"decision": "rejected"}, "decide"),
    ("POST", f"{C}/measurements", {"candidate": "g01", "value": "5.0", "unit": "eV"}, "measure"),
    ("POST", f"{C}/measurements/1/correction", {"value": "1.75", "unit": "eV"}, "measure"),
    ("POST", f"{C}/measurements/1/retraction", {"reason": "wrong sample"}, "retract_any"),  # not the experimentalist's
    ("POST", f"{C}/measurements/upload/confirm", {"preview": "not-a-stored-preview"}, "measure"),  # allowed: 404
]
API = [
    ("GET", "/api/me", None, "view"),
    ("GET", "/api/campaigns", None, "view"),
    ("GET", f"/api{C}", None, "view"),
    ("GET", f"/api{C}/domains", None, "view"),
    ("GET", f"/api{C}/candidates", None, "view"),
    ("GET", f"/api{C}/candidates/g01", None, "view"),
    ("GET", f"/api/proposals?campaign={CAMPAIGN}", None, "view"),
    ("GET", f"/api/measurements?campaign={CAMPAIGN}&history=true", None, "view"),
    ("GET", "/api/audit", None, "audit"),
    ("POST", "/api/proposals/1/decision", {"decision": "approved"}, "decide"),
    ("POST", "/api/measurements", {"campaign": CAMPAIGN, "candidate": "g01", "value": 5.0, "unit": "eV"}, "measure"),
    ("POST", "/api/measurements/1/correction", {"value": 1.75, "unit": "eV"}, "measure"),
    ("POST", "/api/measurements/1/retraction", {"reason": "wrong sample"}, "retract_any"),
]


@pytest.mark.parametrize("role", [None, *ROLES])
@pytest.mark.parametrize("method,path,body,permission", PAGES, ids=[f"{m} {p}" for m, p, _, _ in PAGES])
def test_page_roles(lab, role, method, path, body, permission):
    client, _, _ = lab
    csrf = signed_in(client, role) if role else "none"
    if method == "GET":
        response = client.get(path)
    else:
        response = client.post(path, data={**body, "csrf_token": csrf})
    if role is None:
        assert response.status_code == (303 if method == "GET" else 401)
        if method == "GET":
            assert response.headers["location"].startswith("/login?next=")
    elif role in PERMISSIONS[permission]:
        if body and body.get("preview"):  # past the role check, the unknown preview is not found
            assert response.status_code == 404 and "no upload preview" in response.text, response.text[:500]
        else:
            assert response.status_code in (200, 303), response.text[:500]
    else:
        assert response.status_code == 403, response.text[:300]


@pytest.mark.parametrize("role", [None, "bad-token", *ROLES])
@pytest.mark.parametrize("method,path,body,permission", API, ids=[f"{m} {p}" for m, p, _, _ in API])
def test_api_roles(lab, role, method, path, body, permission):
    client, url, seeded = lab
    headers = {}
    if role == "bad-token":
        headers["Authorization"] = "Bearer e2t_not-a-real-token"
    elif role:
        headers["Authorization"] = f"Bearer {seeded['tokens'][role]}"
    before = (count_rows(url, Measurement), count_rows(url, ProposalItem, ProposalItem.status != "proposed"))
    response = client.request(method, path, json=body, headers=headers)
    if role in (None, "bad-token"):
        assert response.status_code == 401
    elif role in PERMISSIONS[permission]:
        assert response.status_code in (200, 201), response.text
        return
    else:
        assert response.status_code == 403
    assert (count_rows(url, Measurement), count_rows(url, ProposalItem, ProposalItem.status != "proposed")) == before


def test_every_route_is_in_the_role_table():
    from e2t_al.web import api, pages

    def template_of(path: str) -> str:
        path = re.sub(r"\{[^}]+\}", "X", path.split("?")[0])
        return re.sub(r"/(1|g01|perovskite-web|best_so_far)(?=/|$|\.)", "/X", path)

    tested = {(method, template_of(path)) for method, path, _, _ in PAGES + API}
    routes = {(method, template_of(route.path)) for router in (pages.router, api.router) for route in router.routes
              for method in route.methods if method != "HEAD"}
    untested = routes - tested - {("GET", "/login"), ("POST", "/login"), ("POST", "/logout"),  # tested below
                                  ("POST", "/campaigns/X/measurements/upload")}
    assert not untested, f"routes missing from the role table: {sorted(untested)}"


# ---- sessions, CSRF, secrets -------------------------------------------------------------------------------
def test_sign_in_sets_a_strict_http_only_cookie_and_wrong_passwords_are_refused(lab):
    client, url, _ = lab
    assert sign_in(client, "reviewer", "wrong password!").status_code == 401
    assert sign_in(client, "nobody", PASSWORD).status_code == 401
    response = sign_in(client, "reviewer")
    cookie = response.headers["set-cookie"]
    assert SESSION_COOKIE in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    token = response.cookies[SESSION_COOKIE]
    engine = make_engine(url)
    with Session(engine) as session:
        users = session.exec(select(User)).all()
        stored = session.exec(select(WebSession)).all()
    engine.dispose()
    assert all(u.password_hash.startswith("$argon2id$") and PASSWORD not in u.password_hash for u in users)
    assert all(u.api_token_hash and not u.api_token_hash.startswith("e2t_") for u in users)
    assert [s.token_hash for s in stored] != [token] and len(stored) == 1


def test_sign_out_ends_the_session_server_side(lab):
    client, _, _ = lab
    csrf = signed_in(client, "viewer")
    stolen = client.cookies.get(SESSION_COOKIE)
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    client.cookies.set(SESSION_COOKIE, stolen)
    assert client.get("/").status_code == 303  # back to the login page: the old cookie is dead


def test_forms_without_the_session_csrf_token_are_refused_and_write_nothing(lab):
    client, url, _ = lab
    signed_in(client, "admin")
    before = count_rows(url, AuditEvent)
    for token in ("", "forged"):
        response = client.post(f"{C}/proposals/1/decision", data={"decision": "approved", "csrf_token": token})
        assert response.status_code in (403, 422)
        response = client.post(f"{C}/measurements", data={"candidate": "g01", "value": "5", "unit": "eV", "csrf_token": token})
        assert response.status_code in (403, 422)
    assert count_rows(url, AuditEvent) == before
    assert count_rows(url, ProposalItem, ProposalItem.status == "approved") == 0


def test_login_form_needs_its_csrf_cookie_and_next_stays_on_this_site(lab):
    client, _, _ = lab
    response = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": "x", "next": "/"})
    assert response.status_code == 403
    page = client.get("/login")
    response = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(page.text),
                                           "next": "//evil.example/"})
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_pages_send_a_content_security_policy_and_load_nothing_from_elsewhere(lab):
    client, _, _ = lab
    signed_in(client, "viewer")
    for path in ("/", C, f"{C}/proposals", f"{C}/measurements"):
        response = client.get(path)
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert not re.search(r'(src|href)="(https?:)?//', response.text), path


def test_interactive_plots_link_each_point_to_its_candidate_and_plotly_js_comes_from_this_site(lab):
    client, _, _ = lab
    signed_in(client, "viewer")
    dashboard = client.get(C).text
    assert '<script src="/static/vendor/plotly.min.js" defer></script>' in dashboard
    assert f'data-figure="{C}/plots/parity.json"' in dashboard and f'src="{C}/plots/parity.png"' in dashboard
    script = client.get("/static/vendor/plotly.min.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "plotly.js" in script.text[:200] and "max-age" in script.headers["cache-control"]
    for figure in ("best_so_far", "parity", "domain_coverage"):
        body = client.get(f"{C}/plots/{figure}.json").json()
        assert body["data"] and body["layout"]["title"]["text"]
        for trace in body["data"]:
            assert all(link.startswith(f"{C}/candidates/") for link in trace.get("customdata", []))
    assert client.get(f"{C}/plots/nothing.json").status_code == 404


# ---- measurements through the pages ------------------------------------------------------------------------
def test_upload_is_all_or_nothing_unless_the_valid_rows_are_asked_for(lab):
    client, url, _ = lab
    csrf = signed_in(client, "experimentalist")
    before = count_rows(url, Measurement)
    text = GOOD_CSV + "g04,-3,eV,UV-vis\nnot-a-candidate,2.0,eV,\ng05,2.0,kg,\n"
    preview = client.post(f"{C}/measurements/upload", data={"csrf_token": csrf},
                          files={"file": ("batch.csv", text.encode(), "text/csv")})
    assert preview.status_code == 200
    assert "2 of 5 row(s) can be recorded" in preview.text
    assert "outside the valid range" in preview.text and "no candidate" in preview.text and "kg" in preview.text
    assert count_rows(url, Measurement) == before
    assert "csv_text" not in preview.text and "g04,-3" not in preview.text  # the file stays on the server
    key = re.search(r'name="preview" value="([^"]+)"', preview.text).group(1)
    all_or_nothing = client.post(f"{C}/measurements/upload/confirm", data={"csrf_token": csrf, "preview": key})
    assert all_or_nothing.status_code == 400 and "nothing written: 3 row(s) refused" in all_or_nothing.text
    assert count_rows(url, Measurement) == before  # the default, as in the CLI: all rows or none
    assert 'id="import-valid-rows"' in preview.text

    reviewer = TestClient(client.app, follow_redirects=False)  # another user cannot confirm this preview, even knowing its key
    other = reviewer.post(f"{C}/measurements/upload/confirm",
                          data={"csrf_token": signed_in(reviewer, "admin"), "preview": key, "valid_rows_only": "true"})
    assert other.status_code == 404 and count_rows(url, Measurement) == before

    confirm = client.post(f"{C}/measurements/upload/confirm", data={"csrf_token": csrf, "preview": key, "valid_rows_only": "true"})
    assert confirm.status_code == 303
    assert count_rows(url, Measurement) == before + 2
    history = client.get(f"{C}/measurements").text
    assert "g03" in history and "5200.0 meV" in history and ">experimentalist<" in history
    again = client.post(f"{C}/measurements/upload/confirm", data={"csrf_token": csrf, "preview": key, "valid_rows_only": "true"})
    assert again.status_code == 404 and "confirmed already" in again.text  # one preview, one write
    assert count_rows(url, Measurement) == before + 2


def test_an_expired_upload_preview_cannot_be_confirmed(lab):
    client, url, _ = lab
    csrf = signed_in(client, "experimentalist")
    preview = client.post(f"{C}/measurements/upload", data={"csrf_token": csrf},
                          files={"file": ("batch.csv", GOOD_CSV.encode(), "text/csv")})
    key = re.search(r'name="preview" value="([^"]+)"', preview.text).group(1)
    engine = make_engine(url)
    with Session(engine) as session:
        stored = session.exec(select(UploadPreview).where(UploadPreview.key == key)).one()
        stored.expires_at = utc_now() - timedelta(seconds=1)
        session.add(stored)
        session.commit()
    engine.dispose()
    before = count_rows(url, Measurement)
    response = client.post(f"{C}/measurements/upload/confirm", data={"csrf_token": csrf, "preview": key})
    assert response.status_code == 404 and "expired" in response.text and count_rows(url, Measurement) == before


def test_a_correction_and_a_retraction_keep_the_history(lab):
    client, url, _ = lab
    csrf = signed_in(client, "experimentalist")
    assert client.post(f"{C}/measurements/1/correction", data={"csrf_token": csrf, "value": "1.75", "unit": "eV"}).status_code == 303
    others = client.post(f"{C}/measurements/2/retraction", data={"csrf_token": csrf, "reason": "contaminated"})
    assert others.status_code == 403 and "only their own" in others.text  # entered by someone else
    own = max(m.id for m in _measurements(url))  # the correction, entered by this experimentalist
    assert client.post(f"{C}/measurements/{own}/retraction", data={"csrf_token": csrf, "reason": "typo"}).status_code == 303
    csrf = signed_in(client, "reviewer")
    assert client.post(f"{C}/measurements/2/retraction", data={"csrf_token": csrf, "reason": "contaminated"}).status_code == 303
    statuses = {m.id: m.status for m in _measurements(url)}
    assert statuses[1] == "superseded" and statuses[2] == "retracted" and statuses[own] == "retracted" and max(statuses) == 7
    again = client.post(f"{C}/measurements/1/retraction", data={"csrf_token": csrf, "reason": "again"})
    assert again.status_code == 400 and "already superseded" in again.text
    audit = client.get("/audit").text
    assert "measurement.correct" in audit and "measurement.retract" in audit and "contaminated" in audit


def test_bad_measurements_are_refused_with_the_reason(lab):
    client, url, _ = lab
    csrf = signed_in(client, "experimentalist")
    before = count_rows(url, Measurement)
    for value, unit, reason in (("abc", "eV", "value"), ("nan", "eV", "finite"), ("99", "eV", "valid range"),
                                ("1.5", "parsec", "unknown unit")):
        response = client.post(f"{C}/measurements", data={"csrf_token": csrf, "candidate": "g01", "value": value, "unit": unit})
        assert response.status_code in (400, 422) and reason in response.text, (value, unit, response.text[-400:])
    assert count_rows(url, Measurement) == before


def _measurements(url: str) -> list[Measurement]:
    engine = make_engine(url)
    with Session(engine) as session:
        rows = session.exec(select(Measurement)).all()
    engine.dispose()
    return rows


def test_web_listens_on_localhost_by_default():
    import inspect

    from e2t_al.cli.loop import web
    assert inspect.signature(web).parameters["host"].default.default == "127.0.0.1"


def test_review_and_measure_on_each_backend(store_url, tmp_path):
    """The same app on SQLite and on PostgreSQL: a decision and a measurement through the API, one refusal."""
    seeded = seed_lab(store_url, tmp_path)
    client = TestClient(create_app(store_url), follow_redirects=False)
    reviewer = {"Authorization": f"Bearer {seeded['tokens']['reviewer']}"}
    experimentalist = {"Authorization": f"Bearer {seeded['tokens']['experimentalist']}"}
    first = seeded["proposal_ids"][0]
    assert client.post(f"/api/proposals/{first}/decision", json={"decision": "approved"}, headers=reviewer).status_code == 200
    again = client.post(f"/api/proposals/{first}/decision", json={"decision": "rejected"}, headers=reviewer)
    assert again.status_code == 409 and again.json()["current_state"] == "approved"
    added = client.post("/api/measurements", headers=experimentalist,
                        json={"campaign": CAMPAIGN, "candidate": "g01", "value": 5.2, "unit": "eV"})
    assert added.status_code == 201 and added.json()["operator"] == "experimentalist"
    proposals = client.get(f"/api/proposals?campaign={CAMPAIGN}", headers=reviewer).json()
    assert [p["status"] for p in proposals if p["id"] == first] == ["measured"]
    assert [p["chosen_by"] for p in proposals] == ["highest mean"] + ["acquisition"] * 3
    summary = client.get(f"/api{C}", headers=reviewer).json()
    assert summary["experiments"] == 1 and summary["best_identifier"] == "g01"


def test_user_text_in_plots_is_plain_and_an_unexpected_error_keeps_the_headers(lab, monkeypatch):
    client, url, _ = lab
    from db import service
    from db.engine import session_scope
    from db.schemas import CandidateIn

    engine = make_engine(url)
    with session_scope(engine) as session:
        campaign = service.get_campaign(session, CAMPAIGN)
        service.import_candidates(session, campaign, [service.CandidateRow("line 2", CandidateIn(
            identifier="$\\bogus{x$", representation_kind="formula", representation="CsGeF3"), "$\\bogus{x$")])
    engine.dispose()
    signed_in(client, "viewer")
    plot = client.get(f"{C}/plots/domain_coverage.png")
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"  # mathtext would fail on it

    from e2t_al.web import views

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "campaign_summary", broken)
    response = client.get(C)
    assert response.status_code == 500 and "a bug" not in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


def test_failed_sign_ins_are_throttled_audited_and_bounded(lab):
    client, url, _ = lab
    for _ in range(5):
        assert sign_in(client, "reviewer", "wrong password!").status_code == 401
    throttled = sign_in(client, "reviewer", "wrong password!")
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    right = sign_in(client, "reviewer")  # even the right password waits: the guesser cannot tell
    assert right.status_code == 429
    throttle = client.app.state.login_throttle
    waits = []
    for _ in range(4):  # each further failure doubles the wait
        throttle.failed("reviewer", "testclient")
        waits.append(throttle.retry_after("reviewer", "testclient"))
    assert waits == sorted(waits) and waits[-1] > waits[0]
    assert throttle.retry_after("reviewer", "10.0.0.9") == 0  # the person at another address is not locked out
    for _ in range(40):  # unless someone fails from many addresses: then at most a minute
        throttle.failed("admin", f"10.1.0.{_}")
    assert 0 < throttle.retry_after("admin", "10.0.0.9") <= 60
    engine = make_engine(url)
    with Session(engine) as session:
        failed = session.exec(select(AuditEvent).where(AuditEvent.action == "user.sign_in_failed")).all()
    engine.dispose()
    assert len(failed) == 5 and {e.actor for e in failed} == {"reviewer"}


def test_a_new_sign_in_ends_the_older_sessions(lab, lab_template):
    client, url, _ = lab
    signed_in(client, "experimentalist")
    assert client.get("/account").status_code == 200
    other = TestClient(client.app, follow_redirects=False)
    signed_in(other, "experimentalist")
    assert client.get("/account").status_code == 303  # the first browser's session ended
    assert other.get("/account").status_code == 200


def test_page_messages_come_from_the_session_not_the_url(lab):
    client, _, _ = lab
    csrf = signed_in(client, "reviewer")
    spoofed = client.get(f"{C}/proposals?message=Your+account+is+locked,+call+555-0100")
    assert "555-0100" not in spoofed.text
    decided = client.post(f"{C}/proposals/1/decision", data={"csrf_token": csrf, "decision": "approved"})
    assert decided.status_code == 303 and "message" not in decided.headers["location"]
    assert "proposal 1 approved" in client.get(decided.headers["location"]).text
    assert "proposal 1 approved" not in client.get(decided.headers["location"]).text  # shown once


def test_decided_proposals_keep_what_chose_them(lab):
    client, _, _ = lab
    csrf = signed_in(client, "reviewer")
    client.post(f"{C}/proposals/1/decision", data={"csrf_token": csrf, "decision": "rejected"})
    client.post(f"{C}/proposals/2/decision", data={"csrf_token": csrf, "decision": "rejected"})
    decided = client.get(f"{C}/proposals").text.split('id="decided-proposals"')[1]
    assert re.findall(r'<td class="chosen-by">([^<]*)</td>', decided) == ["acquisition", "highest mean"]  # newest first


def test_oversized_bodies_are_refused_before_parsing_or_authentication(lab):
    client, url, _ = lab
    before = count_rows(url, Measurement)
    big_json = b'{"campaign": "' + b"x" * 1_100_000 + b'"}'
    anonymous = client.post("/api/measurements", content=big_json, headers={"content-type": "application/json"})
    assert anonymous.status_code == 413 and "default-src 'self'" in anonymous.headers["content-security-policy"]
    csrf = signed_in(client, "experimentalist")
    from e2t_al.web.pages import MAX_UPLOAD_BYTES

    huge = ("candidate,value,unit\n" + "g02,4.9,eV\n" * (MAX_UPLOAD_BYTES // 10)).encode()
    upload = client.post(f"{C}/measurements/upload", data={"csrf_token": csrf}, files={"file": ("big.csv", huge, "text/csv")})
    assert upload.status_code == 413
    assert count_rows(url, Measurement) == before


def test_long_tables_are_paginated(lab):
    client, url, _ = lab
    from db import service
    from db.engine import session_scope
    from db.schemas import MeasurementIn
    from e2t_al.web.pages import PAGE_ROWS

    engine = make_engine(url)
    with session_scope(engine) as session:
        campaign = service.get_campaign(session, CAMPAIGN)
        for k in range(PAGE_ROWS + 20):
            service.add_measurement(session, campaign, MeasurementIn(candidate="g05", value=1.0 + k / 1000, unit="eV",
                                                                     operator="experimentalist"), allow_duplicate=True)
    engine.dispose()
    signed_in(client, "viewer")
    first = client.get(f"{C}/measurements")
    rows = first.text.count('<tr class="valid">') + first.text.count('<tr class="superseded">')
    assert rows == PAGE_ROWS and "page 1 of 2" in first.text
    second = client.get(f"{C}/measurements?page=2")
    assert "page 2 of 2" in second.text and "1.0" in second.text
    assert client.get(f"{C}/measurements?page=0").status_code == 422


def test_an_upload_preview_does_not_wait_for_the_writers(lab):
    """The preview's rows are checked in bulk on a read-only session (``_checked_upload``): 15,000 rows are checked
    while another transaction holds the store's writer turn and SQLite's write lock (before, the check took them,
    and every request that writes waited behind it)."""
    import threading

    from db import service
    from db.engine import read_only, session_scope
    from db.importers import measurements_from_csv_text

    client, url, _ = lab
    text = "candidate,value,unit\n" + "".join(f"g0{1 + k % 5},{1 + k / 100_000:.5f},eV\n" for k in range(15_000))
    rows, problems = measurements_from_csv_text(text, "many.csv", operator="experimentalist")
    engine, finished = client.app.state.engine, {}

    def preview():
        with read_only(engine) as session:
            finished["checks"] = service.check_measurement_rows(session, service.get_campaign(session, CAMPAIGN), rows, problems)

    with session_scope(engine) as writing:  # a writer holds the turn and SQLite's write lock for the whole preview
        writing.connection()  # begun: BEGIN IMMEDIATE has run
        thread = threading.Thread(target=preview)
        thread.start()
        thread.join(timeout=20)
        assert not thread.is_alive(), "the preview waited for the writers' turn"
    assert len(finished["checks"]) == 15_000 and all(c.reason is None for c in finished["checks"])
    csrf = signed_in(client, "experimentalist")  # and the page shows the same outcome
    page = client.post(f"{C}/measurements/upload", data={"csrf_token": csrf}, files={"file": ("many.csv", text.encode(), "text/csv")})
    assert page.status_code == 200 and "15000 of 15000 row(s) can be recorded" in page.text
