"""Held-out guarantees for the RAG and synthetic-data assets (blocking)."""

import json

import dagster as dg
from dagster_duckdb import DuckDBResource

from selfinstruct_assets.locations import required_path


def _eval_texts(duckdb: DuckDBResource) -> list[str]:
    with duckdb.get_connection() as conn:
        return [r[0] for r in conn.execute("select text from cuad_contracts where split = 'eval'").fetchall()]


def demo_leaks(program_json: dict, eval_texts: list[str]) -> list[str]:
    """Demo excerpts (context or answer) that occur in an eval-split contract."""
    leaks = []
    for pred in program_json.values():
        for demo in pred.get("demos", []) if isinstance(pred, dict) else []:
            for field in ("context", "answer"):
                piece = " ".join(str(demo.get(field, "")).split())[:300]
                if len(piece) >= 40 and any(piece in " ".join(t.split()) for t in eval_texts):
                    leaks.append(piece[:80])
    return leaks


@dg.asset_check(
    asset="optimized_rag_program",
    blocking=True,
    additional_deps=["cuad_contracts"],
    description="no demo of the compiled program comes from an eval-split contract",
)
def optimized_demos_held_out(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    program = json.loads(required_path(context.instance, "optimized_rag_program").read_text())
    leaks = demo_leaks(program, _eval_texts(duckdb))
    return dg.AssetCheckResult(passed=not leaks, metadata={"leaking_demos": len(leaks), "examples": str(leaks[:3])})


@dg.asset_check(
    asset="synthetic_qa",
    blocking=True,
    additional_deps=["cuad_contracts"],
    description="no synthetic triplet comes from an eval-split contract",
)
def synthetic_qa_held_out(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        n = conn.execute(
            "select count(*) from synthetic_qa q join cuad_contracts c using (contract_id) where c.split = 'eval'"
        ).fetchone()[0]
        seeds = conn.execute(
            "select count(*) from seed_qa q join cuad_contracts c using (contract_id) where c.split = 'eval'"
        ).fetchone()[0]
    return dg.AssetCheckResult(passed=n == 0 and seeds == 0, metadata={"eval_triplets": n, "eval_seeds": seeds})


RAG_CHECKS = [optimized_demos_held_out, synthetic_qa_held_out]
