"""``e2t-al bench web-load``: the lab web app under a realistic mix of people, measured, then the store checked.

A copy of the demo's store (or a store you name) gets one account per simulated person and an open proposal batch;
the app runs in its own process (uvicorn); locust drives it from a third (``web_load_driver``):

- readers (70 %: viewers and reviewers): dashboards, proposal and measurement pages, the API's reads;
- experimentalists (20 %): measurements through the API and through the page's form, each with a unique note;
- reviewers (10 %): decisions on the open proposals (a decision someone else took first is an intended 409);
- one more experimentalist previews a CSV of ``csv_rows`` rows every ``csv_every`` seconds.

Latencies are counted once every simulated person has signed in (``warm_up_seconds``: the burst of argon2 sign-ins
is not the steady state); the store check covers every write, the warm-up's included: each one the app acknowledged
must be in the store exactly once, and none it refused.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import func
from sqlmodel import select

from db import accounts, service
from db.engine import make_engine, session_scope, upgrade
from db.tables import Measurement
from e2t_al.data.dataset import DataError
from e2t_al.data.paths import PROJECT_ROOT

DEMO_STORE = PROJECT_ROOT / "runs" / "demo" / "demo.sqlite"
GOAL = {"pages_p95_ms": 300, "api_writes_p95_ms": 150}
WRITE_ROUTES = ("POST /api/measurements", "POST /campaigns/{name}/measurements", "POST /api/proposals/{id}/decision")


def run_web_load(users: int, duration: float, json_path: Path | None, console: Console, store: str | None = None,
                 csv_rows: int = 5000, csv_every: float = 30.0) -> dict:
    if users < 3:
        raise DataError("--users is at least 3 (a reader, an experimentalist and a reviewer)")
    work = Path(tempfile.mkdtemp(prefix="e2t-web-load-"))
    try:
        url = _store_copy(store, work)
        plan = prepare(url, users, csv_rows, csv_every, duration)
        console.print(f"store {_masked(url)}: campaign {plan['campaign']}, {len(plan['candidates'])} candidates, "
                      f"{len(plan['proposal_ids'])} open proposals; {users} people for {duration:g} s")
        with _server(url, work) as host:
            plan["host"] = host
            (work / "plan.json").write_text(json.dumps(plan))
            clock = time.perf_counter()
            driver = subprocess.run([sys.executable, "-m", "e2t_al.bench.web_load_driver", str(work / "plan.json"),
                                     str(work / "out.json")], capture_output=True, text=True, timeout=duration + 300)
            seconds = time.perf_counter() - clock
        if driver.returncode != 0:
            raise RuntimeError(f"the load driver failed:\n{driver.stderr[-3000:]}")
        report = summarise(json.loads((work / "out.json").read_text()), url, users, duration, seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    console.print(load_table(report))
    console.print(f"{report['requests']} requests in {report['seconds']:.0f} s, {report['errors']} errors; p95 pages "
                  f"{report['p95_ms']['pages']:.0f} ms (goal < {GOAL['pages_p95_ms']}), API writes "
                  f"{report['p95_ms']['api_writes']:.0f} ms (goal < {GOAL['api_writes_p95_ms']}); "
                  f"{report['writes_acknowledged']} writes acknowledged, {report['lost']} lost, {report['duplicated']} duplicated, "
                  f"{report['refused_but_stored']} refused but stored")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2))
        console.print(f"wrote {json_path}")
    return report


def _store_copy(store: str | None, work: Path) -> str:
    """A throw-away SQLite copy of the demo's store; a named URL is used as it is (give a scratch database)."""
    if store is not None:
        return store
    if not DEMO_STORE.exists():
        raise DataError(f"no demo store at {DEMO_STORE}: run `e2t-al demo` first, or give --store URL")
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{DEMO_STORE}{suffix}").exists():
            shutil.copy(f"{DEMO_STORE}{suffix}", work / f"load.sqlite{suffix}")
    return f"sqlite:///{work / 'load.sqlite'}"


def prepare(url: str, users: int, csv_rows: int, csv_every: float, duration: float) -> dict:
    """Accounts (one per simulated person, so that sign-ins do not end each other's sessions) and an open batch."""
    upgrade(url)
    engine = make_engine(url)
    readers = max(1, round(0.7 * users))
    experimentalists = max(1, round(0.2 * users))
    reviewers = max(1, users - readers - experimentalists)
    people, tag = [], secrets.token_hex(3)
    with session_scope(engine) as session:
        campaign = service.list_campaigns(session)[0]
        candidates = service.list_candidates(session, campaign)
        measured = service.measured_values(session, campaign)
        open_ids = [item.id for item, _ in service.proposal_items(session, campaign, statuses=["proposed"])]
        if not open_ids:  # an open batch for the reviewers: up to 40 unmeasured candidates
            pool = [c for c in candidates if c.identifier not in measured][:40]
            batch = service.record_proposal(session, campaign, [service.ProposedCandidate(c.id, 0.0, 0.0, 0.0, 0.0) for c in pool],
                                            "web-load")
            open_ids = [item.id for item, _ in service.proposal_items(session, campaign, batch_id=batch.id)]
        for kind, count in (("reader", readers), ("experimentalist", experimentalists + 1), ("reviewer", reviewers)):
            for k in range(count):
                role = {"reader": "viewer" if k % 2 == 0 else "reviewer", "experimentalist": "experimentalist",
                        "reviewer": "reviewer"}[kind]
                name = f"load-{kind}-{k}-{tag}"
                password = secrets.token_urlsafe(16)
                user = accounts.create_user(session, accounts.UserIn(username=name, role=role, password=password), actor="web-load")
                people.append({"name": name, "password": password, "token": accounts.issue_api_token(session, user, "web-load"),
                               "kind": "uploader" if kind == "experimentalist" and k == count - 1 else kind})
        low = campaign.valid_min if campaign.valid_min is not None else 0.0
        high = campaign.valid_max if campaign.valid_max is not None else low + 10.0
        plan = {"campaign": campaign.name, "users": people, "duration": duration, "candidates": [c.identifier for c in candidates],
                "unit": campaign.unit, "value_range": [low + 0.1 * (high - low), low + 0.9 * (high - low)],
                "proposal_ids": open_ids, "csv_rows": csv_rows, "csv_every": csv_every}
    engine.dispose()
    return plan


class _server:
    """The app in its own process on a free local port, until the block ends."""

    def __init__(self, url: str, work: Path):
        self.url, self.work = url, work

    def __enter__(self) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = dict(os.environ, E2T_AL_DATABASE_URL=self.url)
        self.log = open(self.work / "server.log", "w")
        self.process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "e2t_al.web.app:create_app", "--host",
                                         "127.0.0.1", "--port", str(port), "--log-level", "warning", "--timeout-keep-alive", "75"],
                                        env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        host = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{host}/login", timeout=2) as response:
                    if response.status == 200:
                        return host
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.25)
        self.__exit__()
        raise RuntimeError(f"the web app did not start: {(self.work / 'server.log').read_text()[-2000:]}")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def percentile_of(histogram: dict, share: float) -> float:
    """The ``share`` percentile of a locust response-time histogram {milliseconds: count}."""
    if not histogram:
        return float("nan")
    times = np.array(sorted(histogram), dtype=float)
    counts = np.array([histogram[t] for t in sorted(histogram)], dtype=float)
    return float(times[np.searchsorted(np.cumsum(counts), share * counts.sum())])


def summarise(out: dict, url: str, users: int, duration: float, seconds: float) -> dict:
    routes = out["routes"]
    merged = {"pages": {}, "api_writes": {}}
    for name, route in routes.items():
        group = "api_writes" if name in ("POST /api/measurements", "POST /api/proposals/{id}/decision") else (
            "pages" if name.startswith("GET /campaigns") else None)
        for ms, count in (route.pop("histogram") if "histogram" in route else {}).items():
            if group:
                merged[group][float(ms)] = merged[group].get(float(ms), 0) + count
    engine = make_engine(url)
    with session_scope(engine) as session:
        counts = dict(session.exec(select(Measurement.notes, func.count()).where(Measurement.notes.like("load-%"))
                                   .group_by(Measurement.notes)).all())
    engine.dispose()
    acknowledged = [w for w in out["writes"] if w["acknowledged"]]
    refused = [w for w in out["writes"] if not w["acknowledged"]]
    return {
        "users": users, "seconds": round(seconds, 1), "duration": duration, "warm_up_seconds": out.get("warm_up_seconds"),
        "requests": out["requests"], "errors": out["failures"],
        "error_samples": out["errors"][:20], "routes": routes,
        "p95_ms": {group: percentile_of(hist, 0.95) for group, hist in merged.items()},
        "writes_acknowledged": len(acknowledged), "lost": sum(counts.get(w["note"], 0) == 0 for w in acknowledged),
        "duplicated": sum(counts.get(w["note"], 0) > 1 for w in acknowledged),
        "refused_but_stored": sum(counts.get(w["note"], 0) > 0 for w in refused), "writes_refused": len(refused),
        "database": "postgresql" if url.startswith("postgresql") else "sqlite", "goal": GOAL,
        "cores": os.cpu_count(),
    }


def load_table(report: dict) -> Table:
    table = Table("route", "requests", "failures", "p50 ms", "p95 ms", "p99 ms", title=f"web load: {report['users']} people")
    for name, route in sorted(report["routes"].items()):
        table.add_row(name, str(route["count"]), str(route["failures"]), *(f"{route[k]:.0f}" if not math.isnan(route[k] or 0) else "-"
                                                                            for k in ("p50_ms", "p95_ms", "p99_ms")))
    return table


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
