"""The held-out guards every group's blocking checks share: rows of eval-split contracts, models trained on them."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from selfinstruct.core.held_out import eval_leaks


def scalar(duckdb: DuckDBResource, sql: str) -> int:
    with duckdb.get_connection() as conn:
        return int(conn.execute(sql).fetchone()[0])


def eval_rows(duckdb: DuckDBResource, table: str) -> int:
    """Rows of `table` whose contract is in the eval split (a held-out table has none)."""
    return scalar(
        duckdb, f"select count(*) from {table} t join cuad_contracts c using (contract_id) where c.split = 'eval'"
    )


def trained_only_on_train(
    context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource, asset: str, metrics_file: str
) -> dg.AssetCheckResult:
    """Shared by the trained-model checks: the contracts the model's metrics file lists are all train-split."""
    from selfinstruct.judging.trained_judge import trained_contracts
    from selfinstruct_assets.locations import recorded_path

    path = recorded_path(context.instance, asset)
    trained = trained_contracts(path, metrics_file) if path is not None else None
    if trained is None:
        # The packaged model (a fallback) or nothing published: no CUAD contract was trained on.
        return dg.AssetCheckResult(passed=True, metadata={"trained_contracts": 0, "note": "no trained model recorded"})
    with duckdb.get_connection() as conn:
        eval_ids = {
            r[0] for r in conn.execute("select contract_id from cuad_contracts where split = 'eval'").fetchall()
        }
    leaked = eval_leaks(trained, eval_ids)
    return dg.AssetCheckResult(
        passed=not leaked,
        metadata={
            "trained_contracts": len(trained),
            "eval_split_contracts": len(leaked),
            "examples": ", ".join(leaked[:5]),
        },
    )
