"""People and their credentials: users with a role, argon2 password hashes, browser sessions and API tokens.

Secrets are never stored: a password is kept as an argon2id hash; a session cookie and an API token are random
256-bit strings of which only the SHA-256 is kept (they are not guessable, so a fast hash is enough and lets the
store look them up by index). Like ``db.service``, functions take an open ``Session`` and do not commit.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import Field, field_validator
from sqlmodel import Session, delete, select

from db.engine import NotFoundError, StoreError
from db.schemas import Input, Role, _printable
from db.service import audit
from db.tables import User, WebSession, utc_now

ROLES: tuple[str, ...] = Role.__args__
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "e2t_"

_hasher = PasswordHasher()
# Verifying against this when the user does not exist costs the same time as a real check (no user enumeration).
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UserIn(Input):
    username: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return _printable(value, "password")


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_user(session: Session, data: UserIn, actor: str = "system") -> User:
    if session.exec(select(User).where(User.username == data.username)).first():
        raise StoreError(f"a user named {data.username!r} already exists")
    user = User(username=data.username, role=data.role, password_hash=_hasher.hash(data.password))
    session.add(user)
    session.flush()
    audit(session, actor, "user.create", username=data.username, role=data.role)
    return user


def get_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFoundError(f"no user named {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(User.id)))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The user whose password this is, or None (unknown user and wrong password look the same)."""
    user = session.exec(select(User).where(User.username == username)).first()
    try:
        _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.password_hash is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.add(user)
    return user


def issue_api_token(session: Session, user: User, actor: str) -> str:
    """A new API token for ``user`` (shown once; it replaces the previous one)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user.api_token_hash = _sha256(token)
    session.add(user)
    audit(session, actor, "user.api_token", username=user.username)
    return token


def user_for_token(session: Session, token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    return session.exec(select(User).where(User.api_token_hash == _sha256(token))).first()


def open_session(session: Session, user: User) -> tuple[str, WebSession]:
    """(cookie value, session row) for a user who just signed in. The user's older sessions end (a stolen or
    forgotten session does not outlive the next sign-in), and expired sessions are swept."""
    now = utc_now()
    session.exec(delete(WebSession).where((WebSession.expires_at < now) | (WebSession.user_id == user.id)))
    token = secrets.token_urlsafe(32)
    web_session = WebSession(token_hash=_sha256(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                             created_at=now, expires_at=now + SESSION_LIFETIME)
    session.add(web_session)
    session.flush()
    return token, web_session


def session_for_cookie(session: Session, token: str) -> tuple[WebSession, User] | None:
    row = session.exec(select(WebSession).where(WebSession.token_hash == _sha256(token))).first()
    if row is None or row.expires_at < utc_now():
        return None
    return row, session.get(User, row.user_id)


def set_flash(session: Session, token: str, message: str) -> None:
    """The message the session's next page shows (post/redirect/get), kept server-side, never in the URL."""
    row = session.exec(select(WebSession).where(WebSession.token_hash == _sha256(token))).first()
    if row is not None:
        row.flash = message[:500]
        session.add(row)


def close_session(session: Session, token: str) -> None:
    session.exec(delete(WebSession).where(WebSession.token_hash == _sha256(token)))
