"""``e2t-al bench extrapolation``: train outside a held-out element domain, test inside it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from e2t_al.bench import seed_range
from e2t_al.bench.metrics import calibration_metrics, regression_metrics
from e2t_al.bench.plots import parity_plot
from e2t_al.config import ExtrapolationBenchConfig
from e2t_al.data import DataError, load_dataset
from e2t_al.features import describe
from e2t_al.model.baselines import RegressionNN, ridge_on_descriptors
from e2t_al.model.e2t import E2TRegressor
from e2t_al.model.ensemble import E2TEnsemble
from e2t_al.model.inputs import build_inputs, subset_inputs

METHODS = ("e2t", "e2t_ensemble", "nn", "ridge", "oracle")


def run_extrapolation(config: ExtrapolationBenchConfig, holdout: str, seeds: int, json_path: Path | None = None,
                      plot_path: Path | None = None, console: Console | None = None, first_seed: int = 0) -> dict:
    """Per seed (``first_seed`` … ``first_seed + seeds − 1``): an E2T ensemble (its first member is ``e2t``), the
    plain-regression NN, ridge on descriptors, and the oracle (E2T trained with ``oracle_fraction`` of the held-out
    domain, tested on the rest). A later ``first_seed`` checks settings chosen on the default seeds on fresh ones."""
    console = console or Console()
    seed_values = seed_range(seeds, first_seed)
    dataset = load_dataset(config.dataset, config.data_dir).labelled(config.target)
    test = dataset.in_domain(holdout)
    train_index, test_index = np.flatnonzero(~test), np.flatnonzero(test)
    if len(train_index) < 10 or len(test_index) < 4:
        raise DataError(f"hold-out {holdout!r} leaves {len(train_index)} training and {len(test_index)} test materials; too few")
    console.print(f"[bold]{config.dataset}[/] target [bold]{config.target}[/], hold-out [bold]{holdout}[/]: "
                  f"{len(train_index)} training, {len(test_index)} test materials")

    encoder = config.ensemble.model.encoder
    inputs = build_inputs(dataset, encoder, progress=True)
    descriptors, _ = describe(dataset, config.ridge_descriptors or encoder.descriptors)
    y = dataset.target(config.target)
    keys = dataset.domain_keys
    train_inputs, test_inputs = subset_inputs(inputs, train_index), subset_inputs(inputs, test_index)
    y_train, y_test = y[train_index], y[test_index]
    train_keys = [keys[i] for i in train_index]

    scores = {m: {"r2": [], "rmse": [], "mae": [], "spearman": [], "best_rank": []} for m in METHODS}
    calibration, member_seconds, first_run = [], [], {}
    trainings_per_seed = config.ensemble.members + 2
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} trainings"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("starting", total=seeds * trainings_per_seed)
        for run, seed in enumerate(seed_values, start=1):
            ensemble = E2TEnsemble(config.ensemble, base_seed=seed)
            for k in range(config.ensemble.members):
                bar.update(task, description=f"seed {run}/{seeds}: E2T member {k + 1}/{config.ensemble.members}")
                start = time.perf_counter()
                ensemble.members.append(E2TRegressor(ensemble.member_config(k)).fit(train_inputs, y_train, train_keys, progress=False))
                member_seconds.append(time.perf_counter() - start)
                bar.advance(task)
            members = ensemble.member_predictions(test_inputs, train_inputs, y_train)
            mean, std = ensemble.predict(test_inputs, train_inputs, y_train)
            predictions = {"e2t": members[0], "e2t_ensemble": mean}

            bar.update(task, description=f"seed {run}/{seeds}: plain-regression NN")
            nn_config = config.ensemble.model.model_copy(deep=True)
            nn_config.training.seed = seed
            predictions["nn"] = RegressionNN(nn_config).fit(train_inputs, y_train, progress=False).predict(test_inputs)
            bar.advance(task)
            ridge = ridge_on_descriptors(config.ridge_alphas).fit(descriptors[train_index], y_train)
            predictions["ridge"] = ridge.predict(descriptors[test_index])

            bar.update(task, description=f"seed {run}/{seeds}: oracle")
            oracle_seen, oracle_test = _split(test_index, config.oracle_fraction, seed)
            oracle_train = np.concatenate([train_index, oracle_seen])
            oracle_inputs = subset_inputs(inputs, oracle_train)
            oracle = E2TRegressor(ensemble.member_config(0)).fit(oracle_inputs, y[oracle_train], [keys[i] for i in oracle_train], progress=False)
            oracle_prediction = oracle.predict(subset_inputs(inputs, oracle_test), oracle_inputs, y[oracle_train])
            bar.advance(task)

            for method, prediction in predictions.items():
                _append(scores[method], regression_metrics(y_test, prediction))
            _append(scores["oracle"], regression_metrics(y[oracle_test], oracle_prediction))
            calibration.append(calibration_metrics(y_test, mean, std))
            if run == 1:
                first_run = {"predictions": predictions, "std": std, "oracle": (y[oracle_test], oracle_prediction)}

    report = {
        "dataset": config.dataset,
        "target": config.target,
        "unit": dataset.units.get(config.target, ""),
        "holdout": holdout,
        "n_train": int(len(train_index)),
        "n_test": int(len(test_index)),
        "seeds": seeds,
        "seed_values": seed_values,
        "methods": scores,
        "calibration": {
            "coverage_90": float(np.mean([c["coverage_90"] for c in calibration])),
            "nll": float(np.mean([c["nll"] for c in calibration])),
            "per_seed": calibration,
        },
        "timing": {"member_fit_seconds": member_seconds, "mean_member_fit_seconds": float(np.mean(member_seconds))},
        "config": config.model_dump(mode="json"),
    }
    console.print(results_table(report))
    console.print(f"ensemble 90% interval covers {report['calibration']['coverage_90']:.1%} of held-out values; "
                  f"NLL {report['calibration']['nll']:.3f}; one member trains in {report['timing']['mean_member_fit_seconds']:.1f} s")
    if json_path is not None:
        plot_path = plot_path or json_path.with_suffix(".png")
    if plot_path is not None:
        parity_plot(y_test, first_run["predictions"], first_run["std"], first_run["oracle"],
                    title=f"{config.dataset} {config.target}, held-out {holdout} (seed {first_seed})", unit=report["unit"], path=plot_path)
        report["plot"] = str(plot_path)
        console.print(f"parity plot: {plot_path}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2))
        console.print(f"report: {json_path}")
    return report


def results_table(report: dict) -> Table:
    table = Table(title=f"{report['dataset']} {report['target']} — held-out {report['holdout']} ({report['seeds']} seeds, mean ± sd)")
    for column in ("method", "R²", f"RMSE ({report['unit']})", f"MAE ({report['unit']})", "ρ", "best at"):
        table.add_column(column, justify="right" if column != "method" else "left", no_wrap=True)
    for method, values in report["methods"].items():  # ρ: Spearman, mean; best at: the true best's predicted rank, median
        table.add_row(method, *(f"{np.mean(values[m]):.3f}±{np.std(values[m]):.3f}" for m in ("r2", "rmse", "mae")),
                      f"{np.nanmean(values['spearman']):.2f}", f"{np.median(values['best_rank']):.0f}")
    return table


def _split(index: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(index)
    n_seen = int(round(len(order) * fraction))
    return order[:n_seen], order[n_seen:]


def _append(store: dict[str, list[float]], metrics: dict[str, float]) -> None:
    for name, value in metrics.items():
        store[name].append(value)
