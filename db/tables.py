"""SQLModel tables: the lab's source of truth.

Table models skip validation, so every write goes through the service layer (``db.service``), which validates
input with the non-table models in ``db.schemas`` first. Measurements and decisions are append-only history:
a correction is a new measurement that points at the one it supersedes; a retraction changes a status and
records who, when and why, it never deletes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class User(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=80)
    role: str = Field(max_length=20)  # viewer | experimentalist | reviewer | admin
    password_hash: Optional[str] = Field(default=None, max_length=255)
    api_token_hash: Optional[str] = Field(default=None, max_length=255, index=True)
    created_at: datetime = Field(default_factory=utc_now)


class Campaign(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=120)
    dataset: Optional[str] = Field(default=None, max_length=40)  # hoip | polymers | mp, when built from one
    target_property: str = Field(max_length=80)
    unit: str = Field(max_length=40)
    objective: str = Field(max_length=20)  # maximise | minimise | target_window
    target_low: Optional[float] = None  # target_window only
    target_high: Optional[float] = None
    valid_min: Optional[float] = None  # measurements outside [valid_min, valid_max] (campaign unit) are refused
    valid_max: Optional[float] = None
    config: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utc_now)


class Candidate(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("campaign_id", "identifier", name="uq_candidate_identifier"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    identifier: str = Field(max_length=200)
    representation_kind: str = Field(max_length=20)  # cif | smiles | formula
    representation: str
    element_domain: str = Field(index=True, max_length=120)
    source: Optional[str] = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utc_now)
    retired_at: Optional[datetime] = None  # a retired candidate is never proposed; its history stays
    retired_by: Optional[str] = Field(default=None, max_length=80)
    retirement_reason: Optional[str] = None


class PriorSet(SQLModel, table=True):
    """Prior knowledge: measured materials from a public data set (one target column), stored once and shared
    by every campaign that references it. Never a campaign's measurement, candidate or experiment."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=160)  # "<data set>/<target>@<content digest>"
    dataset: str = Field(max_length=40)
    target_property: str = Field(max_length=80)
    unit: str = Field(max_length=40)
    representation_kind: str = Field(max_length=20)  # cif | smiles | formula
    content_sha256: str = Field(index=True, unique=True, max_length=64)
    provenance: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # source, files, loader
    created_at: datetime = Field(default_factory=utc_now)


class PriorMaterial(SQLModel, table=True):
    # the second index covers the dashboards' per-domain counts (``service.campaign_priors``): without it each count
    # reads every row, CIF text and all
    __table_args__ = (UniqueConstraint("prior_set_id", "identifier", name="uq_prior_identifier"),
                      Index("ix_priormaterial_set_domain_identifier", "prior_set_id", "element_domain", "identifier"))

    id: Optional[int] = Field(default=None, primary_key=True)
    prior_set_id: int = Field(foreign_key="priorset.id", index=True)
    identifier: str = Field(max_length=200)
    representation_kind: str = Field(max_length=20)
    representation: str
    element_domain: str = Field(max_length=120)
    value: float  # in the prior set's unit


class CampaignPrior(SQLModel, table=True):
    """A campaign's reference to prior knowledge: a stored prior set, or an earlier campaign's valid measurements.
    ``excluded_domains`` and ``excluded_identifiers`` leave materials out for this campaign only (its unexplored
    domains, prior entries the lab replaced by its own)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    prior_set_id: Optional[int] = Field(default=None, foreign_key="priorset.id")
    source_campaign_id: Optional[int] = Field(default=None, foreign_key="campaign.id")
    excluded_domains: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    excluded_identifiers: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utc_now)


class ModelVersion(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    kind: str = Field(max_length=40)  # pretrained | instant | finetune
    checkpoint_path: str
    checkpoint_sha256: str = Field(max_length=64)
    measurement_ids: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    metrics: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utc_now)


class IterationRun(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("campaign_id", "iteration", name="uq_iteration_number"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    iteration: int
    flow_run_id: Optional[str] = Field(default=None, max_length=64)
    status: str = Field(default="running", max_length=20)  # running | completed | failed | waiting
    started_at: datetime = Field(default_factory=utc_now)
    finished_at: Optional[datetime] = None
    timings: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    message: Optional[str] = None


class ProposalBatch(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    iteration_run_id: Optional[int] = Field(default=None, foreign_key="iterationrun.id", unique=True)
    model_version_id: Optional[int] = Field(default=None, foreign_key="modelversion.id")
    acquisition: str = Field(max_length=80)
    created_at: datetime = Field(default_factory=utc_now)


class ProposalItem(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("batch_id", "candidate_id", name="uq_proposal_candidate"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="proposalbatch.id", index=True)
    candidate_id: int = Field(foreign_key="candidate.id", index=True)
    rank: int
    predicted_mean: float
    predicted_std: float
    acquisition_value: float
    novelty: float
    chosen_by: str = Field(default="acquisition", max_length=20,  # e2t_al.acquisition.CHOSEN_BY: acquisition | highest mean
                           sa_column_kwargs={"server_default": "acquisition"})
    status: str = Field(default="proposed", max_length=20)  # proposed | approved | rejected | measured
    decided_by: Optional[str] = Field(default=None, max_length=80)
    decided_at: Optional[datetime] = None
    comment: Optional[str] = None


class Measurement(SQLModel, table=True):
    __table_args__ = (Index("ix_measurement_candidate_status", "candidate_id", "status"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    candidate_id: int = Field(foreign_key="candidate.id", index=True)
    value: float  # as entered, in ``unit``
    unit: str = Field(max_length=40)
    value_in_campaign_unit: float
    uncertainty: Optional[float] = None  # in ``unit``
    method: Optional[str] = Field(default=None, max_length=120)
    operator: str = Field(max_length=80)
    measured_at: datetime = Field(default_factory=utc_now)
    recorded_at: datetime = Field(default_factory=utc_now)
    status: str = Field(default="valid", max_length=20)  # valid | retracted | superseded
    corrects_id: Optional[int] = Field(default=None, foreign_key="measurement.id")
    proposal_item_id: Optional[int] = Field(default=None, foreign_key="proposalitem.id")
    notes: Optional[str] = None
    retracted_by: Optional[str] = Field(default=None, max_length=80)
    retracted_at: Optional[datetime] = None
    retraction_reason: Optional[str] = None


class Prediction(SQLModel, table=True):
    """What a model version predicted for one candidate when it scored the pool (campaign unit)."""

    __table_args__ = (UniqueConstraint("model_version_id", "candidate_id", name="uq_prediction_candidate"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    model_version_id: int = Field(foreign_key="modelversion.id", index=True)
    candidate_id: int = Field(foreign_key="candidate.id", index=True)
    mean: float
    std: float
    novelty: float


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored, with the session's
    CSRF token. Signing out deletes the row, so a stolen cookie stops working too."""

    id: Optional[int] = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utc_now)
    expires_at: datetime
    flash: Optional[str] = Field(default=None, max_length=500)  # the one-line message the next page shows, once


class UploadPreview(SQLModel, table=True):
    """A checked CSV upload waiting to be confirmed. The confirm step names it by ``key`` (random, unguessable), so
    the file is not posted twice; it belongs to the user who uploaded it and to one campaign, expires, and is deleted
    once its rows are written (``db.previews``)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    key: str = Field(index=True, unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    filename: str = Field(max_length=255)
    csv_text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utc_now)
    expires_at: datetime


class AuditEvent(SQLModel, table=True):
    """Who did what, when: one row per write the service layer makes on a person's behalf."""

    id: Optional[int] = Field(default=None, primary_key=True)
    campaign_id: Optional[int] = Field(default=None, foreign_key="campaign.id", index=True)
    actor: str = Field(max_length=80)
    action: str = Field(max_length=60)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utc_now)
