"""Sensors of the continuous loop: small factories that take the job they launch.

Each reads its inbox on every tick (30 s by default) and keeps a JSON cursor; the decisions themselves are
Dagster-free (`loop/triggers.py`). Sensors only read the DuckDB file (read-only, waiting out a writer).
"""

import json
import time

import dagster as dg
from dagster_duckdb import DuckDBResource

from resources.project import InboxResource
from selfinstruct.core.inbox_types import InboxUnavailable
from selfinstruct.core.known import read_known, splits
from selfinstruct.core.tables import QueryError, query_readonly
from selfinstruct.intake.loop_settings import LoopSettings
from selfinstruct.intake.triggers import (
    Decision,
    contracts_decision,
    drift_decision,
    feedback_decision,
    new_files_decision,
)
from selfinstruct_assets.loop.jobs import JOB_ASSETS
from selfinstruct_assets.loop.last_config import last_run_config
from selfinstruct_assets.partitions import ADDED_CONTRACTS

TICK_S = 30


SENSOR_PATIENCE_S = 20  # well inside the daemon's 60 s limit per tick; a locked file means "skip, try next tick"


def _unreadable(exc: QueryError) -> dg.SkipReason:
    # A writer's lock clears by the next tick; anything else (a damaged file) is said every tick until fixed.
    if exc.locked:
        return dg.SkipReason(f"a run is writing the DuckDB file; the next tick tries again ({exc})")
    return dg.SkipReason(f"cannot read the contracts: {exc}")


def _log_skipped(context: dg.SensorEvaluationContext, kind: str, skipped: list[tuple[str, str]]) -> None:
    # The tick log in the UI is where an unreadable inbox entry is explained; the other files went on.
    for name, reason in skipped:
        context.log.warning(f"{kind} inbox: skipped {name}: {reason}")


def _known(duckdb: DuckDBResource) -> dict[str, tuple[str, str]]:
    return read_known(lambda sql: query_readonly(sql, database=duckdb.database, patience_s=SENSOR_PATIENCE_S)[1])


def feedback_sensor(job: dg.JobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name="feedback_sensor",
        job=job,
        minimum_interval_seconds=TICK_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Refreshes preference pairs, DPO/ORPO, the benchmark and the gate when feedback arrives.",
    )
    def _sensor(context: dg.SensorEvaluationContext, inbox: InboxResource, duckdb: DuckDBResource):
        settings = LoopSettings.from_env()
        try:
            contracts = splits(_known(duckdb))
        except QueryError as exc:
            return _unreadable(exc)
        if not contracts:
            return dg.SkipReason("no cuad_contracts table yet: materialise the corpus first (make demo)")
        source = inbox.get("feedback")
        try:
            d = feedback_decision(
                source.files(),
                source.read,
                contracts,
                context.cursor,
                time.time(),
                settings.feedback_min_rows,
                settings.feedback_max_wait_s,
            )
        except InboxUnavailable as exc:
            return dg.SkipReason(str(exc))
        _log_skipped(context, "feedback", d.skipped)
        context.update_cursor(d.cursor)
        if not d.request:
            return dg.SkipReason(d.reason)
        context.log.info(d.reason)
        return dg.RunRequest(
            run_key=d.run_key,
            run_config=last_run_config(context.instance, JOB_ASSETS[job.name]),
            tags={"selfinstruct/trigger": "feedback", "selfinstruct/new_rows": str(d.new_rows)},
        )

    return _sensor


def new_contracts_sensor(job: dg.JobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name="new_contracts_sensor",
        job=job,
        minimum_interval_seconds=TICK_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Adds each new inbox contract as a partition and indexes only that contract.",
    )
    def _sensor(context: dg.SensorEvaluationContext, inbox: InboxResource, duckdb: DuckDBResource):
        try:
            known = _known(duckdb)
            cuad = {
                cid
                for (cid,) in query_readonly(
                    "select contract_id from cuad_contracts", database=duckdb.database, patience_s=SENSOR_PATIENCE_S
                )[1]
            }
        except QueryError as exc:
            return _unreadable(exc)
        try:
            d, rejects = contracts_decision(inbox.get("contracts"), context.cursor, known, cuad, now=time.time())
        except InboxUnavailable as exc:
            return dg.SensorResult(skip_reason=str(exc), cursor=context.cursor)
        _log_skipped(context, "contracts", d.skipped)
        for r in rejects:  # the tick log in the UI is where a dropped file is explained
            context.log.warning(f"contracts inbox: {r['source']}: {r['reason']} ({r['action']})")
        if not d.request:
            return dg.SensorResult(skip_reason=d.reason, cursor=d.cursor)
        have = set(context.instance.get_dynamic_partitions(ADDED_CONTRACTS.name))
        new_ids = [cid for cid, _ in d.items if cid not in have]
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    partition_key=cid,
                    run_key=f"contract:{cid}:{sha[:12]}",
                    tags={"selfinstruct/trigger": "new_contract"},
                )
                for cid, sha in d.items
            ],
            dynamic_partitions_requests=[ADDED_CONTRACTS.build_add_request(new_ids)] if new_ids else [],
            cursor=d.cursor,
        )

    return _sensor


def drift_sensor(query_job: dg.JobDefinition, regenerate_job: dg.JobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name="drift_sensor",
        jobs=[query_job, regenerate_job],
        minimum_interval_seconds=TICK_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Reads new production queries; when drift_report finds drift, regenerates the adapters.",
    )
    def _sensor(context: dg.SensorEvaluationContext, inbox: InboxResource):
        state = json.loads(context.cursor or "{}")
        source = inbox.get("queries")
        try:
            queries = new_files_decision(
                source.files(), source.read, json.dumps(state.get("queries", {})), "query", time.time()
            )
        except InboxUnavailable as exc:  # drift is still acted on: it needs the instance, not the inbox
            queries = Decision(False, str(exc), json.dumps(state.get("queries", {})))
        _log_skipped(context, "queries", queries.skipped)
        state["queries"] = json.loads(queries.cursor)
        requests = []
        if queries.request:
            requests.append(
                dg.RunRequest(
                    job_name=query_job.name,
                    run_key=queries.run_key,
                    run_config=last_run_config(context.instance, JOB_ASSETS[query_job.name]),
                    tags={"selfinstruct/trigger": "queries"},
                )
            )
        records = context.instance.fetch_materializations(dg.AssetKey("drift_report"), limit=1).records
        latest = records[0] if records else None
        md = latest.asset_materialization.metadata if latest else {}
        drift = drift_decision(
            state.get("drift", {}),
            latest.storage_id if latest else None,
            bool(md["drifted"].value) if "drifted" in md else False,
            md["reasons"].value if "reasons" in md else "",
            time.time(),
            LoopSettings.from_env().drift_cooldown_s,
        )
        state["drift"] = json.loads(drift.cursor)
        if drift.request:
            requests.append(
                dg.RunRequest(
                    job_name=regenerate_job.name,
                    run_key=drift.run_key,
                    run_config=last_run_config(context.instance, JOB_ASSETS[regenerate_job.name]),
                    tags={"selfinstruct/trigger": "drift"},
                )
            )
        for d in (queries, drift):
            context.log.info(d.reason)
        skip = None if requests else f"{queries.reason}; {drift.reason}"
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(state), skip_reason=skip)

    return _sensor
