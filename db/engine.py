"""Database engines and sessions: SQLite (embedded default) or PostgreSQL, and the migration guard.

The database URL comes from the caller, else ``$E2T_AL_DATABASE_URL``, else ``sqlite:///e2t_al.sqlite`` in the
working folder. SQLite gets WAL, a busy timeout and foreign keys, and every writing transaction is ``BEGIN IMMEDIATE``
so two writers queue on the busy timeout instead of failing when a read lock cannot be upgraded; a ``read_only``
session begins a plain (deferred) one, a WAL snapshot read beside the writer.

Within one process, transactions take turns on a lock (``_transaction_turn``), on either backend:
- SQLite's busy handler polls with growing sleeps, so under load one thread can lose every race for 30 s and fail with
  "database is locked"; a lock's waiters are woken as soon as it is free. Other processes still queue on the busy
  timeout.
- A web server's threads that all run transactions at once contend for the GIL, and every latency grows. Measured
  with ``bench web-load`` (50 users, 2 cores): PostgreSQL p95 930 ms pages / 1,400 ms API writes without turns,
  250 / 250 ms with them; SQLite's short reads without the turn, beside each other, were slower too.
  ``read_only`` sessions (upload previews) take no turn: they are long and hold up nobody.
"""

from __future__ import annotations

import os
import threading
import weakref
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlmodel import Session

DEFAULT_DATABASE_URL = "sqlite:///e2t_al.sqlite"
SQLITE_BUSY_TIMEOUT_MS = 30_000
TURN_TIMEOUT_S = 600  # a transaction of this process held the store this long: something is stuck, say so
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
READ_ONLY_OPTION = "e2t_read_only"  # set on ``read_only`` sessions: a deferred BEGIN on SQLite, not IMMEDIATE
_TURNS: "weakref.WeakKeyDictionary[Engine, threading.Lock]" = weakref.WeakKeyDictionary()  # see _transaction_turn


class StoreError(ValueError):
    """A write the store refuses (bad value, unknown candidate, duplicate, wrong state), with the reason."""


class NotFoundError(StoreError):
    """The campaign, candidate, measurement or proposal named does not exist (in that campaign)."""


class NotMigratedError(RuntimeError):
    """The database schema is missing or older than this code."""


def database_url(url: str | None = None) -> str:
    return url or os.environ.get("E2T_AL_DATABASE_URL") or DEFAULT_DATABASE_URL


def make_engine(url: str | None = None, **engine_options) -> Engine:
    """A new engine for ``url`` with this process's turn (``_transaction_turn``); SQLite connections are configured
    for concurrent writers."""
    url = database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}, **engine_options)

        @event.listens_for(engine, "connect")
        def _configure(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection):
            reading = connection.get_execution_options().get(READ_ONLY_OPTION, False)
            connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")
    else:
        engine = create_engine(url, pool_pre_ping=True, **engine_options)
    _TURNS[engine] = threading.Lock()
    return engine


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return config


@contextmanager
def _transaction_turn(engine: Engine) -> Iterator[None]:
    """This process's turn at the store: one of its transactions at a time (see the module's docstring)."""
    turn = _TURNS.get(engine)
    if turn is None:
        yield
        return
    if not turn.acquire(timeout=TURN_TIMEOUT_S):
        raise TimeoutError(f"the store {engine.url} has been busy with another transaction of this process for "
                           f"{TURN_TIMEOUT_S} s; nothing was written")
    try:
        yield
    finally:
        turn.release()


@lru_cache(maxsize=1)
def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def upgrade(url: str | None = None) -> str:
    """Create or upgrade the database to the newest schema; returns the revision it is at."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")
    return head_revision()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_migrated(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not the one this code was written for."""
    current = current_revision(engine)
    if current != head_revision():
        where = engine.url.render_as_string(hide_password=True)
        state = "has no E2T-AL schema" if current is None else f"is at schema revision {current}, not {head_revision()}"
        raise NotMigratedError(f"the database {where} {state}: run `e2t-al db upgrade` (with the same E2T_AL_DATABASE_URL) first")


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    engine = make_engine(url)
    require_migrated(engine)
    return engine


def store_engine(url: str | None = None) -> Engine:
    """The shared, migration-checked engine for ``url`` (one per URL per process)."""
    return _engine_for(database_url(url))


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back (nothing written) when it raises."""
    with _transaction_turn(engine), Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_only(engine: Engine) -> Iterator[Session]:
    """A session for reading only, always rolled back. It does not take the writers' turn: on SQLite (WAL) it reads
    beside a writer (a deferred BEGIN, not the writers' IMMEDIATE, which would take SQLite's write lock), so a long
    read (an upload preview) neither holds up the writers nor waits for them."""
    with Session(engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False) as session:
        try:
            yield session
        finally:
            session.expunge_all()  # what was read stays readable after the block, as after a commit
            session.rollback()
