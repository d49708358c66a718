"""`e2t-al bench web-load` end to end on a small lab: the contracted JSON keys, and the store check finds every
acknowledged write exactly once."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from e2t_al.cli import app
from web_lab import seed_lab


def test_web_load_reports_latencies_and_checks_the_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'lab.sqlite'}"
    seed_lab(url, tmp_path)
    out = tmp_path / "load.json"
    result = CliRunner().invoke(app, ["bench", "web-load", "--users", "4", "--duration", "6", "--csv-rows", "300",
                                      "--csv-every", "3", "--store", url, "--json", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert {"users", "seconds", "requests", "errors", "routes", "p95_ms", "writes_acknowledged", "lost", "duplicated",
            "database"} <= set(report)
    assert report["users"] == 4 and report["database"] == "sqlite" and report["requests"] > 20
    assert set(report["p95_ms"]) == {"pages", "api_writes"}
    assert all({"count", "p50_ms", "p95_ms", "p99_ms"} <= set(route) for route in report["routes"].values())
    assert report["writes_acknowledged"] > 0 and report["lost"] == 0 and report["duplicated"] == 0
    assert report["refused_but_stored"] == 0
