"""Faults: the web server killed (SIGKILL) while it writes an upload's rows leaves all of them or none, and the
stored preview is still there to confirm once the server is back, exactly when nothing was written.

The server runs in a process of its own (uvicorn on 127.0.0.1) on a copy of a seeded lab with a campaign of
``ROWS`` candidates; each try kills it a different time after the confirm was sent.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from db import service
from db.engine import make_engine, session_scope
from db.schemas import CampaignIn, CandidateIn
from db.tables import Candidate, Measurement, UploadPreview
from web_lab import PASSWORD, copied_lab, count_rows, csrf_of, free_port, seed_lab

ROWS = 2000
CAMPAIGN = "bulk-plate"
SERVER = """
import sys, uvicorn
from e2t_al.web.app import create_app
uvicorn.run(create_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


@pytest.fixture(scope="module")
def bulk_lab(tmp_path_factory) -> Path:
    """The web tests' lab plus a campaign of ``ROWS`` unmeasured candidates, as a SQLite file to copy."""
    folder = tmp_path_factory.mktemp("faults")
    url = f"sqlite:///{folder / 'lab.sqlite'}"
    seed_lab(url, folder)
    engine = make_engine(url)
    with session_scope(engine) as session:
        campaign = service.create_campaign(session, CampaignIn(name=CAMPAIGN, dataset="hoip", target_property="band_gap",
                                                               unit="eV", objective="maximise", valid_min=0, valid_max=10))
        service.import_candidates(session, campaign, [
            service.CandidateRow(f"line {i + 2}", CandidateIn(identifier=f"b{i:05d}", representation_kind="formula",
                                                              representation="CsGeF3"), "Ge-F") for i in range(ROWS)])
    engine.dispose()
    return folder / "lab.sqlite"


class Server:
    """``e2t-al web`` in a process of its own on ``url``; ``kill()`` sends SIGKILL."""

    def __init__(self, url: str):
        self.port = free_port()
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen([sys.executable, "-c", SERVER, url, str(self.port)], env=env)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.base}/login", timeout=1)
                return
            except httpx.TransportError:
                assert self.process.poll() is None and time.monotonic() < deadline, "the web server did not start"
                time.sleep(0.2)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def signed_in_client(base: str) -> tuple[httpx.Client, str]:
    """An experimentalist's client and the session's CSRF token."""
    client = httpx.Client(base_url=base, timeout=120)
    assert client.post("/login", data={"username": "experimentalist", "password": PASSWORD,
                                       "csrf_token": csrf_of(client.get("/login").text), "next": "/"}).status_code == 303
    return client, csrf_of(client.get("/account").text)


def campaign_measurements(url: str) -> int:
    engine = make_engine(url)
    with Session(engine) as session:
        campaign = service.get_campaign(session, CAMPAIGN)
        n = len(session.exec(select(Measurement.id).join(Candidate).where(Candidate.campaign_id == campaign.id)).all())
    engine.dispose()
    return n


KILLED_BEFORE_ANSWERING: list[float] = []
CSV = "candidate,value,unit,method\n" + "".join(f"b{i:05d},{1 + i % 300 / 100:.2f},eV,UV-vis\n" for i in range(ROWS))


def previewed(client: httpx.Client, csrf: str) -> str:
    """Upload the plate's CSV; the stored preview's key."""
    page = client.post(f"/campaigns/{CAMPAIGN}/measurements/upload", data={"csrf_token": csrf},
                       files={"file": ("plate.csv", CSV, "text/csv")})
    assert f"{ROWS} of {ROWS} row(s) can be recorded" in page.text
    return re.search(r'name="preview" value="([^"]+)"', page.text).group(1)


@pytest.fixture(scope="module")
def confirm_seconds(bulk_lab, tmp_path_factory) -> float:
    """How long an undisturbed confirm of the plate takes here: the kills below land at shares of it."""
    url = copied_lab(bulk_lab, tmp_path_factory.mktemp("timing"))
    server = Server(url)
    try:
        client, csrf = signed_in_client(server.base)
        preview = previewed(client, csrf)
        clock = time.perf_counter()
        assert client.post(f"/campaigns/{CAMPAIGN}/measurements/upload/confirm",
                           data={"csrf_token": csrf, "preview": preview}).status_code == 303
        seconds = time.perf_counter() - clock
    finally:
        server.kill()
    assert campaign_measurements(url) == ROWS
    return seconds


@pytest.mark.parametrize("share", [0.05, 0.5, 0.8, 0.95])
def test_a_server_killed_during_an_upload_confirm_leaves_all_rows_or_none(bulk_lab, tmp_path, confirm_seconds, share):
    url = copied_lab(bulk_lab, tmp_path)
    kill_after = share * confirm_seconds
    server = Server(url)
    try:
        client, csrf = signed_in_client(server.base)
        preview = previewed(client, csrf)
        outcome: dict = {}

        def confirm() -> None:
            try:
                outcome["status"] = client.post(f"/campaigns/{CAMPAIGN}/measurements/upload/confirm",
                                                data={"csrf_token": csrf, "preview": preview}).status_code
            except httpx.TransportError as exc:
                outcome["error"] = exc

        sender = threading.Thread(target=confirm)
        sender.start()
        time.sleep(kill_after)
        server.kill()
        sender.join(timeout=60)
    finally:
        if server.process.poll() is None:
            server.kill()

    written = campaign_measurements(url)
    print(f"killed {kill_after:.2f} s ({share:.0%} of an undisturbed confirm) after the confirm was sent: {written} of {ROWS} rows written, "
          f"answer {outcome.get('status', outcome.get('error'))!r}")
    assert written in (0, ROWS), f"a killed confirm left {written} of {ROWS} rows"
    if outcome.get("status") == 303:  # acknowledged: then written, all of it
        assert written == ROWS
    else:
        KILLED_BEFORE_ANSWERING.append(kill_after)
    assert count_rows(url, UploadPreview) == (1 if written == 0 else 0)  # the preview goes with the write, never before
    if written == 0:  # nothing lost: once the server is back, the same preview confirms, once
        server = Server(url)
        try:
            client, csrf = signed_in_client(server.base)
            answer = client.post(f"/campaigns/{CAMPAIGN}/measurements/upload/confirm",
                                 data={"csrf_token": csrf, "preview": preview})
            assert answer.status_code == 303
            again = client.post(f"/campaigns/{CAMPAIGN}/measurements/upload/confirm",
                                data={"csrf_token": csrf, "preview": preview})
            assert again.status_code in (400, 404, 409)
        finally:
            server.kill()
        assert campaign_measurements(url) == ROWS


def test_some_kill_landed_before_the_server_answered():
    """Guards the test above against killing only after the work was done (a faster machine): at least one try
    was killed before its answer."""
    assert KILLED_BEFORE_ANSWERING, "every confirm finished before the kill: raise ROWS"
