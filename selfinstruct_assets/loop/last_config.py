"""The profile the user chose, kept by the runs sensors launch: each op's config as its last materialisation ran.

    run_config = last_run_config(context.instance, JOB_ASSETS[job.name])
    dg.RunRequest(run_key=..., run_config=run_config)

`make demo` runs main_job with the quick profile (benchmark_scores on 41 questions, 6 windows); a refresh launched
with no run config would run every op on its defaults instead (123 questions, 10 windows): other questions, so
nothing scored before could be reused, and a refresh that costs more than the run that built everything. Each op
takes the config of the run that last materialised it (the refresh's own config after the first refresh, so a
profile chosen once stays chosen until the user materialises the op with another).
"""

from collections.abc import Iterable

import dagster as dg


def last_run_config(instance: dg.DagsterInstance, asset_names: Iterable[str]) -> dict:
    """{"ops": {op: its last config}} for the ops materialising `asset_names` ({} when none ran with config)."""
    ops: dict = {}
    for name in asset_names:
        event = instance.get_latest_materialization_event(dg.AssetKey(name))
        if event is None or not event.step_key:
            continue
        run = instance.get_run_by_id(event.run_id)
        op = event.step_key  # the op's name (a multi-asset's op materialises several assets)
        config = ((run.run_config if run else None) or {}).get("ops", {}).get(op)
        if config and op not in ops:
            ops[op] = config
    return {"ops": ops} if ops else {}
