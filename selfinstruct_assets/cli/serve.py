"""`selfinstruct serve`: the served adapter over HTTP (OpenAI-compatible + /v1/answers) and the review page.

    selfinstruct serve                                  # http://127.0.0.1:8000, review page at /review
    selfinstruct serve --candidate-share 0.1            # 10 % of requests to the gate's latest candidate
    SELFINSTRUCT_SERVE_TOKEN=$(openssl rand -hex 16) selfinstruct serve --host 0.0.0.0

Wiring only: the resources the assets use (default_resources), the retriever benchmark_scores uses
(retriever_for: the fine-tuned one when retriever_model published it), LocalLM for each adapter, the trained
answer judge when answer_judge recorded one, and the tables the service validates against; the logic is
selfinstruct.serving.service / app / review.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from selfinstruct.answering.windows import N_WINDOWS
from selfinstruct.core import settings
from selfinstruct.core.artifacts import serving_root
from selfinstruct.core.known import existing_tables
from selfinstruct.core.tables import QueryError, query_readonly

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _rows(sql: str, database: str, patience_s: float = 120.0) -> list[tuple]:
    return query_readonly(sql, database=database, patience_s=patience_s)[1]


def contract_texts(database: str) -> dict[str, str]:
    """contract_id -> text of cuad_contracts and added_contracts (whichever exist)."""
    tables = existing_tables(lambda sql: _rows(sql, database))
    if "cuad_contracts" not in tables:
        raise QueryError(f"{database} has no cuad_contracts table: run `make demo` (or materialise it) first")
    parts = [f"select contract_id, text from {t}" for t in ("cuad_contracts", "added_contracts") if t in tables]
    return dict(_rows(" union all ".join(parts), database))


def annotations(database: str) -> tuple[dict, dict]:
    """({(contract_id, question): gold clauses}, {question: category}) from cuad_annotations."""
    rows = _rows("select contract_id, question, category, answer_texts from cuad_annotations", database)
    golds = {(c, q): [t for t in (texts or []) if t] for c, q, _, texts in rows}
    return golds, {q: cat for _, q, cat, _ in rows}


class GateCandidate:
    """The gate's latest candidate (serving_candidate's row) as {adapter_id, method, folder}; re-read at most every
    `every_s`, with a short wait on the DuckDB lock, so a running Dagster step never stalls the poller."""

    def __init__(self, database: str, root: Path, store, every_s: float = 30.0):
        self.database, self.root, self.store, self.every_s = database, root, store, every_s
        self._at, self._entry = -float("inf"), None

    def __call__(self) -> dict | None:
        from selfinstruct.serving.registry import adapter_dir

        if time.monotonic() - self._at < self.every_s:
            return self._entry
        try:
            tables = existing_tables(lambda sql: _rows(sql, self.database, 2.0))
            rows = (
                _rows(
                    "select candidate_adapter_id, candidate_method, path from serving_candidate "
                    "where path is not null limit 1",
                    self.database,
                    2.0,
                )
                if "serving_candidate" in tables
                else []
            )
        except QueryError as exc:  # locked by a running step: keep the last answer
            log.info("serve: serving_candidate not read now (%s)", exc)
            return self._entry
        self._at = time.monotonic()
        if rows:
            adapter_id, method, path = rows[0]
            self._entry = {
                "adapter_id": adapter_id,
                "method": method,
                "folder": adapter_dir(self.root, {"path": path}, self.store),
            }
        else:
            self._entry = None
        return self._entry


def named_candidate(root: Path, store, adapter_id: str) -> Callable[[], dict]:
    """A promoted adapter named by the operator (an adapter_id or its 6+ character prefix from the history)."""
    from selfinstruct.serving.registry import adapter_dir, history, listing

    entries = [e for e in history(root, store) if len(adapter_id) >= 6 and e["adapter_id"].startswith(adapter_id)]
    if len({e["adapter_id"] for e in entries}) != 1:
        raise ValueError(
            f"--candidate {adapter_id!r} names {'several' if entries else 'no'} promoted adapter; give an "
            "adapter_id (6+ characters) of `selfinstruct promote --list`, or 'latest' for the gate's candidate:\n"
            + listing(history(root, store), root)
        )
    entry = entries[-1]
    found = {"adapter_id": entry["adapter_id"], "method": entry["method"], "folder": adapter_dir(root, entry, store)}
    return lambda: found


def recorded_margin(database, adapter_id: str, method: str) -> float | None:
    """The abstain margin benchmark_scores chose for this adapter (the base model: method 'base') in its latest
    run; -inf when it chose to always quote (stored as null), None when no run recorded one."""
    from selfinstruct.core.tables import query_readonly

    by = "method = 'base'" if adapter_id == "base" else f"adapter_id = '{adapter_id[:12]}'"
    try:
        _, rows = query_readonly(
            f"select abstain_margin from benchmark_scores where {by} order by created_at desc limit 1", database
        )
    except Exception:  # no benchmark_scores table yet, or one written before margins were recorded
        return None
    if not rows:
        return None
    return float("-inf") if rows[0][0] is None else float(rows[0][0])


def build_app(args: argparse.Namespace, token: str | None):
    """The ASGI app over the project's home, tables, index and models."""
    import dagster as dg

    from selfinstruct.answering import SpanScorer
    from selfinstruct.core.inbox import inbox_for
    from selfinstruct.core.paths import duckdb_path, project_home
    from selfinstruct.serving.app import create_app
    from selfinstruct.serving.serve_settings import ServeSettings
    from selfinstruct.serving.service import ServedPointer, Service
    from selfinstruct_assets.cli.promote import serving_store
    from selfinstruct_assets.definitions import default_resources
    from selfinstruct_assets.locations import recorded_path
    from selfinstruct_assets.retrievers import retriever_for

    home, database = project_home(), args.database or duckdb_path()
    # What needs only the tables and the flags comes first: a missing database or a bad flag is named in a second,
    # not after the base model has been prepared and the index opened.
    contracts = contract_texts(database)
    serve_settings = ServeSettings(
        k=args.k,
        n_windows=args.n_windows,
        margin=0.0 if args.margin is None else args.margin,
        candidate_share=args.candidate_share,
        poll_s=args.poll_s,
    )
    res = default_resources(
        database, base_model=settings.get("SELFINSTRUCT_BASE_MODEL"), embedder=settings.get("SELFINSTRUCT_EMBEDDER")
    )
    root, store = serving_root(home), serving_store(home)
    # what the assets recorded (the fine-tuned retriever, the judge); without DAGSTER_HOME nothing was recorded
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    retrieve, which = retriever_for(instance, res["embedder"], res["chroma"])
    base_dir = res["base_model"].dir()

    def load_scorer(adapter: Path | None) -> SpanScorer:
        tok, model, _ = res["llm"].local_lm(base_dir, adapter).load()  # as benchmark_scores loads each model
        return SpanScorer(model, tok)

    if args.candidate == "latest":
        candidate = GateCandidate(database, root, store)
    else:
        candidate = named_candidate(root, store, args.candidate)
    judge = None
    if (path := recorded_path(instance, "answer_judge")) is not None:
        from selfinstruct.judging.trained_judge import TrainedJudge

        judge = TrainedJudge(path)
    golds, categories = annotations(database)
    service = Service(
        retrieve,
        contracts,
        load_scorer,
        ServedPointer(root, store),
        inbox_for("queries"),
        serve_settings,
        candidate=candidate,
        margin_for=None if args.margin is not None else (lambda a, m: recorded_margin(database, a, m)),
    )
    print(
        f"selfinstruct serve: retriever {which}; judge {'trained: ' + str(path) if judge else 'none'}; "
        f"A/B share {args.candidate_share} to {args.candidate}",
        file=sys.stderr,
    )
    return create_app(
        service,
        inbox_for("feedback"),
        inbox_for("queries"),
        token=token,
        judge=judge,
        golds=lambda c, q: golds.get((c, q)),
        categories=categories.get,
        review_size=args.review_size,
    )


def check_bind(host: str, token: str | None) -> None:
    """A token is required for any address but loopback."""
    loopback = host in LOOPBACK
    try:
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if not loopback and not token:
        raise ValueError(
            f"--host {host} reaches beyond this machine: set SELFINSTRUCT_SERVE_TOKEN (e.g. "
            "SELFINSTRUCT_SERVE_TOKEN=$(openssl rand -hex 16)) so every route asks for it, or bind 127.0.0.1"
        )


def cmd_serve(args: argparse.Namespace) -> int:
    token = settings.get("SELFINSTRUCT_SERVE_TOKEN") or None
    try:
        check_bind(args.host, token)
        app = build_app(args, token)
    except ValueError as exc:
        print(f"selfinstruct: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"--candidate-share must lie in [0, 1], got {value}")
    return value


def _whole(flag: str, low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            where = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{flag} must be {where}, got {value}")
        return value

    return parse


def _poll_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--poll-s must be a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"--poll-s must be a positive, finite number of seconds, got {text!r}")
    return value


def _margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--margin must be a number (-inf: always quote), got {text!r}") from None
    if value != value:
        raise argparse.ArgumentTypeError("--margin must be a number (-inf: always quote), got nan")
    return value


def add_serve_parser(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve the promoted adapter over HTTP (OpenAI-compatible) + review page")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (anything but loopback needs the token)")
    p.add_argument("--port", type=_whole("--port", 0, 65535), default=8000, help="TCP port (0: any free one)")
    p.add_argument("--database", default=None, help="DuckDB file (default: $SELFINSTRUCT_HOME/selfinstruct.duckdb)")
    p.add_argument("--candidate-share", type=_share, default=0.0, help="share of requests for the candidate arm")
    p.add_argument(
        "--candidate", default="latest", help="'latest' (the gate's latest candidate) or a promoted adapter_id"
    )
    p.add_argument(
        "--margin",
        type=_margin,
        default=None,
        help="'No such clause.' wins unless beaten by this; default: each adapter's abstain margin recorded by "
        "its latest benchmark_scores row (chosen on train-split questions), 0.0 where none is recorded",
    )
    p.add_argument("--k", type=_whole("--k", 1), default=3, help="chunks retrieved per question")
    p.add_argument(
        "--n-windows", type=_whole("--n-windows", 0), default=N_WINDOWS, help="candidate windows BM25 keeps (0: all)"
    )
    p.add_argument("--poll-s", type=_poll_seconds, default=1.0, help="seconds between reads of the served pointer")
    p.add_argument("--review-size", type=_whole("--review-size", 1), default=20, help="answers on the review page")
    p.set_defaults(func=cmd_serve)
