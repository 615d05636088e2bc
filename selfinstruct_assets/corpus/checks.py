"""Blocking checks on the corpus: a failing one stops every step downstream of the contracts and chunks."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from selfinstruct_assets.held_out import scalar


@dg.asset_check(asset="contract_chunks", blocking=True, description="chunk_id is unique")
def chunk_ids_unique(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    dupes = scalar(duckdb, "select count(*) - count(distinct chunk_id) from contract_chunks")
    return dg.AssetCheckResult(passed=dupes == 0, metadata={"duplicate_ids": dupes})


@dg.asset_check(
    asset="contract_chunks",
    blocking=True,
    description="every contract has at least one chunk",
    additional_deps=["cuad_contracts"],
)
def every_contract_chunked(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    missing = scalar(
        duckdb,
        "select count(*) from cuad_contracts c where not exists "
        "(select 1 from contract_chunks k where k.contract_id = c.contract_id)",
    )
    return dg.AssetCheckResult(passed=missing == 0, metadata={"contracts_without_chunks": missing})


@dg.asset_check(asset="cuad_contracts", blocking=True, description="no contract is in both splits")
def splits_disjoint(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    both = scalar(
        duckdb,
        "select count(*) from (select contract_id from cuad_contracts "
        "group by contract_id having count(distinct split) > 1 or count(*) > 1)",
    )
    return dg.AssetCheckResult(passed=both == 0, metadata={"contracts_in_both_or_repeated": both})


CORPUS_CHECKS = [chunk_ids_unique, every_contract_chunked, splits_disjoint]
