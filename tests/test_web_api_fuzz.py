"""Schemathesis against the JSON API's own OpenAPI schema: generated requests (valid and invalid) never get a 500,
and a refused request (4xx) writes nothing."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (allow_header_conformance, missing_required_header, negative_data_rejection,
                                 positive_data_acceptance)
from sqlmodel import Session, select

from db.engine import make_engine
from db.tables import AuditEvent, Measurement, ProposalItem, User
from e2t_al.web.app import create_app
from web_lab import seed_lab

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")


def _fuzz_lab() -> tuple[str, str, object]:
    """The lab is built when the module is collected: schemathesis needs the app (and so its store) to read the
    schema then. (Its fixture-based loader does not work with this pytest.)"""
    folder = Path(tempfile.mkdtemp(prefix="e2t-fuzz-"))
    url = f"sqlite:///{folder / 'lab.sqlite'}"
    lab = seed_lab(url, folder)
    return url, lab["tokens"]["admin"], create_app(url)


FUZZ_URL, ADMIN_TOKEN, FUZZ_APP = _fuzz_lab()
schema = schemathesis.openapi.from_asgi("/api/openapi.json", FUZZ_APP)
schema.config.generation.update(modes=list(schemathesis.GenerationMode))  # valid and invalid requests


def store_state(url: str) -> tuple:
    """Everything a write could change: measurements, proposal decisions, users' tokens, audit rows."""
    engine = make_engine(url)
    with Session(engine) as session:
        state = (tuple(session.exec(select(Measurement.id, Measurement.status)).all()),
                 tuple(session.exec(select(ProposalItem.id, ProposalItem.status)).all()),
                 tuple(session.exec(select(User.id, User.api_token_hash)).all()),
                 len(session.exec(select(AuditEvent.id)).all()))
    engine.dispose()
    return state


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_with_500_and_refusals_write_nothing(case):
    url, admin_token = FUZZ_URL, ADMIN_TOKEN
    before = store_state(url)
    response = case.call(headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text[:500])
    if response.status_code >= 400:
        assert store_state(url) == before, (case.method, case.formatted_path, case.body, response.status_code)
    # Documented status codes, response bodies and headers. Left out: unknown query parameters are ignored, not
    # refused; a request valid by the schema may still be refused by the store (a value outside the valid range);
    # Starlette's 405 names only the methods of the first route that matched the path in its Allow header.
    case.validate_response(response, excluded_checks=[negative_data_rejection, positive_data_acceptance,
                                                      missing_required_header, allow_header_conformance])
