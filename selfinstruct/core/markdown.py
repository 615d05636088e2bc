"""Metadata tables as Markdown, the form the Dagster UI renders for `MetadataValue.md`."""

from __future__ import annotations

from collections.abc import Sequence


def _cell(value, digits: int) -> str:
    text = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")  # a pipe or a newline would break the row


def md_table(rows: Sequence[dict], columns: Sequence[str], digits: int = 3) -> str:
    """One Markdown row per dict, `columns` in order; floats rounded to `digits`, a missing key shown as None."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c), digits) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
