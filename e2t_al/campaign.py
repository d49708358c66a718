"""Campaign set-up from a config: the store gets the data set's candidates and the measurements the lab starts with."""

from __future__ import annotations

import numpy as np
from sqlmodel import Session

from db import service
from db.importers import candidates_from_dataset
from db.schemas import CampaignIn, MeasurementIn
from e2t_al.config import CampaignConfig
from e2t_al.data import DataError, load_dataset
from e2t_al.data.dataset import MaterialsDataset

REFERENCE_OPERATOR = "reference-data"


def starting_measurements(dataset: MaterialsDataset, config: CampaignConfig) -> np.ndarray:
    """Indices of the materials measured at the start: labelled, and outside every unexplored domain."""
    unknown = [d for d in config.unexplored_domains if d not in dataset.all_domain_keys()]
    if unknown:
        raise DataError(f"unexplored domain(s) {unknown} are not domains of {dataset.name}")
    unexplored = np.zeros(len(dataset), dtype=bool)
    for domain in config.unexplored_domains:
        unexplored |= dataset.in_domain(domain)
    return np.flatnonzero(np.isfinite(dataset.target(config.target)) & ~unexplored)


def create_campaign_from_config(session: Session, config: CampaignConfig, dataset: MaterialsDataset | None = None):
    """Campaign row, candidates of the data set, and the starting measurements; returns
    ``(campaign, number of candidates, number measured)``. One transaction: all of it lands or none."""
    dataset = dataset or load_dataset(config.dataset, config.data_dir)
    campaign = service.create_campaign(session, CampaignIn(
        name=config.name, target_property=config.target, unit=config.unit, objective=config.objective,
        target_low=config.target_low, target_high=config.target_high, valid_min=config.valid_min,
        valid_max=config.valid_max, dataset=config.dataset, config=config.model_dump(mode="json")))
    rows, problems = candidates_from_dataset(dataset)
    service.import_candidates(session, campaign, rows, problems)
    values = dataset.target(config.target)
    unit = dataset.units.get(config.target, config.unit)
    measured = starting_measurements(dataset, config)
    for i in measured:
        service.add_measurement(session, campaign, MeasurementIn(
            candidate=str(dataset.ids[i]), value=float(values[i]), unit=unit, operator=REFERENCE_OPERATOR,
            method=f"{config.dataset} data set"), allow_duplicate=True)
    return campaign, len(rows), len(measured)
