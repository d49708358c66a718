"""The load generator of ``e2t-al bench web-load``, run as its own process: locust (as a library) patches the
standard library with gevent on import, which must not happen inside the CLI, the web server or the tests.

    python -m e2t_al.bench.web_load_driver PLAN.json OUT.json

PLAN: {"host", "campaign", "users": [{"name", "password", "token", "kind"}], "duration", "candidates", "unit",
"value_range", "proposal_ids", "csv_rows", "csv_every"}. OUT: per route (method and path pattern) the count and the
50/95/99th percentile latency, the errors (intended refusals are not errors) and every write the server acknowledged
or refused, with the unique note it carried, so that the store can be checked afterwards.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import gevent  # noqa: E402
from locust import HttpUser, between, task  # noqa: E402
from locust.clients import HttpSession  # noqa: E402
from locust.env import Environment  # noqa: E402

PLAN: dict = {}
WRITES: list[dict] = []  # {"note", "acknowledged": bool, "status"}
SIGNED_IN: list[str] = []  # people past their sign-in
INTENDED = {409}  # a decision on an item someone else decided first, a duplicate: refusals the app should give


def _note() -> str:
    return f"load-{uuid.uuid4().hex}"


def _value() -> float:
    low, high = PLAN["value_range"]
    return round(random.uniform(low, high), 4)


class Lab(HttpUser):
    """One person at the lab's web app: signs in once (pages), holds an API token (API)."""

    abstract = True
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.person = PLAN["people"][self.kind].pop()
        self.campaign = PLAN["campaign"]
        self.page = f"/campaigns/{self.campaign}"
        self.api_headers = {"Authorization": f"Bearer {self.person['token']}"}
        login = self.client.get("/login", name="GET /login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
        self.client.post("/login", data={"username": self.person["name"], "password": self.person["password"],
                                         "csrf_token": csrf, "next": "/"}, name="POST /login", allow_redirects=False)
        account = self.client.get("/account", name="GET /account")
        self.csrf = re.search(r'name="csrf_token" value="([^"]+)"', account.text).group(1)
        SIGNED_IN.append(self.person["name"])

    def record(self, response, note: str) -> None:
        acknowledged = response.status_code == 201 or (response.status_code == 303 and "error" not in response.headers.get("location", ""))
        WRITES.append({"note": note, "acknowledged": acknowledged, "status": response.status_code})


class Reader(Lab):
    """Viewers and reviewers reading: dashboards, proposal and measurement pages, the API's reads."""

    kind = "reader"
    weight = 8

    @task(3)
    def dashboard(self):
        self.client.get(self.page, name="GET /campaigns/{name}")

    @task(2)
    def proposals_page(self):
        self.client.get(f"{self.page}/proposals", name="GET /campaigns/{name}/proposals")

    @task(1)
    def measurements_page(self):
        self.client.get(f"{self.page}/measurements", name="GET /campaigns/{name}/measurements")

    @task(2)
    def api_reads(self):
        self.client.get(f"/api/campaigns/{self.campaign}", headers=self.api_headers, name="GET /api/campaigns/{name}")
        self.client.get(f"/api/campaigns/{self.campaign}/domains", headers=self.api_headers, name="GET /api/campaigns/{name}/domains")
        self.client.get(f"/api/proposals?campaign={self.campaign}", headers=self.api_headers, name="GET /api/proposals")


class Experimentalist(Lab):
    """Measurements through the API and through the page's form, each with a unique note."""

    kind = "experimentalist"
    weight = 2

    @task(2)
    def api_measurement(self):
        note = _note()
        with self.client.post("/api/measurements", headers=self.api_headers, name="POST /api/measurements", catch_response=True,
                              json={"campaign": self.campaign, "candidate": random.choice(PLAN["candidates"]), "value": _value(),
                                    "unit": PLAN["unit"], "notes": note}) as response:
            if response.status_code in INTENDED:
                response.success()
            self.record(response, note)

    @task(1)
    def form_measurement(self):
        note = _note()
        with self.client.post(f"{self.page}/measurements", name="POST /campaigns/{name}/measurements", allow_redirects=False,
                              catch_response=True, data={"csrf_token": self.csrf, "candidate": random.choice(PLAN["candidates"]),
                                                         "value": str(_value()), "unit": PLAN["unit"], "notes": note}) as response:
            if response.status_code in INTENDED | {303}:
                response.success()
            self.record(response, note)


class Reviewer(Lab):
    """Decisions on the open proposals; a decision someone else took first is an intended 409."""

    kind = "reviewer"
    weight = 1

    @task
    def decide(self):
        item = random.choice(PLAN["proposal_ids"])
        with self.client.post(f"/api/proposals/{item}/decision", headers=self.api_headers, name="POST /api/proposals/{id}/decision",
                              json={"decision": random.choice(["approved", "rejected"])}, catch_response=True) as response:
            if response.status_code in INTENDED:
                response.success()


def uploader(environment: Environment) -> None:
    """One CSV preview of ``csv_rows`` rows every ``csv_every`` seconds, as an experimentalist of its own."""
    person = PLAN["people"]["uploader"][0]
    client = HttpSession(base_url=PLAN["host"], request_event=environment.events.request, user=None)
    login = client.get("/login", name="GET /login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    client.post("/login", data={"username": person["name"], "password": person["password"], "csrf_token": csrf, "next": "/"},
                name="POST /login", allow_redirects=False)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/account", name="GET /account").text).group(1)
    rows = "".join(f"{random.choice(PLAN['candidates'])},{_value()},{PLAN['unit']}\n" for _ in range(PLAN["csv_rows"]))
    while True:
        client.post(f"/campaigns/{PLAN['campaign']}/measurements/upload", data={"csrf_token": csrf},
                    files={"file": ("plate.csv", ("candidate,value,unit\n" + rows).encode(), "text/csv")},
                    name="POST /campaigns/{name}/measurements/upload (preview)")
        gevent.sleep(PLAN["csv_every"])


def main(plan_path: str, out_path: str) -> None:
    PLAN.update(json.loads(open(plan_path).read()))
    people = {"reader": [], "experimentalist": [], "reviewer": [], "uploader": []}
    for person in PLAN["users"]:
        people[person["kind"]].append(person)
    PLAN["people"] = people
    counts = {kind: len(people[kind]) for kind in ("reader", "experimentalist", "reviewer")}
    environment = Environment(user_classes=[Reader, Experimentalist, Reviewer], host=PLAN["host"])
    Reader.fixed_count, Experimentalist.fixed_count, Reviewer.fixed_count = counts["reader"], counts["experimentalist"], counts["reviewer"]
    runner = environment.create_local_runner()
    runner.start(sum(counts.values()), spawn_rate=max(10, sum(counts.values())))
    clock, everyone = time.monotonic(), sum(counts.values())
    while len(SIGNED_IN) < everyone and time.monotonic() - clock < 120:  # the sign-in burst (argon2) is not the steady state
        gevent.sleep(0.2)
    warm_up = time.monotonic() - clock
    environment.stats.reset_all()
    background = gevent.spawn(uploader, environment) if people["uploader"] else None
    gevent.sleep(PLAN["duration"])
    runner.quit()
    if background is not None:
        background.kill()
    stats = environment.stats
    routes = {entry.name: {  # the names carry the method
        "count": entry.num_requests, "failures": entry.num_failures,
        "p50_ms": entry.get_response_time_percentile(0.5), "p95_ms": entry.get_response_time_percentile(0.95),
        "p99_ms": entry.get_response_time_percentile(0.99),
        "histogram": {str(ms): count for ms, count in entry.response_times.items()}} for entry in stats.entries.values()}
    errors = [{"route": e.name, "error": str(e.error)[:300], "count": e.occurrences} for e in stats.errors.values()]
    with open(out_path, "w") as handle:
        json.dump({"routes": routes, "errors": errors, "writes": WRITES, "requests": stats.total.num_requests,
                   "failures": stats.total.num_failures, "warm_up_seconds": round(warm_up, 1)}, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
