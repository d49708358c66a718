"""The discovery benchmark on a small real problem: its JSON contract and metrics that follow from the runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from e2t_al.acquisition.batch import Objective
from e2t_al.bench.discovery import run_discovery
from e2t_al.config import CampaignConfig
from e2t_al.data import DataError


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


def test_baybe_baseline_proposes_distinct_unmeasured_candidates_towards_the_objective():
    from e2t_al.bench.baybe_baseline import BayBEProposer

    rng = np.random.default_rng(0)
    features = rng.uniform(size=(40, 3))
    features[:, 2] = 1.0  # a constant column is dropped, not refused
    values = 3.0 * features[:, 0] + 0.1 * features[:, 1]
    measured = np.zeros(40, dtype=bool)
    measured[rng.choice(40, size=20, replace=False)] = True
    unmeasured = np.flatnonzero(~measured)
    for kind, better in (("maximise", np.greater), ("minimise", np.less)):
        chosen = BayBEProposer(features, Objective(kind)).propose(measured, values[measured], batch=3, seed=1)
        assert len(set(chosen.tolist())) == 3 and not measured[chosen].any()
        # on a smooth, nearly linear function the GP's choices lie on the objective's side of the unmeasured median
        assert better(values[chosen].mean(), np.median(values[unmeasured]))


def test_discovery_needs_at_least_one_seed(tmp_path):
    config = CampaignConfig.model_validate({"name": "discovery", "dataset": "mp", "target": "band_gap", "unit": "eV"})
    with pytest.raises(DataError, match="at least 1"):
        run_discovery(config, "Li", budget=6, batch=3, seeds=0, strategies=["random"], objective=Objective("maximise"),
                      pool="holdout", json_path=tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()
