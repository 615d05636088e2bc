"""The loop as its users drive it: `selfinstruct serve` as a real process, requests on train-split contracts,
ratings through the review page's own routes (sign in, the queue, `POST /review/rate`), and what came of them.

Used by tests/test_loop_e2e.py (tiny model) and benchmarks/bench_loop.py --via-serve (a copy of a demo home).
Only the standard library on the client side: what a script or a browser would send.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from procs import OPENER, start, stop, wait_http

from selfinstruct.core.tables import query_readonly

ACTIONS = ("wrong", "right", "no_clause")  # buttons of the review page, in turn
REVIEWER = "loop-e2e"
_CARD = re.compile(r'<article class="card" data-request="([0-9a-f]{16})"')


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the sign-in's 303 carries the cookie: read it, do not follow
        return None


_SIGN_IN = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def start_serve(env: dict, log: Path, port: int, start_s: float = 600.0) -> tuple[subprocess.Popen, str]:
    """`selfinstruct serve --port PORT` on loopback; (process, base url) once /v1/models answers."""
    proc = start("selfinstruct", ["serve", "--port", str(port), "--poll-s", "1"], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/v1/models", proc, log, start_s)
    except BaseException:
        stop(proc)
        raise
    return proc, url


def call(url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 300) -> tuple[int, dict]:
    """(status, JSON body) of a GET (no body) or a JSON POST; HTTP errors come back, not raised."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with OPENER.open(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def train_questions(database: str, n: int) -> list[tuple[str, str]]:
    """`n` (contract_id, question) pairs on train-split contracts, spread over contracts (feedback on them trains)."""
    _, rows = query_readonly(
        "select contract_id, question from (select a.contract_id, a.question, row_number() over "
        "(partition by a.contract_id order by a.question) as k from cuad_annotations a "
        "join cuad_contracts c using (contract_id) where c.split = 'train') "
        f"order by k, contract_id limit {int(n)}",
        database,
    )
    return [(c, q) for c, q in rows]


def ask(url: str, contract_id: str, question: str) -> dict:
    status, body = call(f"{url}/v1/answers", {"contract_id": contract_id, "question": question})
    if status != 200:
        raise AssertionError(f"POST /v1/answers -> {status}: {body}")
    return body


def sign_in(url: str, reviewer: str = REVIEWER) -> str:
    """The review page's sign-in form; the session cookie it sets, as a Cookie header."""
    form = urllib.parse.urlencode({"reviewer": reviewer}).encode()
    req = urllib.request.Request(f"{url}/review/login", data=form)
    try:
        _SIGN_IN.open(req, timeout=60)
    except urllib.error.HTTPError as exc:  # the 303 to /review, not followed
        if exc.code != 303:
            raise
        return exc.headers["set-cookie"].split(";", 1)[0]
    raise AssertionError("POST /review/login set no session: it answered without the 303 to /review")


def queue_ids(url: str, cookie: str) -> list[str]:
    """Request ids of the answers the review page shows, in its order."""
    req = urllib.request.Request(f"{url}/review", headers={"Cookie": cookie})
    with OPENER.open(req, timeout=300) as resp:
        return _CARD.findall(resp.read().decode())


def rate(url: str, cookie: str, request_id: str, action: str) -> int:
    """What the page's script posts for one button; the feedback rows written."""
    status, body = call(f"{url}/review/rate", {"request_id": request_id, "action": action}, {"Cookie": cookie})
    if status != 200:
        raise AssertionError(f"POST /review/rate -> {status}: {body}")
    return body["rows"]


def ask_and_rate(url: str, database: str, n: int) -> dict:
    """`n` requests answered by serve, each rated once through the review page (the buttons in turn); what the
    page showed, the ratings, and when the last one was saved (time.time())."""
    records = [ask(url, c, q) for c, q in train_questions(database, n)]
    if len(records) < n:
        raise AssertionError(f"only {len(records)} train-split questions in cuad_annotations, {n} asked for")
    cookie = sign_in(url)
    shown = queue_ids(url, cookie)
    rows = sum(rate(url, cookie, r["request_id"], ACTIONS[i % len(ACTIONS)]) for i, r in enumerate(records))
    return {"records": records, "shown": shown, "rows": rows, "last_rating_at": time.time()}


def served_adapter(url: str) -> str:
    status, body = call(f"{url}/v1/models")
    if status != 200:
        raise AssertionError(f"GET /v1/models -> {status}: {body}")
    return body["data"][0]["adapter_id"]


def wait_served(url: str, adapter_id: str, timeout_s: float) -> float | None:
    """Seconds until serve names `adapter_id` as the served adapter, or None if it does not within `timeout_s`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if served_adapter(url) == adapter_id:
            return time.monotonic() - t0
        time.sleep(1)
    return None


def decision_of(database: str, run_id: str) -> dict | None:
    """The promotion_decisions row the run `run_id` appended (None if none)."""
    if not re.fullmatch(r"[0-9a-f-]{36}", run_id):
        raise ValueError(f"not a Dagster run id: {run_id!r}")
    cols, rows = query_readonly(f"select * from promotion_decisions where run_id = '{run_id}'", database)
    return dict(zip(cols, rows[0])) if rows else None


def benchmark_methods(database: str, run_id: str) -> set[str]:
    if not re.fullmatch(r"[0-9a-f-]{36}", run_id):
        raise ValueError(f"not a Dagster run id: {run_id!r}")
    _, rows = query_readonly(f"select distinct method from benchmark_scores where run_id = '{run_id}'", database)
    return {m for (m,) in rows}


def materialised_at(instance, run_id: str, asset: str) -> float | None:
    """When the run `run_id` recorded `asset`'s materialisation (its rows are written before), or None."""
    import dagster as dg

    for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        if event.dagster_event.asset_key.to_user_string() == asset:
            return event.timestamp
    return None
