"""The discovery benchmark on a small real problem: its JSON contract and metrics that follow from the runs."""

from __future__ import annotations

import json

import numpy as np

from e2t_al.acquisition.batch import Objective
from e2t_al.bench.discovery import run_discovery
from e2t_al.config import CampaignConfig


def test_discovery_report_has_the_contracted_keys_and_consistent_metrics(mp, tmp_path):
    config = CampaignConfig.model_validate({
        "name": "discovery", "dataset": "mp", "target": "band_gap", "unit": "eV",
        "ensemble": {"members": 1, "model": {"encoder": {"descriptors": ["composition"], "hidden": [32], "embedding_dim": 8},
                                             "training": {"max_steps": 20, "validation_domains": 1, "validate_every": 10}}}})
    out = tmp_path / "discovery.json"
    run_discovery(config, "Li", budget=6, batch=3, seeds=2, strategies=["e2t-qlogei", "random"],
                           objective=Objective("maximise"), pool="holdout", json_path=out)
    saved = json.loads(out.read_text())
    assert set(saved["strategies"]) == {"e2t-qlogei", "random"} and out.with_suffix(".png").exists()
    for record in saved["strategies"].values():
        assert len(record["experiments_to_best"]) == 2 and len(record["regret_curve"]) == 2
        for hit, curve in zip(record["experiments_to_best"], record["regret_curve"]):
            curve = np.array(curve)
            assert len(curve) == 6 and (curve >= -1e-9).all() and (np.diff(curve) <= 1e-9).all()
            assert (hit is None) == (curve[-1] > 1e-9)  # the best was found exactly when the regret reached 0
            if hit is not None:
                assert curve[hit - 1] <= 1e-9 and (hit == 1 or curve[hit - 2] > 1e-9)
