"""The benchmark command end to end on the real HOIP data, with a tiny model so it runs in seconds."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from e2t_al.bench import environment
from e2t_al.cli import app
from e2t_al.data import DataError

TINY = {
    "dataset": "hoip",
    "target": "band_gap_GGA",
    "ensemble": {"members": 2, "model": {
        "encoder": {"hidden": [16], "embedding_dim": 8},
        "episodes": {"query_size": 16},
        "training": {"max_steps": 20, "validate_every": 10, "patience": 2},
    }},
}


def test_bench_extrapolation_writes_the_report(tmp_path, data_dir):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["bench", "extrapolation", "--dataset", "hoip", "--target", "band_gap_GGA",
                                      "--holdout", "Ge-F", "--seeds", "2", "--json", str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert (report["dataset"], report["target"], report["holdout"]) == ("hoip", "band_gap_GGA", "Ge-F")
    assert report["n_test"] == 97 and report["n_train"] == 1248
    assert set(report["methods"]) == {"e2t", "e2t_ensemble", "e2t_gp", "nn", "nn_ensemble", "nn_ridge", "ridge", "gp", "oracle"}
    for scores in report["methods"].values():
        assert set(scores) == {"r2", "rmse", "mae", "spearman", "best_rank"} and all(len(v) == 2 for v in scores.values())
    assert 0.0 <= report["calibration"]["coverage_90"] <= 1.0 and "nll" in report["calibration"]
    for run in report["calibration"]["per_seed"]:  # the interval in use, and every kind scored on the same predictions
        assert run["interval"] == "validation_floor"
        assert set(run["by_interval"]) == {"validation_floor", "head", "head_quantile"}
        assert run["by_interval"]["validation_floor"] == {"coverage_90": run["coverage_90"], "nll": run["nll"]}
        assert len(run["member_validation_rmse"]) == 2 and all(r > 0 for r in run["member_validation_rmse"])
    assert (tmp_path / "out.png").stat().st_size > 10_000
    assert "e2t_ensemble" in result.output and "R²" in result.output

    later = tmp_path / "later.json"  # seed 1 alone reproduces the first run's second seed
    result = CliRunner().invoke(app, ["bench", "extrapolation", "--dataset", "hoip", "--holdout", "Ge-F", "--seeds", "1",
                                      "--first-seed", "1", "--json", str(later), "--config", str(config)])
    assert result.exit_code == 0, result.output
    again = json.loads(later.read_text())
    assert report["seed_values"] == [0, 1] and again["seed_values"] == [1]
    for method, scores in again["methods"].items():
        np.testing.assert_allclose(scores["r2"], report["methods"][method]["r2"][1:], rtol=1e-5, err_msg=method)


def test_the_e2t_informed_gp_runs_alone_in_the_extrapolation_bench(tmp_path, data_dir):
    """``--methods e2t_gp`` trains the seed's E2T ensemble it needs (its prior mean) and scores only itself."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["bench", "extrapolation", "--dataset", "hoip", "--holdout", "Ge-F", "--seeds", "1",
                                      "--methods", "e2t_gp", "--json", str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert list(report["methods"]) == ["e2t_gp"] and np.isfinite(report["methods"]["e2t_gp"]["r2"]).all()
    assert -1.0 <= report["methods"]["e2t_gp"]["spearman"][0] <= 1.0


@pytest.mark.parametrize("args,message", [
    (["--holdout", "Ge-At"], "no element domain 'Ge-At'"),
    (["--holdout", "Ge-F", "--target", "band_gap"], "no target 'band_gap'"),
    (["--holdout", "Ge-F", "--config", "/nonexistent.yaml"], "does not exist"),
    (["--holdout", "Ge-F", "--methods", "e2t,svm"], "unknown methods ['svm']"),
])
def test_bench_bad_arguments_fail_clearly(args, message, data_dir):
    result = CliRunner().invoke(app, ["bench", "extrapolation", "--dataset", "hoip", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_bench_discovery_refuses_a_third_worker_clearly(tmp_path):
    result = CliRunner().invoke(app, ["bench", "discovery", "--dataset", "hoip", "--holdout", "Ge-F", "--seeds", "1",
                                      "--strategies", "random", "--workers", "3", "--json", str(tmp_path / "out.json")])
    assert result.exit_code == 2 and "--workers is 1" in result.output
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("args, message", [
    (["discovery", "--dataset", "hoip", "--holdout", "Ge-F", "--seeds", "1", "--strategies", "random",
      "--source-fraction", "1.5"], "--source-fraction must lie in (0, 1]"),
    (["discovery", "--dataset", "hoip", "--holdout", "Ge-F", "--seeds", "1", "--strategies", "e2t-best"],
     "unknown strategies ['e2t-best']"),
    (["discovery", "--dataset", "hoip", "--holdout", "Ge-F", "--seeds", "1", "--objective", "target:2:1"],
     "LOW ≤ HIGH"),
    (["discovery-suite", "--scenarios", "hoip-nowhere", "--seeds", "1"], "unknown scenarios ['hoip-nowhere']"),
    (["adaptation", "--dataset", "hoip", "--holdout", "Ge-F", "--methods", "instant,oracle"], "unknown methods ['oracle']"),
])
def test_discovery_and_adaptation_options_fail_clearly(args, message, data_dir, tmp_path):
    result = CliRunner().invoke(app, ["bench", *args, "--json", str(tmp_path / "out.json")])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert not (tmp_path / "out.json").exists()


def test_leave_one_domain_out_writes_every_domain_and_resumes(tmp_path, data_dir):
    """`--holdout all`: one record per domain with every score per seed, the table and plot; a stopped run (a domain
    missing from the JSON) reruns only the missing domain and keeps the finished one as it was."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "holdout_all": ["Ge-F", "Pb-I"]}))
    out = tmp_path / "lodo.json"
    args = ["bench", "extrapolation", "--dataset", "hoip", "--holdout", "all", "--seeds", "1", "--json", str(out),
            "--config", str(config), "--methods", "e2t_ensemble,nn_ensemble,nn_ridge,ridge,gp"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert list(report["domains"]) == ["Ge-F", "Pb-I"] and report["seed_values"] == [0]
    for record in report["domains"].values():
        assert set(record["methods"]) == {"e2t_ensemble", "nn_ensemble", "nn_ridge", "ridge", "gp"}
        assert all(len(record["methods"][m][s]) == 1 for m in record["methods"] for s in ("r2", "rmse", "mae", "spearman", "best_rank"))
        assert 0.0 <= record["calibration"]["coverage_90"] <= 1.0 and record["level_gap"] > 0
    assert report["domains"]["Ge-F"]["n_test"] == 97 and report["domains"]["Pb-I"]["n_test"] == 117
    vs = report["summary"]["e2t_vs_best_baseline"]
    assert vs["domains"] == 2 and vs["ahead"] + vs["behind"] == 2
    assert "against the best baseline" in result.output and (tmp_path / "lodo.png").stat().st_size > 10_000

    kept = report["domains"]["Ge-F"]
    del report["domains"]["Pb-I"]  # as if stopped after the first domain
    del report["config"]["ensemble"]["model"]["episodes"]["same_fraction"]  # by a version without that field
    out.write_text(json.dumps(report))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 already in the report" in " ".join(result.output.split())
    again = json.loads(out.read_text())
    assert again["domains"]["Ge-F"] == kept and list(again["domains"]) == ["Ge-F", "Pb-I"]
    assert again["environments"] == [environment()]  # the report records the package versions, once

    result = CliRunner().invoke(app, [*args[:7], "2", *args[8:]])  # other seeds: refused, nothing overwritten
    assert result.exit_code == 2 and "other seed_values" in result.output
    assert json.loads(out.read_text()) == again


def test_leave_one_domain_out_runs_of_other_seeds_merge_into_the_two_seed_report(tmp_path, data_dir):
    """Seeds run in parts (one process each) and merged give the scores and calibration of one two-seed run;
    overlapping seeds or another config are refused."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "holdout_all": ["Ge-F", "Pb-I"]}))

    def run(first_seed: int, seeds: int, name: str) -> dict:
        out = tmp_path / name
        result = CliRunner().invoke(app, ["bench", "extrapolation", "--dataset", "hoip", "--holdout", "all", "--seeds", str(seeds),
                                          "--first-seed", str(first_seed), "--json", str(out), "--config", str(config),
                                          "--methods", "e2t_ensemble,nn_ensemble,ridge"])
        assert result.exit_code == 0, result.output
        return json.loads(out.read_text())

    both = run(0, 2, "both.json")
    run(1, 1, "seed1.json")
    run(0, 1, "seed0.json")
    older = json.loads((tmp_path / "seed1.json").read_text())  # written before a config field existed (at its default)
    del older["config"]["ensemble"]["model"]["episodes"]["same_fraction"]
    (tmp_path / "seed1.json").write_text(json.dumps(older))

    def merge(first: str, second: str, out: str):
        return CliRunner().invoke(app, ["bench", "extrapolation-merge", str(tmp_path / first), str(tmp_path / second),
                                        "--json", str(tmp_path / out)])

    merged_path = tmp_path / "merged.json"
    result = merge("seed1.json", "seed0.json", "merged.json")
    assert result.exit_code == 0, result.output
    merged = json.loads(merged_path.read_text())
    assert merged["seed_values"] == [0, 1] and list(merged["domains"]) == ["Ge-F", "Pb-I"]
    for domain, record in both["domains"].items():
        got = merged["domains"][domain]
        for method, scores in record["methods"].items():
            for score, values in scores.items():
                assert got["methods"][method][score] == pytest.approx(values, rel=1e-6, nan_ok=True), (domain, method, score)
        assert got["calibration"]["coverage_90"] == pytest.approx(record["calibration"]["coverage_90"])
    assert merged["summary"]["methods"]["e2t_ensemble"]["r2_mean_over_domains"] == pytest.approx(
        both["summary"]["methods"]["e2t_ensemble"]["r2_mean_over_domains"])
    assert (tmp_path / "merged.png").stat().st_size > 10_000 and "merged 2 reports" in result.output
    assert merged["environments"] == [environment()]  # every part ran here

    result = merge("both.json", "seed0.json", "bad.json")
    assert result.exit_code == 2 and "share seeds" in result.output and not (tmp_path / "bad.json").exists()
    older["config"]["ensemble"]["model"]["episodes"]["same_fraction"] = 0.5  # other settings: refused
    (tmp_path / "seed1.json").write_text(json.dumps(older))
    result = merge("seed1.json", "seed0.json", "bad.json")
    assert result.exit_code == 2 and "differs" in result.output and "config" in result.output


def test_holdout_all_names_every_domain_of_each_data_set(hoip, polymers, mp):
    """HOIP: its 12 B-metal x halide domains; polymers: the classes with 30+ members (Cp labelled or not, the
    class sizes of the data set); mp: the elements the config lists."""
    from e2t_al.bench.extrapolation import holdout_domains
    from e2t_al.config import ExtrapolationBenchConfig, load_config
    from e2t_al.data.paths import PROJECT_ROOT

    def config(name):
        return load_config(PROJECT_ROOT / "configs" / f"extrapolation_{name}.yaml", ExtrapolationBenchConfig)

    assert sorted(holdout_domains(config("hoip"), hoip)) == sorted(f"{b}-{x}" for b in ("Ge", "Sn", "Pb") for x in ("F", "Cl", "Br", "I"))
    classes = holdout_domains(config("polymers"), polymers)
    assert classes[0] == "13" and all(polymers.in_domain(c).sum() >= 30 for c in classes)
    assert len(classes) == sum(polymers.in_domain(c).sum() >= 30 for c in polymers.all_domain_keys())
    assert holdout_domains(config("mp"), mp) == config("mp").holdout_all
    with pytest.raises(DataError, match="no element domain 'Xx'"):
        holdout_domains(config("mp").model_copy(update={"holdout_all": ["Xx"]}), mp)


def test_the_environment_records_the_cpu_kernels_and_what_forces_them(monkeypatch):
    import torch

    from e2t_al.bench import joined_environments

    monkeypatch.delenv("MKL_CBWR", raising=False)  # whatever the caller's shell sets
    here = environment()
    assert here["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert "blas_architecture" in here and "MKL_CBWR" not in here
    monkeypatch.setenv("MKL_CBWR", "AVX2")  # MKL held to AVX2 kernels: another environment, which a merge keeps apart
    forced = environment()
    assert forced["MKL_CBWR"] == "AVX2"
    assert joined_environments({"environments": [here]}, {"environments": [forced]}) == [here, forced]
