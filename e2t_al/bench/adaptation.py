"""``e2t-al bench adaptation``: after k measurements from a held-out domain, how well is the rest predicted?

Per seed, an E2T ensemble is meta-trained outside the domain. For each k, k materials of the domain are
"measured" (drawn at random) and the rest of the domain is the test set:
- ``instant``: the k join the support set (no gradient step);
- ``finetune``: the ensemble fine-tuned on episodes mixing the old data and the k (``E2TEnsemble.fine_tune``);
- ``gp``: BoTorch ``SingleTaskGP`` on the same descriptors, trained on everything measured;
- ``e2t_gp``: the E2T-informed GP (``acquisition/e2t_gp.py``): the instant-update ensemble's domain level as its
  prior mean, fitted on the residuals of everything measured;
- ``scratch``: E2T members meta-trained from scratch on everything measured.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from e2t_al.acquisition.batch import pool_predictions  # noqa: E402
from e2t_al.acquisition.e2t_gp import domain_level, fit_e2t_gp, pool_inputs  # noqa: E402
from e2t_al.acquisition.models import E2TEnsembleModel, fit_gp, mean_imputed  # noqa: E402
from e2t_al.bench.metrics import regression_metrics  # noqa: E402
from e2t_al.config import AdaptationConfig, ExtrapolationBenchConfig  # noqa: E402
from e2t_al.data import DataError, load_dataset  # noqa: E402
from e2t_al.model.ensemble import E2TEnsemble  # noqa: E402
from e2t_al.model.inputs import DescriptorInputs, subset_inputs  # noqa: E402

METHODS = ("instant", "finetune", "gp", "e2t_gp", "scratch")


def run_adaptation(config: ExtrapolationBenchConfig, holdout: str, shots: list[int], seeds: int, adaptation: AdaptationConfig,
                   scratch_members: int | None = None, json_path: Path | None = None, console: Console | None = None,
                   methods: tuple[str, ...] = METHODS) -> dict:
    """``methods``: which of ``METHODS`` to run (``instant`` always runs: the others start from its ensemble)."""
    console = console or Console()
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise DataError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    methods = tuple(m for m in METHODS if m in methods or m == "instant")
    if config.ensemble.model.encoder.kind != "descriptor_mlp":
        raise DataError("bench adaptation uses the descriptor encoder (the GP baseline needs the same features)")
    dataset = load_dataset(config.dataset, config.data_dir).labelled(config.target)
    in_domain = dataset.in_domain(holdout)
    train, domain = np.flatnonzero(~in_domain), np.flatnonzero(in_domain)
    if max(shots) >= len(domain) - 3:
        raise DataError(f"{holdout} has {len(domain)} materials; at most {len(domain) - 4} shots leave a test set")
    from e2t_al.features import describe

    X, _ = describe(dataset, config.ensemble.model.encoder.descriptors, progress=True)
    y = dataset.target(config.target)
    keys = dataset.domain_keys
    inputs = DescriptorInputs(torch.as_tensor(X, dtype=torch.float32), [])
    gp_inputs = pool_inputs(mean_imputed(X), dataset.domains)
    results = {m: {str(k): {"r2": [], "rmse": []} for k in shots} for m in methods}
    seconds = {m: [] for m in methods}
    scratch_config = config.ensemble.model_copy(update={"members": scratch_members or config.ensemble.members})
    steps_per_seed = config.ensemble.members + len(shots) * (1 + (scratch_config.members if "scratch" in methods else 0))
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("starting", total=seeds * steps_per_seed)
        for seed in range(seeds):
            bar.update(task, description=f"seed {seed + 1}/{seeds}: meta-training outside {holdout}")
            base = E2TEnsemble(config.ensemble, base_seed=seed).fit(subset_inputs(inputs, train), y[train], [keys[i] for i in train], progress=False)
            bar.advance(task, config.ensemble.members)
            order = np.random.default_rng(seed).permutation(domain)
            gp = e2t_gp = None
            for k in shots:
                shot, test = order[:k], order[k:]
                known = np.concatenate([train, shot])
                support, query = subset_inputs(inputs, known), subset_inputs(inputs, test)

                clock = time.perf_counter()
                mean, _ = base.predict(query, support, y[known])
                seconds["instant"].append(time.perf_counter() - clock)
                _score(results["instant"][str(k)], y[test], mean)

                bar.update(task, description=f"seed {seed + 1}/{seeds}, k={k}: fine-tune")
                if "finetune" in methods and k > 0:
                    clock = time.perf_counter()
                    tuned = base.fine_tune(support, y[known], [keys[i] for i in known], np.arange(len(train), len(known)), adaptation)
                    mean, _ = tuned.predict(query, support, y[known])
                    seconds["finetune"].append(time.perf_counter() - clock)
                if "finetune" in methods:
                    _score(results["finetune"][str(k)], y[test], mean)  # k = 0: nothing to fine-tune on, same as instant

                if "gp" in methods:
                    bar.update(task, description=f"seed {seed + 1}/{seeds}, k={k}: GP")
                    clock = time.perf_counter()
                    gp = fit_gp(torch.as_tensor(X[known]), torch.as_tensor(y[known]), warm_start=gp)
                    mean, _ = pool_predictions(gp, torch.as_tensor(X[test]))
                    seconds["gp"].append(time.perf_counter() - clock)
                    _score(results["gp"][str(k)], y[test], mean)
                bar.advance(task)

                if "e2t_gp" in methods:
                    bar.update(task, description=f"seed {seed + 1}/{seeds}, k={k}: E2T-informed GP")
                    clock = time.perf_counter()
                    prior = domain_level(E2TEnsembleModel(base, torch.as_tensor(X[known]), torch.as_tensor(y[known]))
                                         .own_domain_held_out_mean(X, known, dataset.domains), dataset.domains)
                    e2t_gp = fit_e2t_gp(gp_inputs, prior, known, y[known], warm_start=e2t_gp)
                    mean, _ = pool_predictions(e2t_gp, gp_inputs[test])
                    seconds["e2t_gp"].append(time.perf_counter() - clock)
                    _score(results["e2t_gp"][str(k)], y[test], mean)

                if "scratch" in methods:
                    bar.update(task, description=f"seed {seed + 1}/{seeds}, k={k}: E2T from scratch")
                    clock = time.perf_counter()
                    scratch = E2TEnsemble(scratch_config, base_seed=seed + 100).fit(support, y[known], [keys[i] for i in known], progress=False)
                    mean, _ = scratch.predict(query, support, y[known])
                    seconds["scratch"].append(time.perf_counter() - clock)
                    _score(results["scratch"][str(k)], y[test], mean)
                    bar.advance(task, scratch_config.members)

    report = {"dataset": config.dataset, "target": config.target, "holdout": holdout, "shots": shots, "seeds": seeds,
              "members": config.ensemble.members, "scratch_members": scratch_config.members,
              "finetune_steps": adaptation.finetune_steps, "methods": results,
              "seconds_per_update": {m: float(np.median(s)) if s else None for m, s in seconds.items()}}
    console.print(adaptation_table(report))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2))
        plot = adaptation_plot(report, json_path.with_suffix(".png"))
        console.print(f"wrote {json_path} and {plot}")
    return report


def _score(store: dict, y_true: np.ndarray, y_pred: np.ndarray) -> None:
    metrics = regression_metrics(y_true, y_pred)
    store["r2"].append(metrics["r2"])
    store["rmse"].append(metrics["rmse"])


def adaptation_table(report: dict) -> Table:
    table = Table(title=f"{report['dataset']} {report['holdout']}: R² (RMSE) on the rest of the domain after k shots")
    table.add_column("method")
    for k in report["shots"]:
        table.add_column(f"k={k}", justify="right")
    for method, by_k in report["methods"].items():
        table.add_row(method, *(f"{np.mean(by_k[str(k)]['r2']):.3f} ± {np.std(by_k[str(k)]['r2']):.3f} "
                                f"({np.mean(by_k[str(k)]['rmse']):.3f})" for k in report["shots"]))
    return table


def adaptation_plot(report: dict, path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for method, by_k in report["methods"].items():
        for ax, metric in zip(axes, ("r2", "rmse")):
            values = np.array([by_k[str(k)][metric] for k in report["shots"]])
            ax.errorbar(report["shots"], values.mean(1), yerr=values.std(1), marker="o", capsize=3, label=method)
    axes[0].set_ylabel("R² on the rest of the domain")
    axes[1].set_ylabel("RMSE")
    for ax in axes:
        ax.set_xlabel(f"measurements from {report['holdout']} (k)")
    axes[0].legend()
    fig.suptitle(f"{report['dataset']}: few-shot adaptation to {report['holdout']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
