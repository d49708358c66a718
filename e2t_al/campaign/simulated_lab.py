"""A simulated lab for retrospective campaigns and the demo: it "measures" approved proposals by looking up the
data set's value (optionally with Gaussian noise) and enters it through the same service a person would use."""

from __future__ import annotations

import numpy as np
from sqlmodel import Session

from db import service
from db.schemas import MeasurementIn
from db.tables import Campaign, Measurement
from e2t_al.data.dataset import MaterialsDataset

LAB_OPERATOR = "simulated-lab"


class SimulatedLab:
    """y_measured = y_dataset + ε, ε ~ N(0, noise²); a candidate without a reference value fails its proposal."""

    def __init__(self, dataset: MaterialsDataset, target: str, noise: float = 0.0, seed: int = 0):
        self.values = dict(zip(dataset.ids.tolist(), dataset.target(target).tolist()))
        self.unit = dataset.units.get(target, "")
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def measure_approved(self, session: Session, campaign: Campaign) -> list[Measurement]:
        measured = []
        for item, candidate in service.proposal_items(session, campaign, statuses=["approved"]):
            value = self.values.get(candidate.identifier, float("nan"))
            if not np.isfinite(value):
                service.fail_proposal(session, campaign, item.id, LAB_OPERATOR, "no reference value in the data set")
                continue
            noisy = value + (self.rng.normal(0.0, self.noise) if self.noise > 0 else 0.0)
            measured.append(service.add_measurement(session, campaign, MeasurementIn(
                candidate=candidate.identifier, value=float(noisy), unit=self.unit, operator=LAB_OPERATOR,
                uncertainty=self.noise or None, method="simulated (data-set lookup)", proposal_item_id=item.id)))
        return measured
