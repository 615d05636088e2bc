"""The quality gate: `serving_candidate` (best adapter of the latest benchmark), a blocking check, `serving_model`.

`serving_model` only materialises when `candidate_not_worse` passes, so a regression stops the run before
it reaches users: the run fails with the check's metadata, `promotion_decisions` records it, and the
adapter served before stays. Snapshots under `<home>/serving/adapters/<adapter_id>` never change, so
`selfinstruct promote --to ...` can roll back to any of them.
"""

import json
from datetime import datetime, timezone

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from resources.local_lm import adapter_hash
from resources.project import ProjectHome

from ..constants import DUCKDB_POOL, LOOP
from ..tables import append_rows
from .serving import adapter_dir, current, gate, pick_candidate, promote, snapshot_adapter
from .serving_table import serving_table

DECISIONS_SCHEMA = {"run_id": pl.Utf8, "created_at": pl.Datetime("us"), "candidate_method": pl.Utf8,
                    "candidate_adapter_id": pl.Utf8, "served_adapter_id": pl.Utf8, "metric": pl.Utf8,
                    "candidate_score": pl.Float64, "served_score": pl.Float64, "tolerance": pl.Float64,
                    "passed": pl.Boolean, "reason": pl.Utf8}


class ServingConfig(dg.Config):
    metric: str = "cuad_match"  # the held-out score the gate compares
    tolerance: float = 0.02  # the largest drop of `metric` (absolute) a candidate may show and still be served


def latest_benchmark(duckdb: DuckDBResource) -> list[dict]:
    with duckdb.get_connection() as conn:
        cur = conn.execute("select * from benchmark_scores where run_id = "
                           "(select run_id from benchmark_scores order by created_at desc limit 1)")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]


def _candidate_file(home: ProjectHome):
    return home.subdir("serving") / "candidate.json"


@dg.asset(group_name=LOOP, pool=DUCKDB_POOL, deps=["benchmark_scores"])
def serving_candidate(context: dg.AssetExecutionContext, config: ServingConfig, home: ProjectHome,
                      duckdb: DuckDBResource) -> dg.MaterializeResult:
    """The best adapter of the latest benchmark run, snapshotted, and its gate decision against the served one."""
    rows = latest_benchmark(duckdb)
    cand = pick_candidate(rows, config.metric)
    served = next((r for r in rows if r["method"] == "serving"), None)  # benchmarked in the same run
    root = home.subdir("serving")
    if cand is None:
        decision = {"passed": False, "reason": "no adapter has a score in the latest benchmark run",
                    "metric": config.metric}
        record = {"decision": decision}
    else:
        # Without a "serving" row (nothing was served when the benchmark ran) the served entry's own, older
        # scores are the fallback; the reason then says which run they came from.
        served = served or current(root)
        decision = gate(cand, served, config.tolerance, config.metric)
        source = home.subdir("adapters") / cand["method"]
        if not adapter_hash(source).startswith(cand["adapter_id"]):  # checked before anything is published
            raise RuntimeError(f"adapters/{cand['method']} changed after benchmark run {cand['run_id']}: "
                               "re-materialise benchmark_scores, then serving_candidate")
        snap = snapshot_adapter(source, root, cand["adapter_id"])
        record = {"decision": decision, "entry": {
            "method": cand["method"], "adapter_id": cand["adapter_id"], "path": str(snap),
            "scores": {k: cand.get(k) for k in ("cuad_match", "judge_score", "token_f1", "exact_match")},
            "benchmark_run_id": cand["run_id"]}}
    tmp = _candidate_file(home).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, default=str, indent=2))
    tmp.replace(_candidate_file(home))
    append_rows(duckdb, "promotion_decisions", pl.DataFrame([{
        "run_id": context.run_id, "created_at": datetime.now(timezone.utc).replace(tzinfo=None),
        "candidate_method": cand and cand["method"], "candidate_adapter_id": cand and cand["adapter_id"],
        "served_adapter_id": (current(root) or {}).get("adapter_id"), "metric": config.metric,
        "candidate_score": decision.get("candidate"), "served_score": decision.get("current"),
        "tolerance": config.tolerance, "passed": decision["passed"], "reason": decision["reason"]}],
        schema=DECISIONS_SCHEMA))
    return dg.MaterializeResult(metadata={"passed": decision["passed"], "reason": decision["reason"],
                                          "candidate": (cand or {}).get("method", "none")})


@dg.asset_check(asset=serving_candidate, blocking=True,
                description="the candidate is not worse than the served adapter beyond the tolerance")
def candidate_not_worse(home: ProjectHome) -> dg.AssetCheckResult:
    decision = json.loads(_candidate_file(home).read_text())["decision"]
    return dg.AssetCheckResult(passed=bool(decision["passed"]), metadata={
        k: v for k, v in decision.items() if isinstance(v, (str, int, float, bool))})


@dg.asset(group_name=LOOP, pool=DUCKDB_POOL, deps=[serving_candidate])
def serving_model(context: dg.AssetExecutionContext, home: ProjectHome) -> dg.Output[pl.DataFrame]:
    """The adapter users should serve (method, path, scores); it moves only when candidate_not_worse passes."""
    root = home.subdir("serving")
    record = json.loads(_candidate_file(home).read_text())
    now = current(root)
    if now is not None and now["adapter_id"] == record["entry"]["adapter_id"]:
        context.log.info(f"serving_model: {now['method']} {now['adapter_id']} is already served")
    else:
        now = promote(root, record["entry"], reason=record["decision"]["reason"])
    table = serving_table(root)
    return dg.Output(table, metadata={"method": now["method"], "adapter_id": now["adapter_id"],
                                      "path": str(adapter_dir(root, now)),
                                      "entries": table.height})
