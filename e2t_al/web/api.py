"""The JSON API under ``/api/`` for instruments and scripts (OpenAPI schema at ``/api/openapi.json``).

Every route needs an API token (``Authorization: Bearer e2t_…``) whose user holds the route's permission. Writes go
through ``db.service`` in one transaction: a refused request (4xx) writes nothing.
"""

from __future__ import annotations

from typing import Literal, Optional

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from db import service
from db.schemas import DecisionIn, Input, MeasurementEntry, Unit
from db.tables import Candidate
from e2t_al.web import views
from e2t_al.web.security import Visitor, api_user, store

class Refusal(BaseModel):
    detail: str
    problems: Optional[list[str]] = None  # an import refused: every bad row with its line and reason


REFUSALS = {400: "refused by the store (the reason is in detail)", 401: "no valid API token",
            403: "the token's role may not do this", 404: "no such campaign, candidate, measurement or proposal",
            409: "probably entered twice", 422: "invalid input"}
router = APIRouter(prefix="/api", tags=["api"],
                   responses={code: {"model": Refusal, "description": text} for code, text in REFUSALS.items()})
ProposalStatus = Literal["proposed", "approved", "rejected", "measured", "failed"]


class MeasurementPost(MeasurementEntry):
    campaign: str = Field(min_length=1, max_length=120)
    allow_duplicate: bool = Field(default=False, description="keep a second identical entry within a minute")


class CorrectionPost(Input):
    value: float
    unit: Unit
    uncertainty: Optional[float] = Field(default=None, ge=0)
    method: Optional[str] = Field(default=None, max_length=120)
    notes: Optional[str] = Field(default=None, max_length=10_000)


class RetractionPost(Input):
    reason: str = Field(min_length=1, max_length=2000)


class DecisionPost(Input):
    decision: Literal["approved", "rejected"]
    comment: Optional[str] = Field(default=None, max_length=2000)


class Me(Input):
    username: str
    role: str


@router.get("/me", response_model=Me)
def me(visitor: Visitor = Depends(api_user("view"))):
    return Me(username=visitor.username, role=visitor.role)


@router.get("/campaigns", response_model=list[views.CampaignOut])
def campaigns(request: Request, visitor: Visitor = Depends(api_user("view"))):
    with store(request) as session:
        return [views.campaign_out(c) for c in service.list_campaigns(session)]


@router.get("/campaigns/{name}", response_model=views.CampaignSummary)
def campaign(name: str, request: Request, visitor: Visitor = Depends(api_user("view"))):
    with store(request) as session:
        return views.campaign_summary(session, service.get_campaign(session, name))


@router.get("/campaigns/{name}/domains", response_model=views.DomainMap)
def domains(name: str, request: Request, visitor: Visitor = Depends(api_user("view"))):
    with store(request) as session:
        return views.domain_map(session, service.get_campaign(session, name))


@router.get("/campaigns/{name}/candidates", response_model=list[views.CandidateOut])
def candidates(name: str, request: Request, visitor: Visitor = Depends(api_user("view"))):
    with store(request) as session:
        return views.candidates(session, service.get_campaign(session, name))


@router.get("/campaigns/{name}/candidates/{identifier}", response_model=views.CandidateDetail)
def candidate(name: str, identifier: str, request: Request, visitor: Visitor = Depends(api_user("view"))):
    with store(request) as session:
        return views.candidate_detail(session, service.get_campaign(session, name), identifier)


@router.get("/proposals", response_model=list[views.ProposalOut])
def proposals(request: Request, campaign: str = Query(max_length=120),
              status: Optional[list[ProposalStatus]] = Query(default=None), visitor: Visitor = Depends(api_user("view"))):
    with store(request) as session:
        return views.proposals(session, service.get_campaign(session, campaign), status)


@router.post("/proposals/{item_id}/decision", response_model=views.ProposalOut)
def decide(item_id: views.RowIdInPath, body: DecisionPost, request: Request, visitor: Visitor = Depends(api_user("decide"))):
    with store(request) as session:
        _, campaign = service.get_proposal_item(session, item_id)
        item = service.decide(session, campaign, item_id, DecisionIn(user=visitor.username, **body.model_dump()))
        return views.proposal_out(item, session.get(Candidate, item.candidate_id))


@router.get("/measurements", response_model=list[views.MeasurementOut])
def measurements(request: Request, campaign: str = Query(max_length=120), history: bool = False,
                 visitor: Visitor = Depends(api_user("view"))):
    with store(request) as session:
        return views.measurements(session, service.get_campaign(session, campaign), history)


@router.post("/measurements", response_model=views.MeasurementOut, status_code=201)
def add_measurement(body: MeasurementPost, request: Request, visitor: Visitor = Depends(api_user("measure"))):
    entry = MeasurementEntry(**body.model_dump(exclude={"campaign", "allow_duplicate"}))
    with store(request) as session:
        measurement = service.add_measurement(session, service.get_campaign(session, body.campaign),
                                              entry.by(visitor.username), allow_duplicate=body.allow_duplicate)
        return views.measurement_out(measurement, entry.candidate)


@router.post("/measurements/{measurement_id}/correction", response_model=views.MeasurementOut, status_code=201)
def correct_measurement(measurement_id: views.RowIdInPath, body: CorrectionPost, request: Request,
                        visitor: Visitor = Depends(api_user("measure"))):
    with store(request) as session:
        campaign = service.campaign_of_measurement(session, measurement_id)
        identifier = views.candidate_identifier(session, service.get_measurement(session, campaign, measurement_id).candidate_id)
        entry = MeasurementEntry(candidate=identifier, **body.model_dump())
        measurement = service.correct_measurement(session, campaign, measurement_id, entry.by(visitor.username))
        return views.measurement_out(measurement, identifier)


@router.post("/measurements/{measurement_id}/retraction", response_model=views.MeasurementOut)
def retract_measurement(measurement_id: views.RowIdInPath, body: RetractionPost, request: Request,
                        visitor: Visitor = Depends(api_user("retract"))):
    with store(request) as session:
        campaign = service.campaign_of_measurement(session, measurement_id)
        measurement = service.retract_measurement(session, campaign, measurement_id, visitor.username, body.reason,
                                                  may_retract_any=visitor.may("retract_any"))
        return views.measurement_out(measurement, views.candidate_identifier(session, measurement.candidate_id))


@router.get("/audit", response_model=list[views.AuditOut])
def audit(request: Request, campaign: Optional[str] = Query(default=None, max_length=120),
          visitor: Visitor = Depends(api_user("audit"))):
    with store(request) as session:
        return views.audit_log(session, service.get_campaign(session, campaign) if campaign else None)
