"""What every command group shares: the console, failing with one clear line, a transaction on the store that turns
every refusal into such a line, who is acting, and ``--json`` output."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import DBAPIError

from db.engine import NotMigratedError, StoreError, database_url, read_only, session_scope, store_engine
from db.schemas import validation_reason
from e2t_al.data import DataError
from e2t_al.data.paths import PROJECT_ROOT

console = Console()
URL_HELP = "database URL (default: $E2T_AL_DATABASE_URL or sqlite:///e2t_al.sqlite)"
OPERATOR_ENV = "E2T_AL_OPERATOR"
OPERATOR_HELP = f"who acts (default: ${OPERATOR_ENV})"
CONFIG_DIR = PROJECT_ROOT / "configs"
DEBUG = {"on": False}  # --debug: show tracebacks instead of one-line errors


def fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=code)


def masked_url(url: str | None) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(database_url(url)).render_as_string(hide_password=True)
    except Exception:
        return "(unreadable database URL)"


def unreachable(url: str | None, exc: Exception) -> None:
    """A database that cannot be reached: one line, exit code 1; ``--debug`` shows the traceback."""
    if DEBUG["on"]:
        raise exc
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(getattr(exc, "orig", exc)).strip() else type(exc).__name__
    fail(f"cannot reach the database {masked_url(url)}: {reason}. Check that the server runs and accepts connections "
         f"at that host and port, and the user name and password (--url or $E2T_AL_DATABASE_URL); --debug shows the traceback",
         code=1)


@contextmanager
def store(url: str | None, preview: bool = False):
    """A transaction on the migrated store; every refusal becomes a clear error and nothing is written.
    ``preview``: a read-only session, rolled back (``--dry-run``)."""
    try:
        with (read_only if preview else session_scope)(store_engine(url)) as session:
            yield session
    except (StoreError, NotMigratedError, DataError) as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(validation_reason(exc))
    except DBAPIError as exc:
        unreachable(url, exc)


def operator_of(operator: str | None) -> str:
    """The acting person: ``--operator``, else ``$E2T_AL_OPERATOR``; a clear error when neither is given."""
    operator = (operator or os.environ.get(OPERATOR_ENV) or "").strip()
    if not operator:
        fail(f"who is acting? Give --operator NAME, or set {OPERATOR_ENV}=NAME once for your shell")
    return operator


def print_json(payload: Any) -> None:
    """Machine-readable output on stdout alone (``--json``)."""
    print(json.dumps(payload, indent=2, default=str))
