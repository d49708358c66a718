"""A small lab for the web tests: one user per role, a HOIP-like campaign with starting data, a model version that
scored the pool and an open proposal batch of four. Built through the service layer, as the flows would."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, select

from db import accounts, service
from db.engine import make_engine, session_scope, upgrade
from db.schemas import CampaignIn, CandidateIn, MeasurementIn

PASSWORD = "correct horse battery"
ROLES = ("viewer", "experimentalist", "reviewer", "admin")
CAMPAIGN = "perovskite-web"
# identifier, formula, domain, starting band gap (None: unmeasured, in the pool)
CANDIDATES = [
    ("p01", "CsPbI3", "Pb-I", 1.7), ("p02", "MAPbI3", "Pb-I", 1.6), ("p03", "CsPbBr3", "Pb-Br", 2.3),
    ("p04", "CsSnI3", "Sn-I", 1.3), ("p05", "CsSnBr3", "Sn-Br", 1.8), ("p06", "CsGeCl3", "Ge-Cl", 3.4),
    ("g01", "CsGeF3", "Ge-F", None), ("g02", "RbGeF3", "Ge-F", None), ("g03", "KGeF3", "Ge-F", None),
    ("g04", "MAGeF3", "Ge-F", None), ("g05", "FAGeF3", "Ge-F", None), ("s01", "CsSnF3", "Sn-F", None),
]


def seed_lab(url: str, folder: Path) -> dict:
    """Build the lab at ``url``; returns {"tokens": role → API token, "proposal_ids": [...]}."""
    upgrade(url)
    engine = make_engine(url)
    checkpoint = folder / "model.pt"
    checkpoint.write_bytes(b"weights")
    with session_scope(engine) as session:
        tokens = {}
        for role in ROLES:
            user = accounts.create_user(session, accounts.UserIn(username=role, role=role, password=PASSWORD))
            tokens[role] = accounts.issue_api_token(session, user, actor="test")
        campaign = service.create_campaign(session, CampaignIn(name=CAMPAIGN, dataset="hoip", target_property="band_gap",
                                                               unit="eV", objective="maximise", valid_min=0, valid_max=10))
        rows = [service.CandidateRow(f"line {i}", CandidateIn(identifier=ident, representation_kind="formula",
                                                              representation=formula), domain)
                for i, (ident, formula, domain, _) in enumerate(CANDIDATES, start=2)]
        candidates = service.import_candidates(session, campaign, rows)
        for ident, _, _, value in CANDIDATES:
            if value is not None:
                service.add_measurement(session, campaign, MeasurementIn(candidate=ident, value=value, unit="eV",
                                                                         operator="starting-data"))
        version = service.record_model_version(session, campaign, "pretrained", checkpoint, [], {"validation_rmse": 0.3})
        service.record_predictions(session, version, [c.id for c in candidates], [2.0 + 0.1 * i for i in range(12)],
                                   [0.2 + 0.05 * i for i in range(12)], [0.5] * 12)
        pool = [c for c, (_, _, _, value) in zip(candidates, CANDIDATES) if value is None][:4]
        batch = service.record_proposal(session, campaign, [
            service.ProposedCandidate(c.id, 3.0 - 0.1 * i, 0.4, 1.0 - 0.1 * i, 1.5, "highest mean" if i == 0 else "acquisition")
            for i, c in enumerate(pool)], "qlogei",
            model_version=version)
        proposal_ids = [item.id for item, _ in service.proposal_items(session, campaign, batch_id=batch.id)]
    engine.dispose()
    return {"tokens": tokens, "proposal_ids": proposal_ids}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def copied_lab(template: Path, folder: Path) -> str:
    """A fresh copy of a seeded lab's SQLite file in ``folder`` (writes of one test never reach another); its URL."""
    import shutil

    shutil.copy(template, folder / "lab.sqlite")
    return f"sqlite:///{folder / 'lab.sqlite'}"


def count_rows(url: str, table, *where) -> int:
    """Rows of ``table`` (matching ``where``) in the store at ``url``, read on a connection of its own."""
    engine = make_engine(url)
    with Session(engine) as session:
        n = session.exec(select(func.count()).select_from(table).where(*where)).one()
    engine.dispose()
    return n
