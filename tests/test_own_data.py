"""README "Your own data", end to end through the command line, with a tiny model: a CSV of 40 formulas (25 measured)
with the Materials Project as prior knowledge; create → iterate → approve → measure → iterate (the measured
candidates' neighbours get new predictions) → export → import into another store → the same export."""

from __future__ import annotations

import json
from pathlib import Path

import logging
import sys

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from db import service
from db.engine import session_scope, store_engine
from e2t_al.cli import app
from e2t_al.data.paths import PROJECT_ROOT

pytestmark = pytest.mark.usefixtures("prefect_harness")
EXAMPLE = PROJECT_ROOT / "configs" / "own_data_example"
# at most one exploitation place (the default may take the whole batch), so the acquisition places' order is checked
EXPLOIT_PLACES = 1
runner = CliRunner()


def tiny_config(tmp_path: Path) -> Path:
    """The README's config, with its CSVs, and a model small enough for CI."""
    config = yaml.safe_load((EXAMPLE / "campaign.yaml").read_text())
    config["candidates"]["csv"] = str(EXAMPLE / "candidates.csv")
    config["measurements"]["csv"] = str(EXAMPLE / "measurements.csv")
    config["artifacts_dir"] = str(tmp_path / "runs")
    config["ensemble"] = {"members": 2, "model": {"encoder": {"descriptors": ["composition"], "hidden": [32], "embedding_dim": 8},
                                                  "training": {"max_steps": 20, "validation_domains": 1, "validate_every": 10,
                                                               "patience": 1}}}
    config["acquisition"]["gp_max_background"] = 150
    config["acquisition"]["exploit_places"] = EXPLOIT_PLACES
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def prefect_logs_to_stderr() -> None:
    """Prefect's console log handler keeps the stream it was created with; under CliRunner that is a stream the
    runner closes after the command, so a second flow run in this process would log into a closed file."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    for handler in {h for logger in loggers for h in getattr(logger, "handlers", [])}:
        if isinstance(handler, PrefectConsoleHandler):
            handler.stream = sys.__stderr__
            handler.console.file = sys.__stderr__


def cli(*args: str) -> str:
    prefect_logs_to_stderr()
    result = runner.invoke(app, list(args), terminal_width=200)
    assert result.exit_code == 0, (result.output[-3000:], result.exception)
    return result.stdout


def cli_json(*args: str):
    out = cli(*args, "--json")
    return json.loads(out[out.index("{") if out.lstrip()[0] == "{" else out.index("["):])


def predictions(url: str) -> dict[str, float]:
    with session_scope(store_engine(url)) as session:
        campaign = service.get_campaign(session, "lab-oxides")
        names = {c.id: c.identifier for c in service.list_candidates(session, campaign)}
        return {names[i]: p.mean for i, p in service.latest_predictions(session, campaign).items()}


def elements(formula_by_id: dict, identifier: str) -> set[str]:
    from pymatgen.core import Composition

    return {e.symbol for e in Composition(formula_by_id[identifier]).elements}


def test_readme_own_data_example_end_to_end(tmp_path, monkeypatch, data_dir):
    url = f"sqlite:///{tmp_path / 'lab.sqlite'}"
    monkeypatch.setenv("E2T_AL_DATABASE_URL", url)
    monkeypatch.setenv("E2T_AL_OPERATOR", "alice")
    cli("db", "upgrade")
    created = cli("campaigns", "create", "--config", str(tiny_config(tmp_path)))
    assert "40 candidates, 25 measured" in created and "mp/band_gap" in created
    [listed] = cli_json("campaigns", "list")
    assert listed["candidates"] == 40 and listed["measured"] == 25  # prior data is not the lab's: counted apart
    assert sum(listed["prior"].values()) > 3000
    # element domains in any element order; the dashboard-sized lists hold the lab's own candidates only
    assert [r["identifier"] for r in cli_json("candidates", "list", "--campaign", "lab-oxides", "--domain", "Cs-Pb-I")] == ["lab-001"]
    assert len(cli_json("candidates", "list", "--campaign", "lab-oxides")) == 40

    first = cli_json("iterate", "--campaign", "lab-oxides")
    assert first["status"] == "completed" and first["iteration"] == 1 and len(first["batch"]) == 4
    own_best = 5.6  # LaAlO3, the best of the lab's measurements; mp holds higher band gaps, which must not count
    assert first["incumbent"]["value"] == pytest.approx(own_best) and "scope" in first["incumbent"]["rule"]
    measured_ids = {f"lab-{i:03d}" for i in range(1, 26)}
    proposed = [row["candidate"] for row in first["batch"]]
    assert not set(proposed) & measured_ids and all(c.startswith("lab-") for c in proposed)
    before = predictions(url)
    assert len(before) == 40  # predictions recorded for the lab's candidates, not for 3,000 prior materials

    waiting = cli_json("proposals", "list", "--campaign", "lab-oxides", "--status", "proposed")
    assert [r["candidate"] for r in waiting] == proposed
    # the believer batch: each place's exact log EI, given the places before it, so never rising down the batch
    # after the exploitation places (those that took the highest predicted mean, valued by their own log EI)
    exploited = sum(row["chosen_by"] == "highest mean" for row in first["batch"])
    chosen_by = [row["chosen_by"] for row in first["batch"]]
    assert exploited <= EXPLOIT_PLACES and chosen_by[exploited:] == ["acquisition"] * (4 - exploited)
    assert [r["chosen_by"] for r in waiting] == chosen_by  # the store keeps what chose each place
    values = [r["acquisition"] for r in waiting]
    assert all(np.isfinite(values)) and values[exploited:] == sorted(values[exploited:], reverse=True)
    approved = cli_json("proposals", "approve", "--campaign", "lab-oxides", "--all", "--comment", "go")
    assert len(approved["items"]) == 4 and approved["user"] == "alice"
    for k, candidate in enumerate(proposed):
        cli("measurements", "add", "--campaign", "lab-oxides", "--candidate", candidate, "--value", str(6.0 + 0.1 * k), "--unit", "eV")
    assert {r["status"] for r in cli_json("proposals", "list", "--campaign", "lab-oxides")} == {"measured"}

    second = cli_json("iterate", "--campaign", "lab-oxides")
    assert second["status"] == "completed" and second["iteration"] == 2
    assert second["incumbent"]["value"] == pytest.approx(6.3)  # now the best of the lab's measurements
    after = predictions(url)
    formulas = dict(line.split(",") for line in (EXAMPLE / "candidates.csv").read_text().splitlines()[1:])
    remaining = [c for c in formulas if c not in measured_ids and c not in proposed]
    for candidate in proposed:  # the new measurements moved their neighbours' predictions (no retraining)
        overlap = {c: len(elements(formulas, c) & elements(formulas, candidate)) / len(elements(formulas, c) | elements(formulas, candidate))
                   for c in remaining}
        neighbours = sorted(remaining, key=lambda c: -overlap[c])[:3]  # most elements in common
        assert max(abs(after[c] - before[c]) for c in neighbours) > 1e-4, candidate

    retired = cli_json("candidates", "retire", "lab-040", "--campaign", "lab-oxides", "--reason", "no precursor")
    assert retired["retired"] == ["lab-040"]
    first_export, second_export = tmp_path / "export", tmp_path / "export-again"
    cli("campaigns", "export", "--campaign", "lab-oxides", "--out", str(first_export))
    other = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    cli("db", "upgrade", "--url", other)
    imported = cli_json("campaigns", "import-export", str(first_export), "--url", other)
    assert imported == {"campaign": "lab-oxides", "candidates": 40, "measurements": 29, "proposals": 8}
    cli("campaigns", "export", "--campaign", "lab-oxides", "--out", str(second_export), "--url", other)
    files = sorted(p.relative_to(first_export) for p in first_export.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second_export) for p in second_export.rglob("*") if p.is_file())
    for relative in files:
        assert (first_export / relative).read_bytes() == (second_export / relative).read_bytes(), relative
    assert {"candidates.csv", "measurements.csv", "proposals.csv", "predictions.csv", "manifest.json"} <= {str(f) for f in files}
