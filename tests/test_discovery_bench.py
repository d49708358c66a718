"""The discovery benchmark on a small real problem: its JSON contract and metrics that follow from the runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from e2t_al.acquisition.batch import Objective
from e2t_al.bench.discovery import discovery_table, run_discovery
from e2t_al.config import CampaignConfig
from e2t_al.data import DataError


def small_config() -> CampaignConfig:
    return CampaignConfig.model_validate({
        "name": "discovery", "dataset": "mp", "target": "band_gap", "unit": "eV",
        "ensemble": {"members": 1, "model": {"encoder": {"descriptors": ["composition"], "hidden": [32], "embedding_dim": 8},
                                             "training": {"max_steps": 20, "validation_domains": 1, "validate_every": 10}}}})


def test_discovery_report_has_the_contracted_keys_and_consistent_metrics(mp, tmp_path):
    out = tmp_path / "discovery.json"
    run_discovery(small_config(), "Li", budget=6, batch=3, seeds=2, strategies=["e2t-qlogei", "random"],
                  objective=Objective("maximise"), pool="holdout", json_path=out)
    saved = json.loads(out.read_text())
    assert set(saved["strategies"]) == {"e2t-qlogei", "random"} and out.with_suffix(".png").exists()
    for record in saved["strategies"].values():
        assert len(record["experiments_to_best"]) == 2 and len(record["regret_curve"]) == 2
        for key in ("batches_to_best", "found", "af_random", "af_gp", "seed_values"):
            assert len(record[key]) == 2
        assert set(record["top5_recall"]) == set(record["ef"]) == {"@6"}  # below 10: at the budget
        for hit, found, batches, curve in zip(record["experiments_to_best"], record["found"], record["batches_to_best"],
                                              record["regret_curve"]):
            curve = np.array(curve)
            assert len(curve) == 6 and (curve >= -1e-9).all() and (np.diff(curve) <= 1e-9).all()
            assert found == (curve[-1] <= 1e-9)  # the best was found exactly when the regret reached 0
            if found:
                assert curve[hit - 1] <= 1e-9 and (hit == 1 or curve[hit - 2] > 1e-9)
                assert batches == -(-hit // 3)
            else:  # counted as budget + 1 (and batches + 1), marked by found
                assert hit == 7 and batches == 3
    headers = [column.header for column in discovery_table(saved).columns]
    assert "top-5% recall @6" in headers and "EF @6" in headers  # the table names the point it reports


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


def test_a_strategy_in_the_second_process_gives_what_it_gives_in_the_first(mp, tmp_path):
    def run(side_lane):
        return run_discovery(small_config(), "Li", budget=6, batch=3, seeds=2, strategies=["e2t-qlogei", "random"],
                             objective=Objective("maximise"), pool="holdout", json_path=tmp_path / "out.json",
                             side_lane=side_lane)

    alone, beside = run([]), run(["random"])
    assert beside["second_process"] == ["random"] and beside["seeds"] == 2
    saved = json.loads((tmp_path / "out.json").read_text())
    for key in ("experiments_to_best", "regret_curve"):
        assert beside["strategies"]["random"][key] == alone["strategies"]["random"][key] == saved["strategies"]["random"][key]
    assert len(beside["strategies"]["e2t-qlogei"]["regret_curve"]) == 2


def test_a_failure_in_the_second_process_is_raised_in_the_first(tmp_path):
    import queue

    from e2t_al.bench.discovery import DiscoveryProblem, SideLane, side_lane_runs

    problem = DiscoveryProblem(tmp_path / "missing.sqlite", small_config(), np.zeros((3, 2)), None, 6, Objective("maximise"))
    outbox = queue.Queue()
    side_lane_runs({0: problem}, ["random"], outbox)  # in this process: the template is missing
    kind, text = outbox.get_nowait()
    assert kind == "error" and "missing.sqlite" in text
    lane = SideLane({0: problem}, ["random"])
    lane.outbox = outbox
    outbox.put((kind, text))
    with pytest.raises(RuntimeError, match="second process failed"):
        lane.collect()


def test_discovery_workers_are_one_or_two(tmp_path):
    with pytest.raises(DataError, match="--workers"):
        run_discovery(small_config(), "Li", budget=6, batch=3, seeds=1, strategies=["random"],
                      objective=Objective("maximise"), pool="holdout", json_path=None, workers=3)


def test_first_seed_runs_the_later_seeds_alone(mp, tmp_path):
    def run(seeds, first_seed):
        return run_discovery(small_config(), "Li", budget=6, batch=3, seeds=seeds, strategies=["random"],
                             objective=Objective("maximise"), pool="holdout", json_path=None, first_seed=first_seed)

    both, later = run(2, 0), run(1, 1)
    assert both["seed_values"] == [0, 1] and later["seed_values"] == [1]
    assert later["strategies"]["random"]["regret_curve"] == both["strategies"]["random"]["regret_curve"][1:]


def test_regression_metrics_report_rank_and_where_the_best_lands():
    from e2t_al.bench.metrics import regression_metrics

    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    perfect = regression_metrics(y_true, y_true * 10)  # a scale error: R² poor, the order perfect
    assert perfect["spearman"] == pytest.approx(1.0) and perfect["best_rank"] == 1 and perfect["r2"] < 0
    reversed_order = regression_metrics(y_true, y_true[::-1].copy())
    assert reversed_order["spearman"] == pytest.approx(-1.0) and reversed_order["best_rank"] == 4


def test_baybe_transfer_sees_every_target_row_and_a_capped_share_of_each_source_task():
    pytest.importorskip("baybe")
    from e2t_al.bench.baybe_baseline import TASK, BayBETransferProposer

    rng = np.random.default_rng(0)
    tasks = np.array(["target"] * 6 + ["Pb-I"] * 50 + ["Sn-I"] * 10)
    proposer = BayBETransferProposer(rng.normal(size=(len(tasks), 3)), Objective(), tasks, source_per_task=20)
    assert proposer.given[:6].all() and proposer.given[6:56].sum() == 20 and proposer.given[56:].all()
    measured = np.ones(len(tasks), dtype=bool)
    measured[:4] = False  # four target candidates still open
    frame = proposer.measurements(measured, rng.normal(size=measured.sum()))
    assert frame[TASK].value_counts().to_dict() == {"Pb-I": 20, "Sn-I": 10, "target": 2}
    candidates = proposer.searchspace.discrete.exp_rep
    assert set(candidates[TASK]) == {"target"} and len(candidates) == 6  # recommendations come from the scope only


def test_baybe_takes_candidates_whose_descriptors_repeat_and_keeps_each_one():
    pytest.importorskip("baybe")
    from e2t_al.bench.baybe_baseline import REPEAT_SHIFT, BayBEProposer, descriptor_frame

    rng = np.random.default_rng(3)
    features = rng.uniform(size=(30, 3))
    features[10] = features[11] = features[12] = features[3]  # polymorphs of one composition: identical descriptors
    frame = descriptor_frame(features, np.array([str(i) for i in range(30)]))
    assert not frame.duplicated().any() and len(frame) == 30
    span = features[:, 0].max() - features[:, 0].min()
    assert frame["x0"].iloc[[3, 10, 11, 12]].to_numpy() == pytest.approx(features[3, 0] + np.arange(4) * REPEAT_SHIFT * span,
                                                                         rel=0, abs=1e-12)
    assert np.array_equal(np.delete(frame.to_numpy(), [10, 11, 12], axis=0), np.delete(features, [10, 11, 12], axis=0))
    measured = np.zeros(30, dtype=bool)
    measured[:12] = True  # one of the repeats measured, one still open
    chosen = BayBEProposer(features, Objective("maximise")).propose(measured, features[:12, 0], batch=4, seed=0)
    assert len(set(chosen.tolist())) == 4 and not measured[chosen].any()
