"""Who may do what, and how a request proves who it is.

Pages: a session cookie (HttpOnly, SameSite=Strict) naming a server-side session; every form carries the session's
CSRF token. API: ``Authorization: Bearer e2t_…`` with a user's API token (no cookies, so no CSRF). Every route
names one permission from ``PERMISSIONS`` and the role of the user must grant it.
"""

from __future__ import annotations

import dataclasses
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from db import accounts
from db.engine import session_scope
from db.tables import User

# permission → roles that hold it. Reviewers decide, experimentalists measure; an admin can do everything.
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "view": ("viewer", "experimentalist", "reviewer", "admin"),
    "measure": ("experimentalist", "admin"),
    "retract": ("experimentalist", "reviewer", "admin"),  # an experimentalist their own measurements only
    "retract_any": ("reviewer", "admin"),
    "decide": ("reviewer", "admin"),
    "audit": ("reviewer", "admin"),
    "manage_users": ("admin",),
}
SESSION_COOKIE = "e2t_session"
LOGIN_CSRF_COOKIE = "e2t_login_csrf"


@dataclass(frozen=True)
class Visitor:
    """The signed-in user of a request; ``csrf_token`` is the session's (None for an API token)."""

    username: str
    role: str
    csrf_token: str | None
    flash: str | None = None  # the session's message for this page, taken from the store once

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


class LoginRequired(Exception):
    """A page was asked for without a valid session: the app redirects to the login page."""


@contextmanager
def store(request: Request) -> Iterator[Session]:
    """One transaction on the app's store (committed at the end of the block, rolled back on an error)."""
    with session_scope(request.app.state.engine) as session:
        yield session


def _visitor(user: User, csrf_token: str | None, permission: str) -> Visitor:
    visitor = Visitor(user.username, user.role, csrf_token)
    if not visitor.may(permission):
        raise HTTPException(403, f"the role {user.role!r} may not do this ({permission}: {', '.join(PERMISSIONS[permission])} only)")
    return visitor


def page_user(permission: str):
    """Dependency for a page: the session's user, who must hold ``permission``."""
    def dependency(request: Request) -> Visitor:
        token = request.cookies.get(SESSION_COOKIE)
        with store(request) as session:
            found = accounts.session_for_cookie(session, token) if token else None
            if found is None:
                raise LoginRequired()
            web_session, user = found
            visitor = _visitor(user, web_session.csrf_token, permission)
            if web_session.flash:  # shown once: the write happens only when there is a message
                visitor = dataclasses.replace(visitor, flash=web_session.flash)
                web_session.flash = None
                session.add(web_session)
            return visitor
    return dependency


_bearer = HTTPBearer(auto_error=False, description="an API token made on the Account page or by `e2t-al users token`")


def api_user(permission: str):
    """Dependency for the JSON API: the API token's user, who must hold ``permission``."""
    def dependency(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Visitor:
        user = None
        if credentials is not None:
            with store(request) as session:
                user = accounts.user_for_token(session, credentials.credentials)
        if user is None:
            raise HTTPException(401, "an API token is required: Authorization: Bearer e2t_…",
                                headers={"WWW-Authenticate": "Bearer"})
        return _visitor(user, None, permission)
    return dependency


def check_csrf(visitor: Visitor, submitted: str | None) -> None:
    """A state-changing form must echo the session's CSRF token."""
    if not submitted or not visitor.csrf_token or not secrets.compare_digest(submitted, visitor.csrf_token):
        raise HTTPException(403, "the form's CSRF token is missing or out of date: reload the page and try again")


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)
