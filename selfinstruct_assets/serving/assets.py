"""The quality gate: `serving_candidate` and `promotion_decisions`, the blocking `candidate_not_worse`, `serving_model`.

`serving_model` only materialises when `candidate_not_worse` passes, so a regression stops the run before
it reaches users: the run fails with the check's metadata, `promotion_decisions` records it, and the
adapter served before stays. Snapshots under `<home>/serving/adapters/<adapter_id>` never change, so
`selfinstruct promote --to ...` can roll back to any of them.
"""

from pathlib import Path

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from resources.model_folders import adapter_hash
from resources.project import ProjectHome
from resources.s3 import ArtifactsResource
from selfinstruct.core.artifacts import serving_root
from selfinstruct.core.tables import append_rows
from selfinstruct.serving.decision import CANDIDATE_SCHEMA, DECISIONS_SCHEMA, decision_row, entry_of, no_candidate
from selfinstruct.serving.gate import gate, paired_gate, pick_candidate
from selfinstruct.serving.registry import current, entry_location, promote, snapshot_adapter
from selfinstruct.serving.table import serving_table
from selfinstruct_assets.constants import DUCKDB_POOL, SERVING
from selfinstruct_assets.locations import required_path


class ServingConfig(dg.Config):
    metric: str = "cuad_match"  # the held-out score the gate compares, per question
    # The largest drop of `metric` (absolute) a candidate may show and still be served: it passes only when the
    # 95 % lower bound of (candidate - served) on the run's paired questions, clustered by contract, is above it.
    tolerance: float = 0.02


def latest_benchmark(duckdb: DuckDBResource) -> list[dict]:
    with duckdb.get_connection() as conn:
        cur = conn.execute(
            "select * from benchmark_scores where run_id = "
            "(select run_id from benchmark_scores order by created_at desc limit 1)"
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]


def benchmark_answers(duckdb: DuckDBResource, run_id: str, method: str) -> list[dict]:
    """One method's benchmark_answers rows of one run ([] before the table exists)."""
    with duckdb.get_connection() as conn:
        tables = "select 1 from information_schema.tables where table_name = 'benchmark_answers'"
        if not conn.execute(tables).fetchall():
            return []
        cur = conn.execute(
            "select * from benchmark_answers where run_id = ? and method = ? order by question_id", [run_id, method]
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]


def decide(duckdb: DuckDBResource, cand: dict, served: dict | None, config: ServingConfig) -> dict:
    """Nothing served: the candidate starts. Else both models' answers to this run's questions, paired."""
    if served is None:
        return gate(cand, None, config.tolerance, config.metric)
    theirs = benchmark_answers(duckdb, cand["run_id"], "serving")
    if not theirs:  # a benchmark run from before the served adapter existed: nothing to pair with
        return {
            **no_candidate(config.metric, config.tolerance),
            "reason": (
                f"the served adapter {served['adapter_id']} has no answers in benchmark run {cand['run_id']}: "
                "re-materialise benchmark_scores (it answers with the served adapter too), then serving_candidate"
            ),
        }
    return paired_gate(
        cand["method"],
        benchmark_answers(duckdb, cand["run_id"], cand["method"]),
        theirs,
        config.tolerance,
        config.metric,
    )


def snapshot_candidate(instance: dg.DagsterInstance, serving: Path, candidate: dict, store=None) -> Path | str:
    """The candidate's immutable serving snapshot, once its weights (where its adapter asset recorded them) are
    checked to be those benchmarked."""
    source = required_path(instance, f"{candidate['method']}_adapter", "adapter_path")
    if not adapter_hash(source).startswith(candidate["adapter_id"]):  # checked before anything is published
        raise RuntimeError(
            f"{source} changed after benchmark run {candidate['run_id']}: "
            "re-materialise benchmark_scores, then serving_candidate"
        )
    return snapshot_adapter(source, serving, candidate["adapter_id"], store=store)


@dg.multi_asset(
    group_name=SERVING,
    pool=DUCKDB_POOL,
    deps=["benchmark_scores"],
    outs={
        "serving_candidate": dg.AssetOut(
            description="The best adapter of the latest benchmark run, snapshotted, "
            "with its gate decision against the served one."
        ),
        "promotion_decisions": dg.AssetOut(
            dagster_type=dg.Nothing,
            description="Every gate decision, appended: "
            "candidate and served adapter, their scores, passed and the reason.",
        ),
    },
)
def serving_candidate(
    context: dg.AssetExecutionContext,
    config: ServingConfig,
    home: ProjectHome,
    duckdb: DuckDBResource,
    artifacts: ArtifactsResource,
):
    """The best adapter of the latest benchmark run, snapshotted, and its gate decision against the served one."""
    rows, root, store = latest_benchmark(duckdb), serving_root(home.root()), artifacts.store()
    cand, served = pick_candidate(rows, config.metric), current(root, store)
    verdict, snap = no_candidate(config.metric, config.tolerance), None
    if cand is not None:
        verdict = decide(duckdb, cand, served, config)
        snap = snapshot_candidate(context.instance, root, cand, store)
    frame = pl.DataFrame([decision_row(cand, verdict, snap, served, context.run_id)], schema=CANDIDATE_SCHEMA)
    append_rows(duckdb, "promotion_decisions", frame.select(list(DECISIONS_SCHEMA)))
    shown = {"passed": verdict["passed"], "reason": verdict["reason"], "candidate": (cand or {}).get("method", "none")}
    yield dg.Output(frame, output_name="serving_candidate", metadata=shown)
    yield dg.Output(None, output_name="promotion_decisions", metadata=shown)


@dg.asset(group_name=SERVING, pool=DUCKDB_POOL)
def serving_model(
    context: dg.AssetExecutionContext, home: ProjectHome, artifacts: ArtifactsResource, serving_candidate: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """The adapter users should serve (method, path, scores); it moves only when candidate_not_worse passes."""
    decision = serving_candidate.row(0, named=True)
    if not decision["passed"]:  # the blocking check stops a run before this; a lone materialisation stops here
        raise dg.Failure(f"serving_candidate did not pass the gate: {decision['reason']}")
    root, store = serving_root(home.root()), artifacts.store()
    now = current(root, store)
    if now is not None and now["adapter_id"] == decision["candidate_adapter_id"]:
        context.log.info(f"serving_model: {now['method']} {now['adapter_id']} is already served")
    else:
        now = promote(root, entry_of(decision), reason=decision["reason"], store=store)
    table = serving_table(root, store)
    return dg.Output(
        table,
        metadata={
            "method": now["method"],
            "adapter_id": now["adapter_id"],
            "path": entry_location(root, now, store),
            "entries": table.height,
        },
    )
