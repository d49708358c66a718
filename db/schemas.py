"""Validated input: what a person or script may ask the store to write (non-table models, so they validate)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from e2t_al.units import UNITS, unknown_unit

Objective = Literal["maximise", "minimise", "target_window"]
RepresentationKind = Literal["cif", "smiles", "formula"]
Role = Literal["viewer", "experimentalist", "reviewer", "admin"]
CLOCK_SKEW = timedelta(minutes=5)
EARLIEST_MEASUREMENT = datetime(1900, 1, 1, tzinfo=timezone.utc)
MAX_ROW_ID = 2**63 - 1  # the largest id a database integer column holds
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


def _known_unit(unit: str) -> str:
    if unit not in UNITS:
        raise ValueError(unknown_unit(unit))
    return unit


Unit = Annotated[str, Field(max_length=40), AfterValidator(_known_unit)]


def validation_reason(exc, subject: str = "input") -> str:
    """A pydantic (or FastAPI request) validation error as one line: ``field: message; …``. Errors of the
    whole model are named ``subject``; FastAPI's ``body`` prefix is left out."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or subject}: {e['msg']}" for e in exc.errors())


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _printable(text: str, what: str, line_breaks: bool = False) -> str:
    allowed = "\t\n\r" if line_breaks else "\t"
    if any((ord(c) < 32 and c not in allowed) or ord(c) == 127 for c in text):
        raise ValueError(f"{what} contains control characters")
    return text


class CampaignIn(Input):
    name: str = Field(min_length=1, max_length=120)
    target_property: str = Field(min_length=1, max_length=80)
    unit: Unit
    objective: Objective = "maximise"
    target_low: Optional[float] = None
    target_high: Optional[float] = None
    valid_min: Optional[float] = None
    valid_max: Optional[float] = None
    dataset: Optional[str] = None
    config: dict = Field(default_factory=dict)

    @field_validator("name", "target_property")
    @classmethod
    def _no_control(cls, value: str, info) -> str:
        return _printable(value, info.field_name)

    @model_validator(mode="after")
    def _consistent(self) -> "CampaignIn":
        for name in ("target_low", "target_high", "valid_min", "valid_max"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be finite")
        if self.objective == "target_window":
            if self.target_low is None or self.target_high is None or self.target_low > self.target_high:
                raise ValueError("objective target_window needs target_low <= target_high")
        if self.valid_min is not None and self.valid_max is not None and self.valid_min > self.valid_max:
            raise ValueError("valid_min is above valid_max")
        return self


class CandidateIn(Input):
    identifier: str = Field(min_length=1, max_length=200)
    representation_kind: RepresentationKind
    representation: str = Field(min_length=1, max_length=2_000_000)
    source: Optional[str] = Field(default=None, max_length=255)

    @field_validator("identifier")
    @classmethod
    def _identifier(cls, value: str) -> str:
        return _printable(value, "identifier")


class MeasurementEntry(Input):
    """One measured value of a candidate as a person enters it (who enters it is known from their sign-in).
    ``value`` and ``uncertainty`` are in ``unit``."""

    candidate: str = Field(min_length=1, max_length=200, description="candidate identifier")
    value: float
    unit: Unit
    uncertainty: Optional[float] = Field(default=None, ge=0)
    method: Optional[str] = Field(default=None, max_length=120)
    measured_at: Optional[datetime] = None
    notes: Optional[str] = Field(default=None, max_length=10_000)
    proposal_item_id: Optional[RowId] = None

    @field_validator("value", "uncertainty", "proposal_item_id", mode="before")
    @classmethod
    def _strict_number(cls, value, info):
        """A number is a number: ``true`` is not 1.0 and ``"1_000"`` is not 1000."""
        if isinstance(value, bool):
            raise ValueError(f"{info.field_name} must be a number, not {str(value).lower()}")
        if isinstance(value, str) and "_" in value:
            raise ValueError(f"{info.field_name} must be written without underscores ({value!r})")
        return value

    @field_validator("value", "uncertainty")
    @classmethod
    def _finite(cls, value: Optional[float], info) -> Optional[float]:
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{info.field_name} must be a finite number")
        return value

    @field_validator("candidate", "method")
    @classmethod
    def _no_control(cls, value: Optional[str], info) -> Optional[str]:
        return value if value is None else _printable(value, info.field_name)

    @field_validator("notes")
    @classmethod
    def _text(cls, value: Optional[str]) -> Optional[str]:
        return value if value is None else _printable(value, "notes", line_breaks=True)

    @field_validator("measured_at")
    @classmethod
    def _not_in_future(cls, value: Optional[datetime]) -> Optional[datetime]:
        if value is None:
            return None
        if value.utcoffset() is None:
            value = value.replace(tzinfo=timezone.utc)
        if value > datetime.now(timezone.utc) + CLOCK_SKEW:
            raise ValueError("measured_at is in the future")
        if value < EARLIEST_MEASUREMENT:
            raise ValueError(f"measured_at is before {EARLIEST_MEASUREMENT.year}: check the date")
        return value

    def by(self, operator: str) -> "MeasurementIn":
        return MeasurementIn(operator=operator, **self.model_dump())


class MeasurementIn(MeasurementEntry):
    """A measurement with the operator who made it: what the store writes."""

    operator: str = Field(min_length=1, max_length=80)

    @field_validator("operator")
    @classmethod
    def _operator(cls, value: str) -> str:
        return _printable(value, "operator")


class DecisionIn(Input):
    decision: Literal["approved", "rejected"]
    user: str = Field(min_length=1, max_length=80)
    comment: Optional[str] = Field(default=None, max_length=2000)
