"""The proposal state machine, enforced in the service layer (so the CLI, the API, the pages and the flows share it):
every (state, action) pair through the service, and every (state, action, role) through the JSON API. An illegal
step is refused with the item's current state (HTTP 409) and writes nothing."""

from __future__ import annotations

import warnings

import pytest

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
from fastapi.testclient import TestClient  # noqa: E402

from db import service  # noqa: E402
from db.engine import make_engine, session_scope  # noqa: E402
from db.schemas import DecisionIn, MeasurementIn  # noqa: E402
from db.tables import Measurement, ProposalItem  # noqa: E402
from e2t_al.web.app import create_app  # noqa: E402
from e2t_al.web.security import PERMISSIONS  # noqa: E402
from web_lab import CAMPAIGN, ROLES, copied_lab, count_rows  # noqa: E402

STATES = ("proposed", "approved", "rejected", "measured", "failed")
ACTIONS = ("approved", "rejected", "measured", "failed")
API_PERMISSION = {"approved": "decide", "rejected": "decide", "measured": "measure"}


@pytest.fixture
def lab(lab_template, tmp_path):
    source, seeded = lab_template
    return copied_lab(source, tmp_path), seeded


def put_in_state(url: str, item_id: int, state: str) -> str:
    """Take the item from ``proposed`` to ``state`` by legal steps; returns its candidate."""
    engine = make_engine(url)
    with session_scope(engine) as session:
        campaign = service.get_campaign(session, CAMPAIGN)
        candidate = next(c for i, c in service.proposal_items(session, campaign) if i.id == item_id).identifier
        if state in ("approved", "measured", "failed"):
            service.decide(session, campaign, item_id, DecisionIn(decision="approved", user="reviewer"))
        if state == "rejected":
            service.decide(session, campaign, item_id, DecisionIn(decision="rejected", user="reviewer"))
        if state == "measured":
            service.add_measurement(session, campaign, MeasurementIn(candidate=candidate, value=4.0, unit="eV", operator="experimentalist",
                                                                     proposal_item_id=item_id))
        if state == "failed":
            service.fail_proposal(session, campaign, item_id, "experimentalist", "no sample")
    engine.dispose()
    return candidate


def status_of(url: str, item_id: int) -> str:
    engine = make_engine(url)
    with session_scope(engine) as session:
        status = session.get(ProposalItem, item_id).status
    engine.dispose()
    return status


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("state", STATES)
def test_every_state_and_action_through_the_service(lab, state, action):
    url, seeded = lab
    item_id = seeded["proposal_ids"][0]
    candidate = put_in_state(url, item_id, state)
    legal = state in service.PROPOSAL_TRANSITIONS[action]
    before = count_rows(url, Measurement)
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            campaign = service.get_campaign(session, CAMPAIGN)
            if action in ("approved", "rejected"):
                service.decide(session, campaign, item_id, DecisionIn(decision=action, user="reviewer"))
            elif action == "measured":
                service.add_measurement(session, campaign, MeasurementIn(candidate=candidate, value=4.2, unit="eV",
                                                                         operator="experimentalist", proposal_item_id=item_id))
            else:
                service.fail_proposal(session, campaign, item_id, "experimentalist", "furnace down")
        assert legal, f"{state} → {action} should have been refused"
        assert status_of(url, item_id) == action
    except service.IllegalTransition as refused:
        assert not legal, f"{state} → {action} should be allowed"
        assert refused.current == state and f"is {state}" in str(refused)
        assert status_of(url, item_id) == state and count_rows(url, Measurement) == before
    finally:
        engine.dispose()


@pytest.mark.parametrize("action", tuple(API_PERMISSION))
@pytest.mark.parametrize("state", STATES)
def test_every_state_action_and_role_through_the_api(lab, state, action):
    url, seeded = lab
    item_id = seeded["proposal_ids"][1]
    candidate = put_in_state(url, item_id, state)
    client = TestClient(create_app(url), follow_redirects=False)
    permitted = PERMISSIONS[API_PERMISSION[action]]
    for role in sorted(ROLES, key=lambda r: r in permitted):  # refused roles first: they must not change the state
        before = count_rows(url, Measurement)
        headers = {"Authorization": f"Bearer {seeded['tokens'][role]}"}
        if action == "measured":
            response = client.post("/api/measurements", headers=headers, json={
                "campaign": CAMPAIGN, "candidate": candidate, "value": 4.4, "unit": "eV", "proposal_item_id": item_id})
        else:
            response = client.post(f"/api/proposals/{item_id}/decision", headers=headers, json={"decision": action})
        if role not in permitted:
            assert response.status_code == 403, (role, response.text)
        elif state in service.PROPOSAL_TRANSITIONS[action]:
            assert response.status_code in (200, 201), (role, response.text)
            assert status_of(url, item_id) == action
            return
        else:
            assert response.status_code == 409, (role, response.text)
            assert response.json()["current_state"] == state
        assert status_of(url, item_id) == state and count_rows(url, Measurement) == before


def test_a_measurement_naming_no_proposal_is_unplanned(lab):
    """The issue's reproduction: a measurement without an approved proposal is recorded as unplanned, and a rejected
    proposal stays rejected."""
    url, seeded = lab
    item_id = seeded["proposal_ids"][2]
    candidate = put_in_state(url, item_id, "rejected")
    client = TestClient(create_app(url), follow_redirects=False)
    headers = {"Authorization": f"Bearer {seeded['tokens']['experimentalist']}"}
    added = client.post("/api/measurements", headers=headers, json={"campaign": CAMPAIGN, "candidate": candidate, "value": 1.9,
                                                                     "unit": "eV"})
    assert added.status_code == 201 and added.json().get("proposal_item_id") is None
    assert status_of(url, item_id) == "rejected"
