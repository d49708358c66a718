"""The web app in a real browser: Debian's Chromium driven by Playwright against uvicorn on 127.0.0.1.

A reviewer signs in and approves two proposals; an experimentalist enters a measurement through the form, uploads
a CSV with one bad row (refused with its reason; the good rows are written only after confirmation) and sees the
dashboard update; its plots are interactive (hover names a candidate, a click opens it). Screenshots of the dashboard and the proposal page go to ``$E2T_AL_SCREENSHOTS`` (default
``reports/screenshots``, not committed).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from db.tables import Measurement
from e2t_al.data.paths import PROJECT_ROOT
from e2t_al.web.app import create_app
from web_lab import CAMPAIGN, PASSWORD, count_rows, free_port, seed_lab

CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/chromium.sh installs it); never a downloaded browser
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"]
SCREENSHOTS = Path(os.environ.get("E2T_AL_SCREENSHOTS", PROJECT_ROOT / "reports" / "screenshots"))


@pytest.fixture(scope="module")
def served_lab(tmp_path_factory):
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run .ci/chromium.sh (apt-get install chromium)")
    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'lab.sqlite'}"
    seed_lab(url, folder)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(url), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", url, folder
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_review_measure_upload_and_watch_the_dashboard(served_lab, browser):
    base, url, folder = served_lab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page_errors = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))

    # The reviewer approves the two top proposals, one with a comment.
    sign_in(page, base, "reviewer")
    page.goto(f"{base}/campaigns/{CAMPAIGN}/proposals")
    assert page.locator("#open-proposals tbody tr").count() == 4
    page.click("#open-proposals thead th:nth-child(6)")  # sort by predicted value, lowest first
    assert page.locator("#open-proposals thead th:nth-child(6)").get_attribute("aria-sort") == "ascending"
    assert page.locator("#open-proposals tbody tr td:nth-child(2)").all_inner_texts() == ["g04", "g03", "g02", "g01"]
    assert page.locator("#open-proposals td.chosen-by").all_inner_texts() == ["acquisition"] * 3 + ["highest mean"]
    page.screenshot(path=str(SCREENSHOTS / "proposals.png"), full_page=True)
    for candidate, comment in (("g01", "fluoride precursors in stock"), ("g02", "")):
        row = page.locator("#open-proposals tbody tr", has_text=candidate)
        row.locator("input[name=comment]").fill(comment)
        row.locator("button[value=approved]").click()
        page.wait_for_load_state()
        assert "approved" in page.locator("p.message").inner_text()
    statuses = page.locator("#open-proposals td.status").all_inner_texts()
    assert sum(s.startswith("approved by reviewer") for s in statuses) == 2
    page.click("text=Sign out")

    # The experimentalist measures g01 through the form.
    sign_in(page, base, "experimentalist")
    page.goto(f"{base}/campaigns/{CAMPAIGN}")
    assert page.locator("#experiment-count").inner_text() == "0"
    page.goto(f"{base}/campaigns/{CAMPAIGN}/measurements")
    assert page.locator("#awaiting tbody tr").count() == 2
    form = page.locator("#awaiting-g01 form")
    form.locator("input[name=value]").fill("5.21")
    form.locator("input[name=uncertainty]").fill("0.05")
    form.locator("input[name=method]").fill("UV-vis Tauc")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "g01 = 5.21 eV" in page.locator("p.message").inner_text()
    assert page.locator("#awaiting tbody tr").count() == 1

    # A CSV with one bad row: the preview refuses it with the reason and writes nothing until confirmed.
    csv = folder / "plate7.csv"
    csv.write_text("candidate,value,unit,method\ng02,4.6,eV,UV-vis\ng03,4800,meV,UV-vis\ng04,42,eV,UV-vis\n")
    before = count_rows(url, Measurement)
    page.set_input_files("input[name=file]", str(csv))
    page.click("form[enctype] button[type=submit]")
    page.wait_for_load_state()
    assert "2 of 3 row(s) can be recorded" in page.locator("#preview-summary").inner_text()
    refused = page.locator("#preview tr.refused")
    assert refused.count() == 1 and "g04" in refused.inner_text() and "outside the valid range" in refused.inner_text()
    assert count_rows(url, Measurement) == before
    page.click("#import-valid-rows")  # explicitly: the default is all rows or none
    page.wait_for_load_state()
    assert "2 measurement(s) imported" in page.locator("p.message").inner_text()
    assert count_rows(url, Measurement) == before + 2

    # The dashboard shows the three new experiments and the best one.
    page.goto(f"{base}/campaigns/{CAMPAIGN}")
    assert page.locator("#experiment-count").inner_text() == "3"
    assert page.locator("#best-found").inner_text().startswith("5.210 eV (g01)")
    assert "3/5" in page.locator("#domain-map").inner_text()  # Ge-F: 3 of 5 measured

    # Its plots are interactive (plotly.js from this site, under the CSP); the PNGs stay for reports.
    for figure in ("best_so_far", "parity", "domain_coverage"):
        png = page.request.get(f"{base}/campaigns/{CAMPAIGN}/plots/{figure}.png")
        assert png.ok and png.headers["content-type"] == "image/png" and len(png.body()) > 1000
        page.wait_for_selector(f"#plot-{figure}[data-ready=true] .plotly-figure", timeout=20000)
    assert page.locator(".plots img").count() == 0
    parity = page.request.get(f"{base}/campaigns/{CAMPAIGN}/plots/parity.json").json()["data"][0]
    assert parity["customdata"] == [f"/campaigns/{CAMPAIGN}/candidates/g01", f"/campaigns/{CAMPAIGN}/candidates/g02"]
    points = page.locator("#plot-parity g.points path.point")
    assert points.count() == 2  # the approved proposals g01 and g02 were measured (g03 was measured unplanned)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    for i in range(points.count()):  # hovering a point names its candidate
        box = points.nth(i).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        label = page.locator("#plot-parity g.hovertext")
        label.wait_for(timeout=5000)
        if (label.text_content() or "").startswith("g01: measured 5.21"):
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # a click opens it
            page.wait_for_url(f"{base}/campaigns/{CAMPAIGN}/candidates/g01")
            break
    else:
        pytest.fail("no parity point's hover label names g01")
    assert "g01" in page.locator("h1").inner_text()
    assert not page_errors
    context.close()
