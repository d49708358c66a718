"""``e2t-al bench propose``: seconds for one proposal step (ensemble prediction + acquisition of a batch).

Pool: the real HOIP candidates (``pool_size`` ≤ 1,345: the first N) or, above that, a synthetic pool of
``pool_size`` candidates made by repeating the real descriptor rows with 1% Gaussian jitter. ``measured``
candidates drawn at random are the data; the step scores every other candidate. The same pool and data go
through BayBE's default recommender when BayBE is installed (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from e2t_al.acquisition.batch import Objective, pool_predictions, propose_batch
from e2t_al.acquisition.models import E2TEnsembleModel
from e2t_al.bench.baybe_baseline import BayBEProposer
from e2t_al.config import AcquisitionConfig, ExtrapolationBenchConfig
from e2t_al.data import DataError, load_dataset
from e2t_al.features import describe
from e2t_al.model.ensemble import E2TEnsemble
from e2t_al.model.inputs import DescriptorInputs


def build_pool(X: np.ndarray, y: np.ndarray, pool_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``pool_size`` real rows, or real rows repeated (with 1% jitter per column) up to ``pool_size``."""
    if pool_size <= len(X):
        return X[:pool_size], y[:pool_size]
    rng = np.random.default_rng(seed)
    repeat = rng.integers(len(X), size=pool_size - len(X))
    jitter = rng.normal(0.0, 0.01, size=(len(repeat), X.shape[1])) * X.std(0)
    return np.vstack([X, X[repeat] + jitter]), np.concatenate([y, y[repeat]])


def time_e2t(ensemble: E2TEnsemble, pool_X: np.ndarray, measured: np.ndarray, y: np.ndarray, acquisition: AcquisitionConfig,
             repeats: int) -> tuple[float, np.ndarray]:
    """Median seconds of: instant support update, posterior of every candidate, batch acquisition."""
    times, batch = [], None
    pool = torch.as_tensor(pool_X)
    for _ in range(repeats):
        clock = time.perf_counter()
        model = E2TEnsembleModel(ensemble, pool[measured], torch.as_tensor(y[measured]))
        pool_predictions(model, pool, acquisition.chunk_size)
        batch = propose_batch(model, pool, measured, y[measured], acquisition)
        times.append(time.perf_counter() - clock)
    return float(np.median(times)), batch.indices


def time_baybe(pool_X: np.ndarray, measured: np.ndarray, y: np.ndarray, batch: int) -> dict:
    """BayBE's default recommender on the same pool and data (``bench/baybe_baseline.py``)."""
    proposer = BayBEProposer(pool_X, Objective("maximise"))
    clock = time.perf_counter()
    proposer.propose(measured, y[measured], batch)
    return {"search_space_seconds": proposer.build_seconds, "seconds_per_step": time.perf_counter() - clock}


def run_propose_bench(config: ExtrapolationBenchConfig, pool_size: int, batch: int, measured_count: int, repeats: int,
                      baybe: bool, model_dir: Path | None, json_path: Path | None, console: Console | None = None) -> dict:
    console = console or Console()
    dataset = load_dataset(config.dataset, config.data_dir).labelled(config.target)
    X, _ = describe(dataset, config.ensemble.model.encoder.descriptors, progress=True)
    y_all = dataset.target(config.target)
    if model_dir is not None and (model_dir / "ensemble.json").exists():
        ensemble = E2TEnsemble.load(model_dir)
        console.print(f"loaded the ensemble from {model_dir}")
    else:
        console.print(f"meta-training a {config.ensemble.members}-member ensemble on {len(X)} materials (not timed)")
        clock = time.perf_counter()
        ensemble = E2TEnsemble(config.ensemble).fit(DescriptorInputs(torch.as_tensor(X, dtype=torch.float32), []), y_all,
                                                    dataset.domain_keys, progress=True)
        console.print(f"trained in {time.perf_counter() - clock:.0f} s")
        if model_dir is not None:
            ensemble.save(model_dir)
    pool_X, y = build_pool(X, y_all, pool_size, seed=0)
    if measured_count >= len(pool_X):
        raise DataError(f"--measured {measured_count} leaves no candidate in a pool of {len(pool_X)}")
    measured = np.zeros(len(pool_X), dtype=bool)
    measured[np.random.default_rng(0).choice(len(X), size=measured_count, replace=False)] = True
    acquisition = AcquisitionConfig(function="qlogei", batch_size=batch)
    e2t_seconds, chosen = time_e2t(ensemble, pool_X, measured, y, acquisition, repeats)
    console.print(f"e2t: {e2t_seconds:.2f} s per step (pool {len(pool_X):,}, batch {batch}, {measured_count} measured); "
                  f"chose {chosen.tolist()}")
    report = {"pool_size": int(len(pool_X)), "batch": batch, "measured": measured_count, "members": len(ensemble.members),
              "synthetic": pool_size > len(X), "seconds_per_step": {"e2t": e2t_seconds, "baybe": None}, "baybe": None}
    if baybe:
        try:
            result = time_baybe(pool_X, measured, y, batch)
            report["seconds_per_step"]["baybe"] = result["seconds_per_step"]
            report["baybe"] = result
            console.print(f"baybe: {result['seconds_per_step']:.2f} s per step; building its search space took "
                          f"{result['search_space_seconds']:.1f} s; e2t is {result['seconds_per_step'] / e2t_seconds:.1f}× faster")
        except ImportError:
            report["baybe"] = {"skipped": "BayBE is not installed (pip install -e '.[bench]')"}
            console.print(f"[yellow]baybe skipped:[/] {report['baybe']['skipped']}")
    else:
        report["baybe"] = {"skipped": "not run (--no-baybe)"}
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2))
        console.print(f"wrote {json_path}")
    return report
