"""The discovery suite and the scenario options of ``bench discovery``, on small real problems with a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from e2t_al.acquisition.batch import Objective
from e2t_al.acquisition.objectives import parse_objective
from e2t_al.bench import environment
from e2t_al.bench.discovery import STRATEGIES, Scenario, acceleration, median_interval, resolve_e2t, run_discovery
from e2t_al.bench.suite import ScenarioConfig, SuiteConfig, merge_reports, run_suite
from e2t_al.config import AcquisitionConfig, CampaignConfig, load_config

TINY_MODEL = {"members": 1, "model": {"encoder": {"descriptors": ["composition"], "hidden": [32], "embedding_dim": 8},
                                      "training": {"max_steps": 20, "validation_domains": 1, "validate_every": 10}}}


def tiny_config(**acquisition) -> CampaignConfig:
    return CampaignConfig.model_validate({"name": "discovery", "dataset": "mp", "target": "band_gap", "unit": "eV",
                                          "ensemble": TINY_MODEL, "acquisition": acquisition})


def test_suite_runs_two_scenarios_and_merges_later_seeds(mp, tmp_path):
    model = tmp_path / "model.yaml"
    model.write_text(yaml.safe_dump(tiny_config(surrogate="e2t_gp").model_dump(mode="json")))
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "strategies": ["e2t", "gp-qlogei", "random"], "budget": 6, "batch": 3,
        "scenarios": {
            # a tenth of the other compounds measured at the start keeps the GPs small (a smoke test)
            "li-pooled": {"dataset": "mp", "target": "band_gap", "holdout": ["Li", "Na"], "source_fraction": 0.1,
                          "config": str(model)},
            "k-window": {"dataset": "mp", "target": "band_gap", "holdout": ["K"], "objective": "target:1:2",
                         "noise": 0.05, "source_fraction": 0.1, "config": str(model)}}}))
    out = tmp_path / "suite.json"
    run_suite(suite, seeds=1, first_seed=0, json_path=out)
    run_suite(suite, seeds=1, first_seed=1, json_path=out)  # a second part: merged, not overwritten
    report = json.loads(out.read_text())
    assert set(report["scenarios"]) == {"li-pooled", "k-window"}
    for name, scenario in report["scenarios"].items():
        assert scenario["seed_values"] == [0, 1] and scenario["seeds"] == 2
        assert scenario["environments"] == [environment()]  # both parts ran here: one environment
        assert (tmp_path / f"suite_{name}.png").exists()
        e2t = scenario["strategies"]["e2t"]
        assert e2t["resolved"] == "e2t-gp-probe-domains"
        for record in scenario["strategies"].values():
            assert record["seed_values"] == [0, 1]
            for key in ("batches_to_best", "experiments_to_best", "af_random", "af_gp"):
                assert len(record[key]) == 2
            assert all(len(v) == 2 for v in record["top5_recall"].values()) and set(record["ef"]) == {"@6"}
    window = report["scenarios"]["k-window"]
    assert window["objective"] == {"kind": "target_window", "low": 1.0, "high": 2.0} and window["noise"] == 0.05
    assert all(isinstance(h, int) for h in window["strategies"]["random"]["in_window_hits"])
    gp = report["scenarios"]["li-pooled"]["strategies"]["gp-qlogei"]
    assert all(f is None or f == pytest.approx(1.0) for f in gp["af_gp"])  # the GP against itself


def test_pooled_holdouts_source_fraction_and_noise(mp, tmp_path):
    def run(**options):
        return run_discovery(tiny_config(), Scenario(("Li", "Na"), Objective("maximise"), budget=6, batch=3, **options),
                             seeds=1, strategies=["random"])

    full, scarce = run(source_fraction=1.0), run(source_fraction=0.2)
    assert full["holdout_domains"] == ["Li", "Na"] and full["pool_size"] == scarce["pool_size"]  # the same scope
    values = dict(zip(mp.ids.tolist(), mp.target("band_gap").tolist()))
    in_scope = [i for i, keys in zip(mp.ids.tolist(), mp.domain_keys) if keys & {"Li", "Na"} and np.isfinite(values[i])]
    assert full["best"]["value"] == pytest.approx(max(values[i] for i in in_scope))
    noisy = run(noise=0.5, source_fraction=0.2)  # judged on the true values: its best-so-far curve only holds data-set values
    assert noisy["noise"] == 0.5
    assert set(np.round(noisy["strategies"]["random"]["best_so_far"][0], 6)) <= {round(v, 6) for v in values.values()
                                                                                    if np.isfinite(v)}


def test_scenario_options_are_checked(tmp_path):
    from e2t_al.data import DataError

    for options, message in (({"source_fraction": 0.0}, "source-fraction"), ({"noise": -1.0}, "noise")):
        with pytest.raises(DataError, match=message):
            run_discovery(tiny_config(), Scenario(("Li",), Objective(), 6, 3, **options), seeds=1, strategies=["random"])


def test_a_scenario_resolves_its_campaign_config_and_refuses_another_data_sets(tmp_path):
    """``ScenarioConfig.campaign_config``: the data set's discovery config with the scenario's target; a model config
    written for another data set is an error naming both, and the suite names the scenario."""
    from e2t_al.data import DataError

    scenario = ScenarioConfig(dataset="hoip", target="band_gap_HSE06", holdout=["Sn-Cl"])
    resolved = scenario.campaign_config(tmp_path)
    assert resolved.dataset == "hoip" and resolved.target == "band_gap_HSE06" and resolved.data_dir == tmp_path
    polymers_config = Path(__file__).resolve().parents[1] / "configs" / "discovery_polymers.yaml"
    wrong = scenario.model_copy(update={"config": polymers_config})
    with pytest.raises(DataError, match="is for data set 'polymers', not 'hoip'"):
        wrong.campaign_config()
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"strategies": ["random"], "scenarios": {"wrong": {
        "dataset": "hoip", "holdout": ["Sn-Cl"], "config": str(polymers_config)}}}))
    with pytest.raises(DataError, match="scenario wrong: .*is for data set 'polymers'"):
        run_suite(suite, 1, 0, tmp_path / "report.json")


def test_target_window_objective_parses_and_e2t_resolves():
    assert parse_objective("target:1.2:1.6") == ("target_window", 1.2, 1.6)
    assert parse_objective("target:1.4") == ("target_window", 1.4, 1.4)
    with pytest.raises(ValueError, match="LOW ≤ HIGH"):
        parse_objective("target:1.6:1.2")
    assert resolve_e2t(AcquisitionConfig()) == "e2t-gp-probe-domains"  # the default: one place per untested domain
    unlimited = {"max_per_unmeasured_domain": None}  # before stop 46
    assert resolve_e2t(AcquisitionConfig(**unlimited)) == "e2t-gp-keep-level-exploit-batch"  # stops 44-45
    assert resolve_e2t(AcquisitionConfig(exploit_places=4, **unlimited)) == "e2t-gp-keep-level-exploit-4"  # stop 44
    assert resolve_e2t(AcquisitionConfig(exploit_places=1, **unlimited)) == "e2t-gp-believer-keep-level"  # stops 39-42
    assert resolve_e2t(AcquisitionConfig(exploit_places=2, **unlimited)) == "e2t-gp-keep-level-exploit-2"  # stop 43
    assert resolve_e2t(AcquisitionConfig(exploit_places=2)) == "e2t_gp/gaussian/qlogei/believer with exploit_places=2"
    old_believer = {"believer_keeps_domain_level": False, "exploit_places": 1, **unlimited}
    assert resolve_e2t(AcquisitionConfig(**old_believer)) == "e2t-gp-believer-exploit"  # the default until stop 39
    assert resolve_e2t(AcquisitionConfig(**{**old_believer, "exploit_places": 0})) == "e2t-gp-believer"  # until stop 34
    assert resolve_e2t(AcquisitionConfig(exploit_places=0)) == "e2t_gp/gaussian/qlogei/believer with exploit_places=0"
    assert resolve_e2t(AcquisitionConfig(window_rule="hit_probability")) == (
        "e2t-gp-probe-domains with window_rule=hit_probability")  # e2t-hit's settings: windows by P(hit)
    assert resolve_e2t(AcquisitionConfig(joint_keeps_domain_level=True)) == (
        "e2t-gp-probe-domains with joint_keeps_domain_level=True")  # e2t-joint-keep-level's settings (stop 53)
    assert STRATEGIES["gp-qlogei"][1]["window_rule"] == "acquisition"  # the GP baseline stays BoTorch's qLogEI
    assert STRATEGIES["gp-qlogei"][1]["max_per_unmeasured_domain"] is None  # ... and fills a batch as BoTorch does
    assert resolve_e2t(AcquisitionConfig(batch_rule="joint")) == "e2t-gp-qlogei"
    joint = {"batch_rule": "joint"}  # what believer does for the ensemble and for UCB (it needs a GP and EI)
    assert resolve_e2t(AcquisitionConfig(surrogate="e2t", **joint)) == "e2t-gauss-qlogei"
    assert resolve_e2t(AcquisitionConfig(surrogate="e2t", posterior="members", **joint)) == "e2t-qlogei"
    assert resolve_e2t(AcquisitionConfig(surrogate="e2t", posterior="gaussian", function="thompson")) == "e2t-thompson"
    assert resolve_e2t(AcquisitionConfig(surrogate="e2t_gp", function="qucb", **joint)) == "e2t-gp-ucb"
    assert resolve_e2t(AcquisitionConfig(batch_rule="marginal")) == "e2t-gp-qlogei-marginal"
    assert resolve_e2t(AcquisitionConfig(e2t_gp_learn_offset=False, batch_rule="joint")) == "e2t-gp-qlogei-no-offset"
    assert resolve_e2t(AcquisitionConfig(function="qucb", batch_rule="marginal")) == "e2t_gp/gaussian/qucb/marginal"
    # a setting the strategy leaves at its default is named, unless the surrogate never reads it
    assert resolve_e2t(AcquisitionConfig(e2t_gp_prior="candidate")) == (
        "e2t-gp-probe-domains with e2t_gp_prior=candidate")
    assert resolve_e2t(AcquisitionConfig(gp_refit_every=5, gp_max_background=300)) == (
        "e2t-gp-probe-domains with gp_refit_every=5, gp_max_background=300")
    assert resolve_e2t(AcquisitionConfig(window_gp_refit_every=None)) == (
        "e2t-gp-probe-domains with window_gp_refit_every=None")
    assert resolve_e2t(AcquisitionConfig(surrogate="e2t", e2t_gp_prior="candidate", batch_size=8, **joint)) == "e2t-gauss-qlogei"
    assert resolve_e2t(AcquisitionConfig(function="qucb", batch_rule="marginal", ucb_beta=1.0)) == (
        "e2t_gp/gaussian/qucb/marginal with ucb_beta=1.0")


def test_acceleration_factor_and_bootstrap_median_by_hand():
    ours = [0.0, 0.5, 0.5, 1.0]  # reaches its final recall 1.0 at experiment 4
    assert acceleration(ours, None, pool_size=100, budget=4) == pytest.approx(100 / 4)  # random needs r · pool
    assert acceleration(ours, [0.0, 0.0, 0.5, 0.5], 100, 4) == pytest.approx(5 / 4)  # never: budget + 1
    assert acceleration([0.0] * 4, [1.0] * 4, 100, 4) is None
    median, low, high = median_interval([1, 2, 3, 4, 100])
    assert median == 3 and 1 <= low <= 3 <= high <= 100


def test_merge_keeps_each_seed_once_and_takes_the_newer_run():
    def part(seeds, value):
        record = {key: [value] * len(seeds) for key in ("experiments_to_best", "batches_to_best", "seconds",
                                                         "in_window_hits")}
        record.update(seed_values=list(seeds), found=[True] * len(seeds), recall_curve=[[0.0, 1.0]] * len(seeds),
                      best_so_far=[[1.0, 2.0]] * len(seeds), regret_curve=[[1.0, 0.0]] * len(seeds))
        return {"seed_values": list(seeds), "budget": 2, "batch": 1, "pool_size": 10, "strategies": {"random": record},
                "environments": [{"numpy": "2.0" if value == 2 else "2.1"}]}

    merged = merge_reports(part([0, 1], 2), part([1, 2], 5))
    assert merged["seed_values"] == [0, 1, 2] and merged["seeds"] == 3
    assert merged["environments"] == [{"numpy": "2.0"}, {"numpy": "2.1"}]  # seeds from two environments: both kept
    assert merge_reports(merged, part([3], 5))["environments"] == merged["environments"]  # once each
    assert merged["strategies"]["random"]["experiments_to_best"] == [2, 5, 5]
    assert merged["strategies"]["random"]["top5_recall"]["@2"] == [1.0, 1.0, 1.0]


def test_suite_runs_the_baybe_strategies_on_their_seeds_only(tmp_path, monkeypatch):
    """baybe and baybe-transfer (slow) run on a scenario's first ``baybe_seeds`` seeds, apart from the others, and not at
    all on a window objective; the other strategies run on every seed."""
    from e2t_al.bench import suite as suite_module

    calls = []

    def fake_run_discovery(config, plan, seeds, strategies, first_seed, **kwargs):
        calls.append((plan.holdout, tuple(strategies), first_seed, seeds))
        return {"seed_values": list(range(first_seed, first_seed + seeds)), "pool_size": 1, "budget": 4, "strategies": {},
                "objective": {"kind": plan.objective.kind}}

    monkeypatch.setattr(suite_module, "run_discovery", fake_run_discovery)
    monkeypatch.setattr(suite_module, "best_so_far_plot", lambda report, path: path)
    monkeypatch.setattr(suite_module, "merge_reports", lambda old, new: new)
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "strategies": ["e2t", "baybe", "baybe-transfer", "random"], "budget": 4, "batch": 2,
        "scenarios": {"max": {"dataset": "hoip", "holdout": ["Ge-F"], "baybe_seeds": 2},
                      "window": {"dataset": "hoip", "holdout": ["Ge-F"], "objective": "target:1:2", "baybe_seeds": 2}}}))
    run_suite(suite, seeds=3, first_seed=0, json_path=tmp_path / "out.json")
    assert calls == [(("Ge-F",), ("e2t", "random"), 0, 3), (("Ge-F",), ("baybe", "baybe-transfer"), 0, 2),
                     (("Ge-F",), ("e2t", "random"), 0, 3)]
    calls.clear()
    run_suite(suite, seeds=2, first_seed=2, json_path=tmp_path / "later.json")  # seeds 2-3: past baybe_seeds
    assert calls == [(("Ge-F",), ("e2t", "random"), 2, 2), (("Ge-F",), ("e2t", "random"), 2, 2)]


def test_a_suite_stopped_half_way_keeps_the_seeds_it_finished(tmp_path, monkeypatch):
    from e2t_al.bench import suite as suite_module

    def fake_run_discovery(config, plan, seeds, strategies, first_seed, on_save=None, **kwargs):
        record = {key: [3] for key in ("experiments_to_best", "batches_to_best", "seconds", "in_window_hits")}
        record.update(seed_values=[first_seed], found=[True], recall_curve=[[0.0, 1.0]], best_so_far=[[1.0, 2.0]],
                      regret_curve=[[1.0, 0.0]])
        on_save({"seed_values": list(range(first_seed, first_seed + seeds)), "pool_size": 10, "budget": 2, "batch": 1,
                 "objective": {"kind": "maximise"}, "strategies": {"random": record}})  # the first seed is done
        raise RuntimeError("the machine went down during the second seed")

    monkeypatch.setattr(suite_module, "run_discovery", fake_run_discovery)
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"strategies": ["random"], "budget": 2, "batch": 1,
                                     "scenarios": {"gef": {"dataset": "hoip", "holdout": ["Ge-F"]}}}))
    out = tmp_path / "out.json"
    with pytest.raises(RuntimeError, match="went down"):
        run_suite(suite, seeds=3, first_seed=4, json_path=out)
    scenario = json.loads(out.read_text())["scenarios"]["gef"]
    assert scenario["seed_values"] == [4] and scenario["seeds"] == 1  # the finished seed, not the three planned
    assert scenario["strategies"]["random"]["experiments_to_best"] == [3]


def test_check_scenarios_are_not_development_scenarios():
    """configs/discovery_checks.yaml exists to test settings on campaigns nobody chose them on: none of its scenarios
    may repeat one of configs/discovery_suite.yaml's (same data set, target, unexplored domains and objective)."""
    configs = Path(__file__).resolve().parents[1] / "configs"
    development, checks = (load_config(configs / name, SuiteConfig) for name in ("discovery_suite.yaml", "discovery_checks.yaml"))

    def campaign(scenario) -> tuple:  # a scenario without a target takes its model config's
        target = scenario.campaign_config().target
        return scenario.dataset, target, tuple(sorted(scenario.holdout)), parse_objective(scenario.objective)

    assert checks.scenarios and not set(checks.scenarios) & set(development.scenarios)
    assert not {campaign(s) for s in checks.scenarios.values()} & {campaign(s) for s in development.scenarios.values()}
    assert "e2t" in checks.strategies and "gp-qlogei" in checks.strategies
