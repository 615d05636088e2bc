"""The contracts the project knows: CUAD's (`cuad_contracts`) and those added through the contracts inbox.

    known = read_known(lambda sql: conn.execute(sql).fetchall())
    known["4f1c..."]  # -> ("train", "<sha256>")

Dagster-free. `query` runs SQL on the project's DuckDB file (a Dagster resource's connection, or the
read-only `query_readonly` of `tables.py`); a table that does not exist yet reads as empty.
"""

from __future__ import annotations

from collections.abc import Callable

Query = Callable[[str], list[tuple]]


def existing_tables(query: Query) -> set[str]:
    return {name for (name,) in query("select table_name from information_schema.tables")}


def read_known(query: Query) -> dict[str, tuple[str, str]]:
    """contract_id -> (split, sha256) over cuad_contracts and added_contracts (either may be missing)."""
    tables = existing_tables(query)
    parts = [
        f"select contract_id, split, sha256 from {t}" for t in ("cuad_contracts", "added_contracts") if t in tables
    ]
    if not parts:
        return {}
    return {cid: (split, sha) for cid, split, sha in query(" union all ".join(parts))}


def splits(known: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {cid: split for cid, (split, _) in known.items()}


def sha_index(known: dict[str, tuple[str, str]], exclude: str | None = None) -> dict[str, str]:
    """sha256 -> contract_id, leaving out `exclude` (a contract is never a duplicate of itself)."""
    return {sha: cid for cid, (_, sha) in known.items() if cid != exclude}
