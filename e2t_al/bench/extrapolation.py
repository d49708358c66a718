"""``e2t-al bench extrapolation``: train outside a held-out element domain, test inside it.

``--holdout DOMAIN`` runs one domain; ``--holdout all`` runs leave-one-domain-out over every domain of the data set
(``holdout_domains``) and writes ``domains.<name>.methods.<method>.{r2, rmse, mae, spearman, best_rank}`` per seed,
with the ensemble's calibration per domain. The JSON is written after each domain, and a run given the same
``--json`` keeps the domains already in it (resumable).

Methods (``METHODS``): ``e2t_ensemble`` and its first member ``e2t``; the fair baselines (``BASELINES``): ``nn`` (the
same encoder by plain regression), ``nn_ensemble`` (as many such networks as E2T members, averaged; ``nn`` is its
first), ``nn_ridge`` (a ridge head on ``nn``'s frozen embedding, the paper's MPNN-Linear style), ``ridge`` on the
descriptors, ``gp`` (BoTorch ``SingleTaskGP`` on the descriptors); ``e2t_gp``, the discovery loop's E2T-informed GP
(``e2t_al.acquisition.e2t_gp``: the ensemble's level for each domain as prior mean, a GP on the descriptors for the
residuals, fitted on the training rows; descriptor encoders only); and ``oracle`` (E2T trained with part of the
held-out domain, tested on the rest: what seeing the domain is worth). ``ridge`` and ``gp`` do not depend on the
seed: they are fitted once per domain and their scores repeated per seed.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from botorch.exceptions import InputDataWarning
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from e2t_al.acquisition.batch import pool_predictions
from e2t_al.acquisition.models import fit_gp, mean_imputed
from e2t_al.acquisition.surrogates import e2t_surrogate
from e2t_al.bench import environment, joined_environments, seed_range
from e2t_al.bench.metrics import calibration_metrics, regression_metrics
from e2t_al.bench.plots import domain_r2_plot, parity_plot
from e2t_al.config import AcquisitionConfig, ExtrapolationBenchConfig
from e2t_al.data import DataError, MaterialsDataset, load_dataset
from e2t_al.features import describe
from e2t_al.model.baselines import RegressionNN, RidgeOnEmbedding, ridge_on_descriptors
from e2t_al.model.e2t import E2TRegressor
from e2t_al.model.ensemble import SEED_STRIDE, E2TEnsemble
from e2t_al.model.inputs import MaterialInputs, build_inputs, subset_inputs

METHODS = ("e2t", "e2t_ensemble", "e2t_gp", "nn", "nn_ensemble", "nn_ridge", "ridge", "gp", "oracle")
BASELINES = ("nn", "nn_ensemble", "nn_ridge", "ridge", "gp")
E2T_METHODS = ("e2t", "e2t_ensemble", "e2t_gp")  # the methods that need the seed's E2T ensemble
SCORES = ("r2", "rmse", "mae", "spearman", "best_rank")
ALL = "all"


@dataclass
class BenchData:
    """A data set prepared once for every hold-out: model inputs, descriptors (ridge, GP), targets ``y (n,)``."""

    dataset: MaterialsDataset
    inputs: MaterialInputs
    descriptors: np.ndarray
    y: np.ndarray
    unit: str


def load_bench_data(config: ExtrapolationBenchConfig) -> BenchData:
    dataset = load_dataset(config.dataset, config.data_dir).labelled(config.target)
    encoder = config.ensemble.model.encoder
    inputs = build_inputs(dataset, encoder, progress=True)
    descriptors, _ = describe(dataset, config.ridge_descriptors or encoder.descriptors)
    return BenchData(dataset, inputs, descriptors, dataset.target(config.target), dataset.units.get(config.target, ""))


def holdout_domains(config: ExtrapolationBenchConfig, dataset: MaterialsDataset) -> list[str]:
    """The domains ``--holdout all`` leaves out one at a time: the config's ``holdout_all``, else every domain key
    with at least ``min_domain_size`` materials, largest first."""
    if config.holdout_all is not None:
        for key in config.holdout_all:
            dataset.in_domain(key)  # a clear error for a key the data set does not have
        return list(config.holdout_all)
    sizes = {key: int(dataset.in_domain(key).sum()) for key in dataset.all_domain_keys()}
    domains = sorted((k for k, n in sizes.items() if n >= config.min_domain_size), key=lambda k: (-sizes[k], k))
    if not domains:
        raise DataError(f"{config.dataset} has no domain with {config.min_domain_size}+ materials; set holdout_all in the config")
    return domains


def check_methods(methods: tuple[str, ...], config: ExtrapolationBenchConfig) -> tuple[str, ...]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise DataError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    if "e2t_gp" in methods and config.ensemble.model.encoder.kind != "descriptor_mlp":
        if methods != METHODS:
            raise DataError("method e2t_gp needs a descriptor_mlp encoder (its GP works on the descriptors)")
        methods = tuple(m for m in methods if m != "e2t_gp")  # the default list: left out for graph encoders
    return tuple(m for m in METHODS if m in methods)


def network_count(config: ExtrapolationBenchConfig, methods: tuple[str, ...]) -> int:
    """Plain-regression networks per seed: as many as E2T members for ``nn_ensemble``, else one for ``nn``/``nn_ridge``."""
    return config.ensemble.members if "nn_ensemble" in methods else int(bool({"nn", "nn_ridge"} & set(methods)))


def trainings_per_seed(config: ExtrapolationBenchConfig, methods: tuple[str, ...]) -> int:
    e2t = config.ensemble.members if set(E2T_METHODS) & set(methods) else 0
    return e2t + network_count(config, methods) + int("oracle" in methods)


def evaluate_holdout(config: ExtrapolationBenchConfig, data: BenchData, holdout: str, seed_values: list[int],
                     methods: tuple[str, ...], bar: Progress, task) -> tuple[dict, dict]:
    """Every method on one held-out domain for each seed: the record (``n_train``, ``n_test``, ``methods.<m>.<score>``
    lists over seeds, ``calibration`` of the E2T ensemble, ``timing``) and the first seed's predictions (plots)."""
    test = data.dataset.in_domain(holdout)
    train_index, test_index = np.flatnonzero(~test), np.flatnonzero(test)
    if len(train_index) < 10 or len(test_index) < 4:
        raise DataError(f"hold-out {holdout!r} leaves {len(train_index)} training and {len(test_index)} test materials; too few")
    inputs, y, keys = data.inputs, data.y, data.dataset.domain_keys
    train_inputs, test_inputs = subset_inputs(inputs, train_index), subset_inputs(inputs, test_index)
    y_train, y_test = y[train_index], y[test_index]
    train_keys = [keys[i] for i in train_index]
    members = config.ensemble.members

    fixed = {}  # seed-independent methods, fitted once
    if "ridge" in methods:
        fixed["ridge"] = ridge_on_descriptors(config.ridge_alphas).fit(data.descriptors[train_index], y_train).predict(data.descriptors[test_index])
    if "gp" in methods:
        bar.update(task, description=f"{holdout}: GP on descriptors")
        X = torch.as_tensor(mean_imputed(data.descriptors))
        with warnings.catch_warnings():  # scaled to the training rows' range: the held-out domain may lie outside it
            warnings.simplefilter("ignore", InputDataWarning)
            gp = fit_gp(X[torch.as_tensor(train_index)], torch.as_tensor(y_train))
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", InputDataWarning)
            fixed["gp"] = gp.posterior(X[torch.as_tensor(test_index)]).mean.squeeze(-1).numpy()

    scores = {m: {s: [] for s in SCORES} for m in methods}
    calibration, member_seconds, first_run = [], [], {}
    for run, seed in enumerate(seed_values, start=1):
        where = f"{holdout}, seed {run}/{len(seed_values)}"
        predictions, std = dict(fixed), None
        if set(E2T_METHODS) & set(methods):
            ensemble = E2TEnsemble(config.ensemble, base_seed=seed)
            for k in range(members):
                bar.update(task, description=f"{where}: E2T member {k + 1}/{members}")
                start = time.perf_counter()
                ensemble.members.append(E2TRegressor(ensemble.member_config(k)).fit(train_inputs, y_train, train_keys, progress=False))
                member_seconds.append(time.perf_counter() - start)
                bar.advance(task)
            member_predictions, member_stds = ensemble.member_intervals(test_inputs, train_inputs, y_train)
            mean, std = ensemble.moments(member_predictions, member_stds)
            predictions.update(e2t=member_predictions[0], e2t_ensemble=mean)
            by_interval = {kind: calibration_metrics(y_test, *ensemble.moments(member_predictions, member_stds, kind))
                           for kind in ("validation_floor", "head", "head_quantile")}  # every kind, same predictions
            calibration.append({**calibration_metrics(y_test, mean, std), "interval": config.ensemble.interval,
                                "by_interval": by_interval,
                                "member_validation_rmse": [m.validation_rmse_ for m in ensemble.members]})
            if "e2t_gp" in methods:
                bar.update(task, description=f"{where}: E2T-informed GP")
                predictions["e2t_gp"] = e2t_gp_predictions(ensemble, data, train_index, test_index)
        n_networks, networks = network_count(config, methods), []
        for k in range(n_networks):
            bar.update(task, description=f"{where}: plain-regression NN {k + 1}/{n_networks}")
            nn_config = config.ensemble.model.model_copy(deep=True)
            nn_config.training.seed = seed + k * SEED_STRIDE  # the E2T members' seeds
            networks.append(RegressionNN(nn_config).fit(train_inputs, y_train, progress=False))
            bar.advance(task)
        if networks:
            predictions["nn"] = networks[0].predict(test_inputs)
            predictions["nn_ensemble"] = np.mean([n.predict(test_inputs) for n in networks], axis=0)
            predictions["nn_ridge"] = RidgeOnEmbedding(networks[0], config.ridge_alphas).fit(train_inputs, y_train).predict(test_inputs)
        for method in methods:
            if method != "oracle":
                _append(scores[method], regression_metrics(y_test, predictions[method]))
        oracle = None
        if "oracle" in methods:
            bar.update(task, description=f"{where}: oracle")
            oracle_seen, oracle_test = _split(test_index, config.oracle_fraction, seed)
            oracle_train = np.concatenate([train_index, oracle_seen])
            oracle_inputs = subset_inputs(inputs, oracle_train)
            model = E2TRegressor(E2TEnsemble(config.ensemble, base_seed=seed).member_config(0))
            model.fit(oracle_inputs, y[oracle_train], [keys[i] for i in oracle_train], progress=False)
            oracle = (y[oracle_test], model.predict(subset_inputs(inputs, oracle_test), oracle_inputs, y[oracle_train]))
            _append(scores["oracle"], regression_metrics(*oracle))
            bar.advance(task)
        if run == 1:
            first_run = {"y_test": y_test, "predictions": {m: predictions[m] for m in methods if m in predictions},
                         "std": std, "oracle": oracle}

    record = {"n_train": int(len(train_index)), "n_test": int(len(test_index)), "seed_values": list(seed_values),
              "level_gap": level_gap(y, test), "methods": scores}
    if calibration:
        record["calibration"] = {"coverage_90": float(np.mean([c["coverage_90"] for c in calibration])),
                                 "nll": float(np.mean([c["nll"] for c in calibration])), "per_seed": calibration}
    if member_seconds:
        record["timing"] = {"member_fit_seconds": member_seconds, "mean_member_fit_seconds": float(np.mean(member_seconds))}
    return record, first_run


def e2t_gp_predictions(ensemble: E2TEnsemble, data: BenchData, train_index: np.ndarray, test_index: np.ndarray) -> np.ndarray:
    """The E2T-informed GP's posterior mean on the held-out rows, built as the discovery loop builds it
    (``e2t_surrogate`` with the default acquisition settings) with the training rows as the measurements and the
    held-out domain as the campaign's scope: zero-shot, the held-out domain's mean is E2T's level for it plus what the
    residual kernel carries over from similar materials of the other domains."""
    measured = np.zeros(len(data.y), dtype=bool)
    measured[train_index] = True
    in_scope = np.zeros(len(data.y), dtype=bool)
    in_scope[test_index] = True
    with warnings.catch_warnings():  # the held-out rows may lie outside the training rows' descriptor range
        warnings.simplefilter("ignore", InputDataWarning)
        surrogate = e2t_surrogate(AcquisitionConfig(surrogate="e2t_gp"), ensemble, data.inputs.x.numpy(), measured,
                                  data.y[train_index], np.asarray(data.dataset.domains), in_scope=in_scope)
        mean, _ = pool_predictions(surrogate.model, surrogate.pool_X[torch.as_tensor(test_index)])
    return mean


def level_gap(y: np.ndarray, in_domain: np.ndarray) -> float:
    """How far a domain's mean lies outside the others: |mean(y in it) − mean(y outside)| / sd(y outside)."""
    outside = y[~in_domain]
    return float(abs(y[in_domain].mean() - outside.mean()) / max(outside.std(), 1e-12))


def run_extrapolation(config: ExtrapolationBenchConfig, holdout: str, seeds: int, json_path: Path | None = None,
                      plot_path: Path | None = None, console: Console | None = None, first_seed: int = 0,
                      methods: tuple[str, ...] = METHODS) -> dict:
    """One held-out domain (or ``all``: ``run_leave_one_domain_out``), seeds ``first_seed`` … ``first_seed + seeds − 1``.
    A later ``first_seed`` checks settings chosen on the default seeds on fresh ones."""
    if holdout == ALL:
        return run_leave_one_domain_out(config, seeds, json_path, plot_path, console, first_seed, methods)
    console = console or Console()
    methods = check_methods(methods, config)
    seed_values = seed_range(seeds, first_seed)
    data = load_bench_data(config)
    test = data.dataset.in_domain(holdout)
    console.print(f"[bold]{config.dataset}[/] target [bold]{config.target}[/], hold-out [bold]{holdout}[/]: "
                  f"{int((~test).sum())} training, {int(test.sum())} test materials")
    with _progress(console) as bar:
        task = bar.add_task("starting", total=seeds * trainings_per_seed(config, methods))
        record, first_run = evaluate_holdout(config, data, holdout, seed_values, methods, bar, task)

    report = {"dataset": config.dataset, "target": config.target, "unit": data.unit, "holdout": holdout,
              "seeds": seeds, **record, "config": config.model_dump(mode="json"), "environments": [environment()]}
    console.print(results_table(report))
    if "calibration" in report:
        console.print(f"ensemble 90% interval covers {report['calibration']['coverage_90']:.1%} of held-out values; "
                      f"NLL {report['calibration']['nll']:.3f}; one member trains in {report['timing']['mean_member_fit_seconds']:.1f} s")
    if json_path is not None:
        plot_path = plot_path or json_path.with_suffix(".png")
    if plot_path is not None and first_run["oracle"] is not None and first_run["std"] is not None:
        parity_plot(first_run["y_test"], first_run["predictions"], first_run["std"], first_run["oracle"],
                    title=f"{config.dataset} {config.target}, held-out {holdout} (seed {first_seed})", unit=report["unit"], path=plot_path)
        report["plot"] = str(plot_path)
        console.print(f"parity plot: {plot_path}")
    if json_path is not None:
        _write(json_path, report)
        console.print(f"report: {json_path}")
    return report


LODO_CONFIG_EXCLUDE = {"holdout_all", "min_domain_size", "tuned_on"}  # not settings of the runs themselves


def comparable_config(stored: dict | None) -> dict | None:
    """A report's config with today's defaults filled in: a field added since a report was written, at its default,
    does not make the same settings look different (resume, merge). A config that no longer validates is compared
    as written."""
    try:
        return ExtrapolationBenchConfig.model_validate(stored).model_dump(mode="json", exclude=LODO_CONFIG_EXCLUDE)
    except ValidationError:
        return stored


def run_leave_one_domain_out(config: ExtrapolationBenchConfig, seeds: int, json_path: Path | None, plot_path: Path | None,
                             console: Console | None, first_seed: int, methods: tuple[str, ...]) -> dict:
    """Leave-one-domain-out over ``holdout_domains``: one record per domain under ``domains``, the JSON rewritten after
    each; domains already in ``json_path`` (same data set, target, seeds, config and methods) are kept, not rerun."""
    console = console or Console()
    methods = check_methods(methods, config)
    seed_values = seed_range(seeds, first_seed)
    data = load_bench_data(config)
    domains = holdout_domains(config, data.dataset)
    settings = {"dataset": config.dataset, "target": config.target, "unit": data.unit, "holdout": ALL,
                "seed_values": seed_values, "methods": list(methods),
                "config": config.model_dump(mode="json", exclude=LODO_CONFIG_EXCLUDE)}
    report = {**settings, "domain_list": domains, "tuned_on": list(config.tuned_on), "domains": {},
              "environments": [environment()]}  # and those of a resumed run's earlier domains
    if json_path is not None and json_path.exists():
        previous = json.loads(json_path.read_text())
        previous["config"] = comparable_config(previous.get("config"))
        differs = [k for k in settings if previous.get(k) != settings[k]]
        if differs:
            raise DataError(f"{json_path} holds a leave-one-domain-out run with other {', '.join(differs)}; "
                            "give another --json to start a new run")
        report["domains"] = {d: r for d, r in previous.get("domains", {}).items() if d in domains}
        report["environments"] = joined_environments(previous, report)
    todo = [d for d in domains if d not in report["domains"]]
    console.print(f"[bold]{config.dataset}[/] target [bold]{config.target}[/]: leave-one-domain-out over {len(domains)} "
                  f"domains ({len(domains) - len(todo)} already in the report), seeds {seed_values}")
    with _progress(console) as bar:
        task = bar.add_task("starting", total=len(todo) * len(seed_values) * trainings_per_seed(config, methods))
        for domain in todo:
            report["domains"][domain], _ = evaluate_holdout(config, data, domain, seed_values, methods, bar, task)
            report["domains"] = {d: report["domains"][d] for d in domains if d in report["domains"]}
            report["summary"] = summarise(report)
            if json_path is not None:
                _write(json_path, report)
    report["summary"] = summarise(report)
    console.print(domains_table(report))
    s = report["summary"]["e2t_vs_best_baseline"]
    if s:
        console.print(f"e2t_ensemble against the best baseline of each domain: ahead on {s['ahead']}, behind on "
                      f"{s['behind']} of {s['domains']} domains; mean R² difference {s['mean_r2_difference']:+.3f}")
    if json_path is not None:
        plot_path = plot_path or json_path.with_suffix(".png")
    if plot_path is not None:
        domain_r2_plot(report, plot_path)
        report["plot"] = str(plot_path)
        console.print(f"per-domain plot: {plot_path}")
    if json_path is not None:
        _write(json_path, report)
        console.print(f"report: {json_path}")
    return report


def merge_leave_one_domain_out(paths: list[Path], json_path: Path, plot_path: Path | None = None,
                               console: Console | None = None) -> dict:
    """One report from leave-one-domain-out runs of other seeds (``--first-seed``, e.g. one per core): the same data
    set, target and config, disjoint seeds. Per domain the per-seed lists are joined in seed order and the
    calibration recomputed; only the methods and domains that every run has are kept, and the report says which
    domains were left out."""
    console = console or Console()
    runs = [json.loads(Path(p).read_text()) for p in paths]
    if len(runs) < 2:
        raise DataError("give two or more leave-one-domain-out reports to merge")
    if any(run.get("holdout") != ALL for run in runs):
        raise DataError("only --holdout all reports can be merged")
    keys = ("dataset", "target", "unit", "config")
    for run in runs:
        run["config"] = comparable_config(run.get("config"))
    for path, run in zip(paths[1:], runs[1:]):
        differs = [k for k in keys if run.get(k) != runs[0].get(k)]
        if differs:
            raise DataError(f"{path} differs from {paths[0]} in {', '.join(differs)}")
    seeds = [s for run in runs for s in run["seed_values"]]
    if len(set(seeds)) != len(seeds):
        raise DataError(f"the reports share seeds ({sorted(seeds)}); merge runs of different seeds")
    domains = [d for d in runs[0]["domain_list"] if all(d in run["domains"] for run in runs)]
    missing = sorted({d for run in runs for d in run["domain_list"]} - set(domains))
    order = np.argsort(seeds, kind="stable")
    methods = [m for m in METHODS if all(m in run["methods"] for run in runs)]
    if not methods:
        raise DataError("the reports have no method in common")
    report = {k: runs[0][k] for k in (*keys, "holdout")}
    report["methods"] = methods
    report.update(seed_values=sorted(seeds), domain_list=domains, tuned_on=runs[0].get("tuned_on", []),
                  merged_from=[str(p) for p in paths], left_out_domains=missing, domains={},
                  environments=joined_environments(*runs))
    for domain in domains:
        records = [run["domains"][domain] for run in runs]
        merged = {k: records[0][k] for k in ("n_train", "n_test", "level_gap")}
        merged["seed_values"] = sorted(seeds)
        merged["methods"] = {m: {score: [v for r in records for v in r["methods"][m][score]] for score in records[0]["methods"][m]}
                             for m in methods}
        for scores in merged["methods"].values():
            for score, values in scores.items():
                scores[score] = [values[i] for i in order]
        if all("calibration" in r for r in records):
            per_seed = [c for r in records for c in r["calibration"]["per_seed"]]
            per_seed = [per_seed[i] for i in order]
            merged["calibration"] = {"coverage_90": float(np.mean([c["coverage_90"] for c in per_seed])),
                                     "nll": float(np.mean([c["nll"] for c in per_seed])), "per_seed": per_seed}
        if all("timing" in r for r in records):
            seconds = [t for r in records for t in r["timing"]["member_fit_seconds"]]
            merged["timing"] = {"member_fit_seconds": seconds, "mean_member_fit_seconds": float(np.mean(seconds))}
        report["domains"][domain] = merged
    report["summary"] = summarise(report)
    console.print(f"merged {len(runs)} reports: seeds {report['seed_values']}, {len(domains)} domains"
                  + (f" (left out, not in every report: {', '.join(missing)})" if missing else ""))
    console.print(domains_table(report))
    plot_path = plot_path or json_path.with_suffix(".png")
    domain_r2_plot(report, plot_path)
    report["plot"] = str(plot_path)
    _write(json_path, report)
    console.print(f"per-domain plot: {plot_path}\nreport: {json_path}")
    return report


def summarise(report: dict) -> dict:
    """Mean over domains of each method's mean R² and Spearman ρ; and per domain, E2T ensemble against the best
    baseline there (by mean R²)."""
    domains = report["domains"]
    means = {d: {m: float(np.mean(r["methods"][m]["r2"])) for m in r["methods"]} for d, r in domains.items()}
    summary = {"methods": {}, "e2t_vs_best_baseline": {}}
    tuned = set(report.get("tuned_on", []))
    for method in report["methods"]:
        r2 = [means[d][method] for d in domains if method in means[d]]
        untuned = [means[d][method] for d in domains if method in means[d] and d not in tuned]
        rho = [float(np.nanmean(r["methods"][method]["spearman"])) for r in domains.values() if method in r["methods"]]
        summary["methods"][method] = {"r2_mean_over_domains": float(np.mean(r2)) if r2 else None,
                                      "r2_mean_over_untuned_domains": float(np.mean(untuned)) if untuned else None,
                                      "spearman_mean_over_domains": float(np.nanmean(rho)) if rho else None}
    rows = []
    for domain, m in means.items():
        baselines = {b: m[b] for b in BASELINES if b in m}
        if "e2t_ensemble" in m and baselines:
            best = max(baselines, key=baselines.get)
            rows.append({"domain": domain, "best_baseline": best, "difference": m["e2t_ensemble"] - baselines[best]})
    if rows:
        summary["e2t_vs_best_baseline"] = {
            "domains": len(rows), "ahead": sum(r["difference"] > 0 for r in rows), "behind": sum(r["difference"] < 0 for r in rows),
            "mean_r2_difference": float(np.mean([r["difference"] for r in rows])), "per_domain": rows}
    return summary


def domains_table(report: dict) -> Table:
    methods = report["methods"]
    table = Table(title=f"{report['dataset']} {report['target']}: leave-one-domain-out, mean R² over seeds "
                        f"{report['seed_values']} (gap: how far the domain's mean lies outside the others, in sd; "
                        "* the settings were chosen on this domain)")
    for column in ("domain", "gap", *methods, "best baseline", "E2T ens − best", "90% cover"):
        table.add_column(column, justify="left" if column == "domain" else "right", no_wrap=True)
    best = {r["domain"]: r for r in report["summary"].get("e2t_vs_best_baseline", {}).get("per_domain", [])}
    for domain, record in sorted(report["domains"].items(), key=lambda item: item[1]["level_gap"]):
        row = best.get(domain)
        cover = record.get("calibration", {}).get("coverage_90")
        mark = "*" if domain in report.get("tuned_on", []) else ""
        table.add_row(domain + mark, f"{record['level_gap']:.2f}", *(f"{np.mean(record['methods'][m]['r2']):.3f}" for m in methods),
                      row["best_baseline"] if row else "-", f"{row['difference']:+.3f}" if row else "-",
                      f"{cover:.0%}" if cover is not None else "-")
    summary = report["summary"]["methods"]
    table.add_row("[bold]mean over domains[/]", "", *(f"[bold]{summary[m]['r2_mean_over_domains']:.3f}[/]" for m in methods),
                  "", f"{report['summary']['e2t_vs_best_baseline'].get('mean_r2_difference', float('nan')):+.3f}", "")
    if set(report.get("tuned_on", [])) & set(report["domains"]) and len(report["domains"]) > 1:
        table.add_row("[bold]mean without *[/]", "", *(f"{summary[m]['r2_mean_over_untuned_domains']:.3f}" for m in methods), "", "", "")
    return table


def results_table(report: dict) -> Table:
    table = Table(title=f"{report['dataset']} {report['target']} — held-out {report['holdout']} ({report['seeds']} seeds, mean ± sd)")
    for column in ("method", "R²", f"RMSE ({report['unit']})", f"MAE ({report['unit']})", "ρ", "best at"):
        table.add_column(column, justify="right" if column != "method" else "left", no_wrap=True)
    for method, values in report["methods"].items():  # ρ: Spearman, mean; best at: the true best's predicted rank, median
        table.add_row(method, *(f"{np.mean(values[m]):.3f}±{np.std(values[m]):.3f}" for m in ("r2", "rmse", "mae")),
                      f"{np.nanmean(values['spearman']):.2f}", f"{np.median(values['best_rank']):.0f}")
    return table


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} trainings"),
                    TimeElapsedColumn(), console=console)


def _write(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))


def _split(index: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(index)
    n_seen = int(round(len(order) * fraction))
    return order[:n_seen], order[n_seen:]


def _append(store: dict[str, list[float]], metrics: dict[str, float]) -> None:
    for name, value in metrics.items():
        store[name].append(value)
