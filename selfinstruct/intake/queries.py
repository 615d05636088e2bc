"""The production query log: questions users asked about CUAD contracts, dropped as JSON Lines inbox files.

    from selfinstruct.core.inbox import inbox_for
    rows, rejects = read_query_inbox(inbox_for("queries"), {"c-1": "train"})
    parse_query_line('{"question": "Who may terminate?", "contract_id": "c-1", '
                     '"timestamp": "2026-05-01T12:00:00Z"}', {"c-1": "train"})

Dagster-free. The inbox is a `selfinstruct.core.inbox.Inbox` (local folder or S3 prefix) or a local folder; only
complete `*.jsonl` files are read, in name order. One JSON object per line with `question` (non-empty,
at most 4000 chars), `contract_id` (a known contract) and `timestamp`, and optionally `query_id` (at most
200 chars), `answer` (default "") and `latency_s` (seconds, at least 0; default None), and from `selfinstruct serve`
`adapter` (the adapter id that answered) and `arm` (its A/B arm), both default "". Any other key is
rejected, so a typo never passes silently. Blank lines are skipped; a BOM and CRLF line ends are tolerated.

`timestamp` is an ISO 8601 string, with an offset or naive meaning UTC, or a JSON number of POSIX
seconds; it is kept as a naive UTC datetime in `asked_at`. Clocks differ, so a timestamp up to a day
ahead of now is accepted; one further ahead is a sender's mistake (wrong zone, ms for s) and rejected.

Without `query_id`, the id is the first 16 hex chars of sha256 over the file name, line number and line,
so re-reading the same file gives the same ids. A query id counts once: a repeat is rejected, naming
where the id was first seen, and the first row is kept. Every rejected line comes back with its file,
1-based line, reason and the raw line (first 500 chars), as in the feedback inbox.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from selfinstruct.core.inbox import Inbox, as_inbox
from selfinstruct.intake.jsonl import (
    check_contract,
    check_fields,
    check_lengths,
    check_types,
    json_type,
    load_object,
    read_inbox_rows,
    read_rows,
    show_value,
)

QUERY_COLUMNS = (
    "query_id",
    "question",
    "contract_id",
    "asked_at",
    "answer",
    "latency_s",
    "adapter",
    "arm",
    "file",
    "line",
)

REQUIRED = ("question", "contract_id", "timestamp")
OPTIONAL = ("query_id", "answer", "latency_s", "adapter", "arm")
MAX_CHARS = {"question": 4000, "answer": 4000, "query_id": 200, "adapter": 200, "arm": 50}
MAX_AHEAD = timedelta(days=1)


class QueryLogError(ValueError):
    """A query log row that cannot be accepted; the message is the reason."""


def _utc_naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _now(now: datetime | None) -> datetime:
    return _utc_naive(now) if now is not None else datetime.now(UTC).replace(tzinfo=None)


def _shown(value: object) -> str:
    # Numbers are shown bare, so seconds sent as the string '1714564800' read differently from the number.
    return show_value(value) if isinstance(value, str) else json.dumps(value)[:80]


def parse_timestamp(value: object, now: datetime | None = None) -> datetime:
    """A log timestamp as a naive UTC datetime; QueryLogError if unreadable or more than a day after `now`."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise QueryLogError(
            f"wrong type for timestamp (expected an ISO 8601 string or POSIX seconds, got {json_type(value)})"
        )
    shown = _shown(value)
    try:
        if isinstance(value, str):
            asked = _utc_naive(datetime.fromisoformat(value))
        else:
            asked = datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):  # unparsable text, NaN, infinity, beyond year 1..9999
        raise QueryLogError(
            f"bad timestamp {shown}: expected ISO 8601 such as "
            "'2026-05-01T12:00:00Z', or POSIX seconds as a finite JSON number"
        ) from None
    now = _now(now)
    if asked > now + MAX_AHEAD:
        raise QueryLogError(
            f"future timestamp {shown}: {asked.isoformat()} UTC is more than 1 day "
            f"after now ({now.isoformat(timespec='seconds')} UTC); check the sender's clock, "
            "time zone, or seconds vs milliseconds"
        )
    return asked


def parse_query_line(text: str, contracts: Mapping[str, str], now: datetime | None = None) -> dict:
    """One JSON line checked and normalised to the query fields; `query_id` is None when the line has none.

    File, line and the default query id are the reader's to add. QueryLogError with the reason if bad.
    """
    row = load_object(text, QueryLogError)
    check_fields(row, REQUIRED, OPTIONAL, QueryLogError)
    check_types(
        row, ("query_id", "question", "contract_id", "answer", "adapter", "arm"), (str,), "a string", QueryLogError
    )
    check_types(row, ("latency_s",), (int, float), "a number", QueryLogError)
    for field in ("question", "query_id"):
        if field in row and not row[field].strip():
            raise QueryLogError(f"empty {field}")
    check_lengths(row, MAX_CHARS, QueryLogError)
    latency = row.get("latency_s")
    if latency is not None:
        try:
            latency = float(latency)
        except OverflowError:  # an integer too big for a float is as out of range as infinity
            latency = math.inf
        if not (math.isfinite(latency) and latency >= 0):
            raise QueryLogError(
                f"latency_s {_shown(row['latency_s'])} is out of range: it must be a finite "
                "number of seconds, at least 0"
            )
    check_contract(row["contract_id"], contracts, QueryLogError)
    return {
        "query_id": row.get("query_id"),
        "question": row["question"],
        "contract_id": row["contract_id"],
        "asked_at": parse_timestamp(row["timestamp"], now),
        "answer": row.get("answer", ""),
        "latency_s": latency,
        "adapter": row.get("adapter", ""),
        "arm": row.get("arm", ""),
    }


def default_query_id(file: str, line: int, text: str) -> str:
    """The id of a row sent without one: stable for the same file, line number and line text."""
    # NUL separates the parts unambiguously: a valid JSON line holds none raw, nor does a local file name.
    return hashlib.sha256(f"{file}\0{line}\0{text}".encode()).hexdigest()[:16]


def _parse(name: str, contracts: Mapping[str, str], now: datetime):
    def parse(text: str, number: int) -> dict:
        row = parse_query_line(text, contracts, now)
        if row["query_id"] is None:
            row["query_id"] = default_query_id(name, number, text)
        return row

    return parse


def read_query_inbox(
    inbox: Inbox | str | os.PathLike, contracts: Mapping[str, str], now: datetime | None = None
) -> tuple[list[dict], list[dict]]:
    """(valid rows, rejects) of every complete file of the inbox (or local folder), in sorted name order.

    Rows hold QUERY_COLUMNS in that order, rejects REJECT_COLUMNS. `now` (default: the current time) is
    fixed once for the whole read, so every line is held to the same future limit. A last line still being
    written (no newline yet, its file modified in the last SETTLE_S seconds) waits for the next read, as the
    feedback inbox's does: it is never rejected as a fragment.
    """
    now = _now(now)
    return read_inbox_rows(
        as_inbox(inbox),
        lambda name, data, seen: read_rows(name, data, _parse(name, contracts, now), "query_id", QueryLogError, seen),
        wait_for_lines=True,
    )
