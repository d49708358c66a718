"""A campaign's state as the model sees it, read from the store in one transaction.

Rows ``(n,)`` are the campaign's own candidates first, then its prior materials (public data sets or earlier
campaigns, ``prior`` true). Prior materials are measured, so they are support data and never proposed; they are
outside the campaign's scope, so they never set the incumbent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlmodel import Session

from db import service
from db.engine import StoreError
from e2t_al.config import CampaignConfig
from e2t_al.data.dataset import object_array


@dataclass
class CampaignState:
    """A consistent snapshot of one campaign. Arrays are over rows ``(n,)``: candidates, then prior materials."""

    campaign_id: int
    name: str
    config: CampaignConfig
    candidate_ids: np.ndarray  # store id of each candidate; -1 for a prior material
    identifiers: np.ndarray
    domains: np.ndarray
    kinds: np.ndarray
    representations: np.ndarray
    measured_value: np.ndarray  # NaN where unmeasured (campaign unit, mean of valid measurements; prior: its value)
    pending: np.ndarray  # approved, not yet measured
    proposed: np.ndarray  # proposed, waiting for a decision
    prior: np.ndarray  # a prior material, not a candidate
    retired: np.ndarray  # a retired candidate: never proposed
    measurement_ids: list[int] = field(default_factory=list)
    iteration: int = 1  # the iteration a run now would be

    @property
    def measured(self) -> np.ndarray:
        return np.isfinite(self.measured_value)

    @property
    def batch_open(self) -> bool:
        """A batch waits for decisions or measurements: an iteration must not propose another."""
        return bool(self.pending.any() or self.proposed.any())

    @property
    def folder(self) -> Path:
        return Path(self.config.artifacts_dir) / self.name


def read_state(session: Session, name: str) -> CampaignState:
    campaign = service.get_campaign(session, name)
    config = CampaignConfig.model_validate(campaign.config)
    candidates = service.list_candidates(session, campaign)
    if not candidates:
        raise StoreError(f"campaign {name!r} has no candidates: import some first")
    prior = service.prior_entries(session, campaign)
    measured = service.measured_values(session, campaign)
    waiting = {status: {c.identifier for _, c in service.proposal_items(session, campaign, statuses=[status])}
               for status in ("approved", "proposed")}
    identifiers = np.array([c.identifier for c in candidates] + [p.identifier for p in prior])
    is_prior = np.arange(len(identifiers)) >= len(candidates)
    return CampaignState(
        campaign_id=campaign.id, name=name, config=config,
        candidate_ids=np.array([c.id for c in candidates] + [-1] * len(prior)), identifiers=identifiers,
        domains=np.array([c.element_domain for c in candidates] + [p.element_domain for p in prior]),
        kinds=np.array([c.representation_kind for c in candidates] + [p.representation_kind for p in prior]),
        representations=object_array([c.representation for c in candidates] + [p.representation for p in prior]),
        measured_value=np.array([measured.get(c.identifier, np.nan) for c in candidates] + [p.value for p in prior]),
        pending=~is_prior & np.isin(identifiers, list(waiting["approved"])),
        proposed=~is_prior & np.isin(identifiers, list(waiting["proposed"])),
        prior=is_prior, retired=np.array([c.retired_at is not None for c in candidates] + [False] * len(prior)),
        measurement_ids=[m.id for m, _ in service.list_measurements(session, campaign)],
        iteration=service.completed_iterations(session, campaign) + 1)


def domain_keys(state: CampaignState) -> list[frozenset[str]]:
    """Each row's domain keys, as ``MaterialsDataset.domain_keys``: its elements for formulas, else its domain."""
    if set(state.kinds.tolist()) == {"formula"}:
        return [frozenset(d.split("-")) for d in state.domains]
    return [frozenset({d}) for d in state.domains]


def campaign_scope(state: CampaignState) -> np.ndarray:
    """Boolean ``(n,)``: the rows the campaign is about, where its incumbent is taken: its own candidates, never
    prior materials; with ``unexplored_domains`` configured, only the candidates in them (a material is in hold-out
    ``k`` when ``k`` is one of its domain keys, as for ``MaterialsDataset.in_domain``)."""
    scope = ~state.prior
    unexplored = set(state.config.unexplored_domains)
    if unexplored:
        if set(state.kinds.tolist()) == {"formula"}:
            in_unexplored = np.array([bool(keys & unexplored) for keys in domain_keys(state)], dtype=bool)
        else:  # any element order: I-Pb is Pb-I
            wanted = {service.domain_elements(d) for d in unexplored}
            in_unexplored = np.array([service.domain_elements(d) in wanted for d in state.domains], dtype=bool)
        if (scope & in_unexplored).any():
            scope &= in_unexplored
    return scope
