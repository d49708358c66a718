"""What the pages and the JSON API show, read from the store: one function per view, shared by both.

Each returns plain pydantic models (the API's response schemas), so a page and its API twin cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Optional

import numpy as np
from fastapi import Path
from pydantic import BaseModel
from sqlmodel import Session

from db import service
from db.schemas import MAX_ROW_ID
from db.tables import Campaign, Candidate, Measurement, ProposalItem
from e2t_al.acquisition.objectives import score
from e2t_al.campaign.reports import campaign_experiments

RowIdInPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a row id")]


class CampaignOut(BaseModel):
    name: str
    dataset: Optional[str]
    target_property: str
    unit: str
    objective: str
    target_low: Optional[float]
    target_high: Optional[float]
    created_at: datetime


class ModelVersionOut(BaseModel):
    id: int
    kind: str
    created_at: datetime
    measurements: int
    metrics: dict


class PriorOut(BaseModel):
    """One source of prior knowledge: the model learns from it; it is never a candidate, measurement or experiment."""

    source: str
    materials: int
    excluded_domains: list[str]


class CampaignSummary(BaseModel):
    campaign: CampaignOut
    candidates: int
    measured: int
    experiments: int
    best_identifier: Optional[str]
    best_value: Optional[float]
    open_proposals: int
    latest_model: Optional[ModelVersionOut]
    prior: list[PriorOut] = []


class CandidateOut(BaseModel):
    identifier: str
    representation_kind: str
    formula: str
    element_domain: str
    measured_value: Optional[float]


class ProposalOut(BaseModel):
    id: int
    batch_id: int
    rank: int
    candidate: str
    formula: str
    element_domain: str
    novelty: float
    predicted_mean: float
    predicted_std: float
    acquisition_value: float
    chosen_by: str
    status: str
    decided_by: Optional[str]
    decided_at: Optional[datetime]
    comment: Optional[str]


class MeasurementOut(BaseModel):
    id: int
    candidate: str
    value: float
    unit: str
    value_in_campaign_unit: float
    uncertainty: Optional[float]
    method: Optional[str]
    operator: str
    measured_at: datetime
    recorded_at: datetime
    status: str
    corrects_id: Optional[int]
    proposal_item_id: Optional[int]  # None: an unplanned measurement
    notes: Optional[str]
    retracted_by: Optional[str]
    retraction_reason: Optional[str]


class PredictionOut(BaseModel):
    model_version: int
    model_kind: str
    created_at: datetime
    mean: float
    std: float
    novelty: float


class CandidateDetail(BaseModel):
    candidate: CandidateOut
    representation: str
    source: Optional[str]
    measurements: list[MeasurementOut]
    predictions: list[PredictionOut]


class DomainCell(BaseModel):
    element_domain: str
    candidates: int
    measured: int
    best_value: Optional[float]
    mean_uncertainty: Optional[float]


class DomainMap(BaseModel):
    """For HOIP, ``rows`` × ``columns`` are B-site metals × halides; otherwise one row per domain."""

    rows: list[str]
    columns: list[str]
    cells: dict[str, DomainCell]


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    detail: dict


# ---- conversions -------------------------------------------------------------------------------------------
class Page(BaseModel):
    """Which slice of a long table a page shows (1-based ``number``)."""

    number: int
    pages: int
    total: int
    size: int


def page_of(total: int, number: int, size: int) -> Page:
    """Page ``number`` of ``total`` rows, ``size`` a page; a number past the end is the last page."""
    pages = max(1, -(-total // size))
    return Page(number=min(max(1, number), pages), pages=pages, total=total, size=size)


def paginate(rows: list, number: int, size: int) -> tuple[list, Page]:
    """Rows ``(number − 1)·size …`` of ``rows``; a number past the end shows the last page."""
    page = page_of(len(rows), number, size)
    return rows[(page.number - 1) * size: page.number * size], page


def measurement_history_page(session: Session, campaign: Campaign, number: int, size: int) -> tuple[list[MeasurementOut], Page]:
    """One page of the campaign's measurements with their history, newest first, read from the store a page at a time."""
    page = page_of(service.count_measurements(session, campaign, include_history=True), number, size)
    rows = service.list_measurements(session, campaign, include_history=True, newest_first=True, limit=size,
                                     offset=(page.number - 1) * size)
    return [measurement_out(m, identifier) for m, identifier in rows], page


def campaign_out(campaign: Campaign) -> CampaignOut:
    return CampaignOut.model_validate(campaign, from_attributes=True)


@lru_cache(maxsize=4096)
def _formula(kind: str, representation: str) -> str:
    if kind == "cif":
        from pymatgen.core import Structure
        try:
            return Structure.from_str(representation, fmt="cif").composition.reduced_formula
        except Exception:  # a malformed CIF is shown as such, not a failed page
            return "(unreadable CIF)"
    return representation


def formula_of(candidate: Candidate) -> str:
    """The chemical formula (CIF), the SMILES (polymers) or the formula as entered."""
    return _formula(candidate.representation_kind, candidate.representation)


def candidate_identifier(session: Session, candidate_id: int) -> str:
    return session.get(Candidate, candidate_id).identifier


def candidate_out(candidate: Candidate, measured: dict[str, float]) -> CandidateOut:
    return CandidateOut(identifier=candidate.identifier, representation_kind=candidate.representation_kind,
                        formula=formula_of(candidate), element_domain=candidate.element_domain,
                        measured_value=measured.get(candidate.identifier))


def proposal_out(item: ProposalItem, candidate: Candidate) -> ProposalOut:
    return ProposalOut(id=item.id, batch_id=item.batch_id, rank=item.rank, candidate=candidate.identifier,
                       formula=formula_of(candidate), element_domain=candidate.element_domain, novelty=item.novelty,
                       predicted_mean=item.predicted_mean, predicted_std=item.predicted_std,
                       acquisition_value=item.acquisition_value, chosen_by=item.chosen_by, status=item.status, decided_by=item.decided_by,
                       decided_at=item.decided_at, comment=item.comment)


def measurement_out(measurement: Measurement, identifier: str) -> MeasurementOut:
    return MeasurementOut(candidate=identifier, **measurement.model_dump(exclude={"candidate_id", "retracted_at"}))


# ---- views -------------------------------------------------------------------------------------------------
def campaign_summary(session: Session, campaign: Campaign) -> CampaignSummary:
    measured = service.measured_values(session, campaign)
    experiments = campaign_experiments(session, campaign)
    best_identifier = best_value = None
    if experiments:
        scores = score(np.array([v for _, v in experiments]), campaign.objective, campaign.target_low, campaign.target_high)
        best_identifier, best_value = experiments[int(np.argmax(scores))]
    version = service.latest_model_version(session, campaign)
    latest = None if version is None else ModelVersionOut(
        id=version.id, kind=version.kind, created_at=version.created_at, measurements=len(version.measurement_ids),
        metrics={k: v for k, v in version.metrics.items() if k != "trained_on"})
    return CampaignSummary(campaign=campaign_out(campaign), candidates=service.count_candidates(session, campaign),
                           measured=len(measured), experiments=len(experiments), best_identifier=best_identifier,
                           best_value=best_value, open_proposals=len(service.open_proposals(session, campaign)),
                           latest_model=latest,
                           prior=[PriorOut(source=name, materials=n, excluded_domains=link.excluded_domains)
                                  for link, name, n in service.campaign_priors(session, campaign)])


def proposals(session: Session, campaign: Campaign, statuses: list[str] | None = None) -> list[ProposalOut]:
    return [proposal_out(item, candidate) for item, candidate in service.proposal_items(session, campaign, statuses)]


def measurements(session: Session, campaign: Campaign, include_history: bool = False) -> list[MeasurementOut]:
    return [measurement_out(m, identifier) for m, identifier in service.list_measurements(session, campaign, include_history)]


def candidates(session: Session, campaign: Campaign) -> list[CandidateOut]:
    measured = service.measured_values(session, campaign)
    return [candidate_out(c, measured) for c in service.list_candidates(session, campaign)]


def candidate_detail(session: Session, campaign: Campaign, identifier: str) -> CandidateDetail:
    candidate = service.get_candidate(session, campaign, identifier)
    history = [measurement_out(m, identifier) for m, _ in service.list_measurements(session, campaign, True, candidate)]
    predictions = [PredictionOut(model_version=v.id, model_kind=v.kind, created_at=v.created_at, mean=p.mean, std=p.std,
                                 novelty=p.novelty) for p, v in service.prediction_history(session, candidate)]
    return CandidateDetail(candidate=candidate_out(candidate, service.measured_values(session, campaign)),
                           representation=candidate.representation, source=candidate.source,
                           measurements=history, predictions=predictions)


def domain_map(session: Session, campaign: Campaign) -> DomainMap:
    """Per element domain: candidates, measured, best measured value (by the campaign's objective) and the mean
    predictive standard deviation of the newest model version over the domain's candidates."""
    measured = service.measured_values(session, campaign)
    predictions = service.latest_predictions(session, campaign)
    groups: dict[str, list[Candidate]] = {}
    for candidate in service.list_candidates(session, campaign):
        groups.setdefault(candidate.element_domain, []).append(candidate)
    cells = {}
    for domain, members in groups.items():
        values = [measured[c.identifier] for c in members if c.identifier in measured]
        best = None
        if values:
            best = values[int(np.argmax(score(np.array(values), campaign.objective, campaign.target_low, campaign.target_high)))]
        stds = [predictions[c.id].std for c in members if c.id in predictions]
        cells[domain] = DomainCell(element_domain=domain, candidates=len(members), measured=len(values), best_value=best,
                                   mean_uncertainty=float(np.mean(stds)) if stds else None)
    pairs = [d.split("-", 1) for d in cells]
    if campaign.dataset == "hoip" and all(len(p) == 2 for p in pairs):
        return DomainMap(rows=sorted({p[0] for p in pairs}), columns=sorted({p[1] for p in pairs}), cells=cells)
    return DomainMap(rows=sorted(cells), columns=[], cells=cells)


def audit_log(session: Session, campaign: Campaign | None = None) -> list[AuditOut]:
    return [AuditOut.model_validate(event, from_attributes=True) for event in service.audit_events(session, campaign)]
