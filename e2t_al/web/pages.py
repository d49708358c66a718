"""Server-rendered pages: campaigns and their dashboard, proposals to review, measurements to enter, audit, users.

Reads come from ``e2t_al.web.views``; writes go through ``db.service`` / ``db.accounts`` after the role and the
form's CSRF token are checked. The operator of a measurement and the user of a decision are the signed-in user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from sqlmodel import Session

from db import accounts, previews, service
from db.engine import read_only
from db.importers import measurements_from_csv_text
from db.schemas import MAX_ROW_ID, DecisionIn, MeasurementEntry, MeasurementIn
from e2t_al.data.dataset import DataError
from e2t_al.campaign.reports import CAMPAIGN_FIGURES, INTERACTIVE_FIGURES, png_bytes
from e2t_al.units import UNITS, dimension
from e2t_al.web import views
from e2t_al.web.security import (LOGIN_CSRF_COOKIE, SESSION_COOKIE, Visitor, check_csrf, new_login_csrf, page_user,
                                 store)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
PAGE_ROWS = 100  # rows of a long table per page
MAX_UPLOAD_BYTES = 1_000_000  # a CSV upload (the confirm step names the stored preview, it does not post the file)


def render(request: Request, template: str, visitor: Visitor | None, status_code: int = 200, **context) -> HTMLResponse:
    """A page; its one-line message is the session's flash (set by ``back_to``), never text from the URL."""
    context.setdefault("message", visitor.flash if visitor else None)
    return templates.TemplateResponse(request, template, {"visitor": visitor, **context}, status_code=status_code)


def back_to(request: Request, path: str, message: str | None = None) -> RedirectResponse:
    """Post/redirect/get: after a write, show the page again, with a one-line message kept in the session."""
    if message:
        with store(request) as session:
            accounts.set_flash(session, request.cookies.get(SESSION_COOKIE, ""), message)
    return RedirectResponse(path, status_code=303)


def units_like(unit: str) -> list[str]:
    return [u for u in UNITS if u and dimension(u) == dimension(unit)] or [unit]


# ---- signing in and out ------------------------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request, next: str = "/"):
    token = new_login_csrf()
    response = render(request, "login.html", None, csrf_token=token, next=next, error=None)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=request.app.state.secure_cookies)
    return response


@router.post("/login")
def login(request: Request, username: str = Form(max_length=80), password: str = Form(max_length=1024),
          csrf_token: str = Form(max_length=100), next: str = Form("/", max_length=500)):
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or cookie != csrf_token:
        return render(request, "login.html", None, 403, csrf_token=cookie or "", next=next,
                      error="the sign-in form expired: reload the page and try again")
    throttle, address = request.app.state.login_throttle, request.client.host if request.client else "unknown"
    wait = throttle.retry_after(username, address)
    if wait:
        response = render(request, "login.html", None, 429, csrf_token=cookie, next=next,
                          error=f"too many failed sign-ins: try again in {wait} s")
        response.headers["Retry-After"] = str(wait)
        return response
    with store(request) as session:
        user = accounts.authenticate(session, username, password)
        signed_in = user.username if user is not None else None
        if user is None:
            throttle.failed(username, address)
            service.audit(session, username[:80] or "(empty)", "user.sign_in_failed", address=address)
    if signed_in is None:  # the failure's audit row is committed; then the answer
        return render(request, "login.html", None, 401, csrf_token=cookie, next=next, error="wrong username or password")
    throttle.succeeded(username, address)
    with store(request) as session:
        token, _ = accounts.open_session(session, accounts.get_user(session, signed_in))
        service.audit(session, signed_in, "user.sign_in")
    safe_next = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(safe_next, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=request.app.state.secure_cookies,
                        max_age=int(accounts.SESSION_LIFETIME.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form(max_length=100), visitor: Visitor = Depends(page_user("view"))):
    check_csrf(visitor, csrf_token)
    with store(request) as session:
        accounts.close_session(session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# ---- campaigns ---------------------------------------------------------------------------------------------
@router.get("/")
def campaigns(request: Request, visitor: Visitor = Depends(page_user("view"))):
    with store(request) as session:
        summaries = [views.campaign_summary(session, c) for c in service.list_campaigns(session)]
    return render(request, "campaigns.html", visitor, summaries=summaries)


@router.get("/campaigns/{name}")
def dashboard(name: str, request: Request, visitor: Visitor = Depends(page_user("view"))):
    with store(request) as session:
        campaign = service.get_campaign(session, name)
        summary = views.campaign_summary(session, campaign)
        domain_map = views.domain_map(session, campaign)
    return render(request, "dashboard.html", visitor, summary=summary, domain_map=domain_map,
                  figures=list(CAMPAIGN_FIGURES))


@router.get("/campaigns/{name}/plots/{figure}.png")
def plot(name: str, figure: str, request: Request, visitor: Visitor = Depends(page_user("view"))):
    if figure not in CAMPAIGN_FIGURES:
        return Response(status_code=404)
    with store(request) as session:
        png = png_bytes(CAMPAIGN_FIGURES[figure](session, service.get_campaign(session, name)))
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/campaigns/{name}/plots/{figure}.json")
def interactive_plot(name: str, figure: str, request: Request, visitor: Visitor = Depends(page_user("view"))):
    """The plot as a plotly.js figure: every point links to its candidate's page (``customdata``)."""
    if figure not in INTERACTIVE_FIGURES:
        return Response(status_code=404)
    campaign_path = f"/campaigns/{quote(name, safe='')}/candidates/"
    with store(request) as session:
        return INTERACTIVE_FIGURES[figure](session, service.get_campaign(session, name),
                                           lambda identifier: campaign_path + quote(identifier, safe=""))


@router.get("/campaigns/{name}/candidates/{identifier}")
def candidate(name: str, identifier: str, request: Request, visitor: Visitor = Depends(page_user("view"))):
    with store(request) as session:
        campaign = service.get_campaign(session, name)
        detail = views.candidate_detail(session, campaign, identifier)
    return render(request, "candidate.html", visitor, campaign=views.campaign_out(campaign), detail=detail)


# ---- proposals ---------------------------------------------------------------------------------------------
@router.get("/campaigns/{name}/proposals")
def proposals(name: str, request: Request, page: int = Query(1, ge=1, le=1_000_000), visitor: Visitor = Depends(page_user("view"))):
    with store(request) as session:
        campaign = service.get_campaign(session, name)
        open_items = views.proposals(session, campaign, ["proposed", "approved"])
        decided = list(reversed(views.proposals(session, campaign, ["rejected", "measured", "failed"])))
    decided, pager = views.paginate(decided, page, PAGE_ROWS)
    return render(request, "proposals.html", visitor, campaign=views.campaign_out(campaign), open_items=open_items,
                  decided=decided, pager=pager)


@router.post("/campaigns/{name}/proposals/{item_id}/decision")
def decide(name: str, item_id: views.RowIdInPath, request: Request, decision: str = Form(max_length=20),
           comment: str = Form("", max_length=2000), csrf_token: str = Form(max_length=100),
           visitor: Visitor = Depends(page_user("decide"))):
    check_csrf(visitor, csrf_token)
    with store(request) as session:
        campaign = service.get_campaign(session, name)
        service.decide(session, campaign, item_id,
                       DecisionIn(decision=decision, user=visitor.username, comment=comment.strip() or None))
    return back_to(request, f"/campaigns/{quote(name)}/proposals", f"proposal {item_id} {decision}")


@router.post("/campaigns/{name}/proposals/decide-all")
def decide_all(name: str, request: Request, decision: str = Form(max_length=20), comment: str = Form("", max_length=2000),
               csrf_token: str = Form(max_length=100), visitor: Visitor = Depends(page_user("decide"))):
    check_csrf(visitor, csrf_token)
    with store(request) as session:
        decided = service.decide_all(session, service.get_campaign(session, name),
                                     DecisionIn(decision=decision, user=visitor.username, comment=comment.strip() or None))
    return back_to(request, f"/campaigns/{quote(name)}/proposals", f"{decided} proposal(s) {decision}")


# ---- measurements ------------------------------------------------------------------------------------------
def _measurements_page(request: Request, session: Session, name: str, visitor: Visitor, error: str | None = None,
                       status_code: int = 200, page: int = 1):
    campaign = service.get_campaign(session, name)
    history, pager = views.measurement_history_page(session, campaign, page, PAGE_ROWS)
    return render(request, "measurements.html", visitor, status_code, campaign=views.campaign_out(campaign),
                  awaiting=views.proposals(session, campaign, ["approved"]), history=history, pager=pager,
                  units=units_like(campaign.unit), error=error)


@router.get("/campaigns/{name}/measurements")
def measurements(name: str, request: Request, page: int = Query(1, ge=1, le=1_000_000),
                 visitor: Visitor = Depends(page_user("view"))):
    with store(request) as session:
        return _measurements_page(request, session, name, visitor, page=page)


def _entry(candidate: str, value: str, unit: str, uncertainty: str, method: str, notes: str,
           proposal_item_id: Optional[int]) -> dict:
    """Form fields as the measurement model's input: empty optional fields are absent."""
    fields = {"candidate": candidate, "value": value, "unit": unit, "uncertainty": uncertainty, "method": method,
              "notes": notes, "proposal_item_id": proposal_item_id}
    return {k: v for k, v in fields.items() if v not in (None, "")}


@router.post("/campaigns/{name}/measurements")
def add_measurement(name: str, request: Request, candidate: str = Form(max_length=200), value: str = Form(max_length=64),
                    unit: str = Form(max_length=40), uncertainty: str = Form("", max_length=64),
                    method: str = Form("", max_length=120), notes: str = Form("", max_length=10_000),
                    proposal_item_id: Optional[int] = Form(None, ge=1, le=MAX_ROW_ID), csrf_token: str = Form(max_length=100),
                    visitor: Visitor = Depends(page_user("measure"))):
    check_csrf(visitor, csrf_token)
    data = MeasurementIn.model_validate({**_entry(candidate, value, unit, uncertainty, method, notes, proposal_item_id),
                                         "operator": visitor.username})
    with store(request) as session:
        measurement = service.add_measurement(session, service.get_campaign(session, name), data)
    return back_to(request, f"/campaigns/{quote(name)}/measurements",
                   f"measurement {measurement.id} recorded: {candidate} = {data.value} {data.unit}")


@router.post("/campaigns/{name}/measurements/{measurement_id}/correction")
def correct_measurement(name: str, measurement_id: views.RowIdInPath, request: Request, value: str = Form(max_length=64),
                        unit: str = Form(max_length=40), uncertainty: str = Form("", max_length=64),
                        method: str = Form("", max_length=120), notes: str = Form("", max_length=10_000),
                        csrf_token: str = Form(max_length=100), visitor: Visitor = Depends(page_user("measure"))):
    check_csrf(visitor, csrf_token)
    with store(request) as session:
        campaign = service.get_campaign(session, name)
        old = service.get_measurement(session, campaign, measurement_id)
        identifier = views.candidate_identifier(session, old.candidate_id)
        entry = MeasurementEntry.model_validate(_entry(identifier, value, unit, uncertainty, method, notes, None))
        new = service.correct_measurement(session, campaign, measurement_id, entry.by(visitor.username))
    return back_to(request, f"/campaigns/{quote(name)}/measurements", f"measurement {measurement_id} corrected by {new.id}")


@router.post("/campaigns/{name}/measurements/{measurement_id}/retraction")
def retract_measurement(name: str, measurement_id: views.RowIdInPath, request: Request, reason: str = Form(max_length=2000),
                        csrf_token: str = Form(max_length=100), visitor: Visitor = Depends(page_user("retract"))):
    check_csrf(visitor, csrf_token)
    with store(request) as session:
        service.retract_measurement(session, service.get_campaign(session, name), measurement_id, visitor.username, reason,
                                    may_retract_any=visitor.may("retract_any"))
    return back_to(request, f"/campaigns/{quote(name)}/measurements", f"measurement {measurement_id} retracted")


def _upload_rows(text: str, source: str, visitor: Visitor):
    """The CSV's rows, each recorded under the signed-in user's name (an operator column is overridden)."""
    rows, problems = measurements_from_csv_text(text, source, operator=visitor.username)
    return [(line, data.model_copy(update={"operator": visitor.username})) for line, data in rows], problems


def _checked_upload(request: Request, name: str, text: str, source: str, visitor: Visitor) -> list[service.RowCheck]:
    """Each row of an uploaded CSV with what the store would say about it; nothing is written."""
    rows, problems = _upload_rows(text, source, visitor)
    with read_only(request.app.state.engine) as session:  # not the writers' turn: other requests go on meanwhile
        return service.check_measurement_rows(session, service.get_campaign(session, name), rows, problems)


@router.post("/campaigns/{name}/measurements/upload")
async def upload_preview(name: str, request: Request, file: UploadFile = File(), csrf_token: str = Form(max_length=100),
                         visitor: Visitor = Depends(page_user("measure"))):
    check_csrf(visitor, csrf_token)
    raw = await file.read(MAX_UPLOAD_BYTES + 1)
    try:
        if len(raw) > MAX_UPLOAD_BYTES:
            raise DataError(f"{file.filename}: larger than {MAX_UPLOAD_BYTES // 1_000_000} MB (split it into several files)")
        text = raw.decode("utf-8-sig")
        checks = await run_in_threadpool(_checked_upload, request, name, text, file.filename or "upload.csv", visitor)  # off the event loop
    except (DataError, UnicodeDecodeError) as exc:
        with store(request) as session:
            return _measurements_page(request, session, name, visitor, error=f"upload refused: {exc}", status_code=400)
    good = sum(c.reason is None for c in checks)
    with store(request) as session:  # a short write; the page is rendered after the writers' turn
        campaign = service.get_campaign(session, name)
        preview_key = previews.store_preview(session, accounts.get_user(session, visitor.username), campaign,
                                             file.filename or "upload.csv", text).key if good else None
        campaign_view = views.campaign_out(campaign)
    return render(request, "upload_preview.html", visitor, campaign=campaign_view, checks=checks, preview_key=preview_key,
                  filename=file.filename, good=good)


@router.post("/campaigns/{name}/measurements/upload/confirm")
def upload_confirm(name: str, request: Request, preview: str = Form(max_length=64), csrf_token: str = Form(max_length=100),
                   valid_rows_only: bool = Form(False), visitor: Visitor = Depends(page_user("measure"))):
    """Write the rows of the stored preview ``preview`` (``db.previews``: the visitor's own, for this campaign,
    unexpired), all together or none (the default, as ``e2t-al measurements import``); with ``valid_rows_only``
    ("import the valid rows", asked for explicitly) the refused rows are left out. The rows are checked again (the
    store may have changed since the preview); the preview is deleted with the write, so it confirms once."""
    check_csrf(visitor, csrf_token)
    with read_only(request.app.state.engine) as session:
        stored = previews.take_preview(session, preview, accounts.get_user(session, visitor.username), service.get_campaign(session, name))
        text, filename = stored.csv_text, stored.filename
    checks = _checked_upload(request, name, text, filename, visitor)
    refused = [c for c in checks if c.reason is not None]
    if refused and not valid_rows_only:
        with store(request) as session:
            return _measurements_page(request, session, name, visitor, status_code=400,
                                      error=f"upload refused, nothing written: {len(refused)} row(s) refused. Fix the file, "
                                            "or choose \"import the valid rows\" in the preview")
    rows, problems = _upload_rows(text, filename, visitor)
    with store(request) as session:
        campaign = service.get_campaign(session, name)
        stored = previews.take_preview(session, preview, accounts.get_user(session, visitor.username), campaign)  # not taken meanwhile
        added = service.import_measurements(session, campaign, rows, problems, valid_rows_only=valid_rows_only)
        previews.discard_preview(session, stored)
    left_out = f"; {len(checks) - len(added)} refused row(s) left out" if valid_rows_only else ""
    return back_to(request, f"/campaigns/{quote(name)}/measurements", f"{len(added)} measurement(s) imported from {filename}{left_out}")


# ---- audit, account, users ---------------------------------------------------------------------------------
@router.get("/audit")
def audit(request: Request, campaign: Optional[str] = None, visitor: Visitor = Depends(page_user("audit"))):
    with store(request) as session:
        events = views.audit_log(session, service.get_campaign(session, campaign) if campaign else None)
    return render(request, "audit.html", visitor, events=events, campaign=campaign)


@router.get("/account")
def account(request: Request, visitor: Visitor = Depends(page_user("view"))):
    return render(request, "account.html", visitor, token=None)


@router.post("/account/token")
def new_token(request: Request, csrf_token: str = Form(max_length=100), visitor: Visitor = Depends(page_user("view"))):
    check_csrf(visitor, csrf_token)
    with store(request) as session:
        token = accounts.issue_api_token(session, accounts.get_user(session, visitor.username), visitor.username)
    return render(request, "account.html", visitor, token=token)


@router.get("/admin/users")
def users(request: Request, visitor: Visitor = Depends(page_user("manage_users"))):
    with store(request) as session:
        people = [(u.username, u.role, u.created_at) for u in accounts.list_users(session)]
    return render(request, "users.html", visitor, people=people, roles=accounts.ROLES)


@router.post("/admin/users")
def add_user(request: Request, username: str = Form(max_length=80), role: str = Form(max_length=20),
             password: str = Form(max_length=1024), csrf_token: str = Form(max_length=100),
             visitor: Visitor = Depends(page_user("manage_users"))):
    check_csrf(visitor, csrf_token)
    data = accounts.UserIn(username=username, role=role, password=password)
    with store(request) as session:
        accounts.create_user(session, data, actor=visitor.username)
    return back_to(request, "/admin/users", f"user {username} ({role}) added")
