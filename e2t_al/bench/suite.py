"""``e2t-al bench discovery-suite``: named discovery scenarios (``configs/discovery_suite.yaml``) run through
``run_discovery``, merged into one report.

The report is ``scenarios.<name>`` = the scenario's ``bench discovery`` report, whose per-seed lists
(``strategies.<name>.{batches_to_best, experiments_to_best, top5_recall, ef, af_random, af_gp, …}``) follow
``seed_values``. A run with other seeds (``--first-seed``) is merged into an existing report seed by seed, and a
scenario is written as soon as it finishes, so a stopped suite keeps what it ran.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field
from rich.console import Console
from rich.table import Table

from e2t_al.acquisition.batch import Objective
from e2t_al.acquisition.objectives import parse_objective
from e2t_al.bench import joined_environments
from e2t_al.bench.discovery import (PER_SEED, STRATEGIES, Scenario, best_so_far_plot, derived_metrics,
                                    discovery_model_config, enhancement_factors, interval_text, run_discovery)
from e2t_al.config import CampaignConfig, Strict, load_config
from e2t_al.data import DataError

BAYBE_STRATEGIES = ("baybe", "baybe-transfer")  # slow: run on a scenario's first baybe_seeds seeds only


class ScenarioConfig(Strict):
    """One named scenario: which domains are unexplored and pooled, what to find, how the campaign starts."""

    dataset: str = "hoip"
    target: str | None = None  # default: the model config's
    holdout: list[str]
    objective: str = "max"  # max, min, target:VALUE, target:LOW:HIGH
    source_fraction: float = 1.0
    noise: float = 0.0
    pool: str = "holdout"
    config: Path | None = None  # campaign YAML for the model; default configs/discovery_<dataset>.yaml
    baybe_seeds: int | None = None  # baybe and baybe-transfer on fewer seeds where they are too slow (the report says so)
    description: str = ""

    def campaign_config(self, data_dir: Path | None = None) -> CampaignConfig:
        """The campaign config of the scenario's model (its ``config``, ``dataset``, ``target``; see
        ``discovery_model_config``)."""
        return discovery_model_config(self.dataset, self.config, self.target, data_dir)


class SuiteConfig(Strict):
    strategies: list[str] = Field(default_factory=lambda: ["e2t", "e2t-gauss-qlogei", "gp-qlogei", "baybe", "baybe-transfer", "random"])
    budget: int = 40
    batch: int = 4
    scenarios: dict[str, ScenarioConfig]


def run_suite(path: Path, seeds: int, first_seed: int, json_path: Path, console: Console | None = None,
              workers: int = 1, data_dir: Path | None = None, only: list[str] | None = None,
              strategies: list[str] | None = None) -> dict:
    console = console or Console()
    suite = load_config(path, SuiteConfig)
    names = only or list(suite.scenarios)
    unknown = [n for n in names if n not in suite.scenarios]
    if unknown:
        raise DataError(f"unknown scenarios {unknown}; the suite has {', '.join(suite.scenarios)}")
    strategies = strategies or suite.strategies
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad:
        raise DataError(f"unknown strategies {bad}; choose from {', '.join(STRATEGIES)}")
    report = json.loads(json_path.read_text()) if json_path.exists() else {"suite": str(path), "scenarios": {}}
    for name in names:
        scenario = suite.scenarios[name]
        console.rule(f"scenario {name}" + (f": {scenario.description}" if scenario.description else ""))
        try:
            config = scenario.campaign_config(data_dir)
        except DataError as exc:
            raise DataError(f"scenario {name}: {exc}") from exc
        plan = Scenario(tuple(scenario.holdout), Objective(*parse_objective(scenario.objective)), suite.budget,
                        suite.batch, scenario.pool, scenario.source_fraction, scenario.noise)
        baybe = [s for s in strategies if s in BAYBE_STRATEGIES]
        others = [s for s in strategies if s not in baybe]
        runs = [(strategies, seeds)]  # (strategies, how many seeds from first_seed)
        if baybe and plan.objective.kind == "target_window":
            runs = [(others, seeds)]
            console.print(f"[yellow]{name}: {', '.join(baybe)} skipped: the BayBE baselines take max and min objectives only[/]")
        elif baybe and scenario.baybe_seeds is not None:
            runs = [(others, seeds), (baybe, max(0, min(seeds, scenario.baybe_seeds - first_seed)))]
            console.print(f"[yellow]{name}: {', '.join(baybe)} " + (f"run on seeds < {scenario.baybe_seeds} only" if scenario.baybe_seeds
                          else "not run") + " (too slow here; see the suite file)[/]")
        for run_strategies, n in runs:
            if not run_strategies or not n:
                continue

            def keep(part: dict, before: dict | None = report["scenarios"].get(name), name: str = name) -> None:
                """Merges the run's seeds so far into the suite's report and writes it: after every seed, so a
                stopped suite keeps the seeds it finished."""
                report["scenarios"][name] = merge_reports(before, {**part, "target": config.target})
                report["scenarios"][name]["description"] = scenario.description
                report["scenarios"][name]["baybe_seeds"] = scenario.baybe_seeds  # None: every seed
                json_path.parent.mkdir(parents=True, exist_ok=True)
                json_path.write_text(json.dumps(report, indent=2))

            keep(run_discovery(config, plan, seeds=n, strategies=run_strategies, json_path=None, console=console,
                               workers=workers, first_seed=first_seed, on_save=keep))
        best_so_far_plot(report["scenarios"][name], json_path.with_name(f"{json_path.stem}_{name}.png"))
    console.print(suite_table(report, strategies))
    for name in names:
        if len(report["scenarios"][name].get("environments", [])) > 1:
            console.print(f"[yellow]{name}: its seeds ran in {len(report['scenarios'][name]['environments'])} different "
                          "environments (package versions and CPU kernels in the report's `environments`); single "
                          "seeds may differ[/]")
    console.print(f"wrote {json_path} and one best-so-far plot per scenario beside it")
    return report


def merge_reports(old: dict | None, new: dict) -> dict:
    """One scenario's report with the seeds of both; a seed in both takes ``new``'s runs. Derived metrics (recall
    at n, EF, acceleration factors) are recomputed from the merged per-seed curves."""
    old = old or {**new, "strategies": {}}  # a first run's partial report too lists only the seeds it finished
    merged = {**old, **{k: v for k, v in new.items() if k not in ("strategies", "seed_values", "seeds")}}
    seeds = sorted({seed for report in (old, new) for record in report["strategies"].values()  # the seeds run so far
                    for seed in record["seed_values"]})
    strategies = {}
    for name in dict.fromkeys(list(old["strategies"]) + list(new["strategies"])):
        by_seed: dict[int, dict] = {}
        for report in (old, new):
            record = report["strategies"].get(name)
            if not record:
                continue
            for i, seed in enumerate(record["seed_values"]):
                by_seed[seed] = {key: record[key][i] for key in PER_SEED if key in record}
        ordered = [s for s in seeds if s in by_seed]
        strategies[name] = {key: [by_seed[s][key] for s in ordered] for key in PER_SEED}
        strategies[name]["seed_values"] = ordered
        resolved = (new["strategies"].get(name) or old["strategies"].get(name) or {}).get("resolved")
        if resolved:
            strategies[name]["resolved"] = resolved
    merged["seed_values"] = seeds
    merged["environments"] = joined_environments(old, new)
    merged["strategies"] = derived_metrics(strategies, merged["pool_size"], merged["budget"])
    merged["seeds"] = min((len(r["experiments_to_best"]) for r in strategies.values()), default=0)
    merged["enhancement_factor"] = enhancement_factors(merged["strategies"])
    return merged


def suite_table(report: dict, strategies: list[str]) -> Table:
    table = Table(title="discovery suite: median batches to the best [90% bootstrap interval] (in-window hits for "
                        "window scenarios); * = some seeds never found it (counted as batches + 1); (k distinct): the seeds gave only k "
                        "different campaigns (a deterministic strategy where the seeds change nothing it sees)")
    table.add_column("scenario")
    for name in strategies:
        table.add_column(name)
    for scenario, result in report["scenarios"].items():
        window = result["objective"]["kind"] == "target_window"
        cells = []
        for name in strategies:
            record = result["strategies"].get(name)
            if not record or not record["experiments_to_best"]:
                cells.append("-")
                continue
            values = record["in_window_hits"] if window else record["batches_to_best"]
            text = interval_text(values)
            star = "" if window or all(record["found"]) else "*"
            runs = record.get("distinct_runs", len(values))
            cells.append(f"{text}{star} n={len(values)}" + (f" ({runs} distinct)" if runs < len(values) else ""))
        table.add_row(f"{scenario} ({result['pool_size']})", *cells)
    return table
