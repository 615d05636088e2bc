"""The feedback inbox: scored (question, answer) rows about CUAD contracts, dropped as JSON Lines files.

    selfinstruct feedback add --question Q --answer A --contract-id C --score 4 --scale 1-5
    selfinstruct feedback import rows.jsonl
    rows, rejects = read_feedback_inbox(Inbox("s3://bucket/inbox/feedback/"), {"c-1": "train"})

Dagster-free. The inbox is a local folder, by default `$SELFINSTRUCT_HOME/inbox/feedback/`, or any
`selfinstruct.core.inbox.Inbox` (an S3 prefix too). Writers put `NAME.jsonl.tmp` there and rename it to
`NAME.jsonl` when it is complete, so a reader never sees half a file: names not ending in `.jsonl` and
dot-files are neither read nor rejected.

One JSON object per line with `event_id`, `question`, `answer`, `contract_id`, `score` and optionally
`comment` (default ""), `source` ("human" default, or "ai") and `scale` ("0-1" or "1-5"). Any other key is
rejected, so a typo never passes silently. Blank lines are skipped; a BOM and CRLF line ends are tolerated.

Score rule, to 0–1: with `scale` "0-1" the score must lie in [0, 1] and is kept; with `scale` "1-5" it must
lie in [1, 5] and becomes (score - 1) / 4. Without `scale`, a score in [0, 1] is read as 0–1 and a score in
(1, 5] as 1–5, so a bare 1 means the top of 0–1: send `scale` "1-5" for the lowest of five stars.
Anything else (negative, above 5, NaN, outside its declared scale, a boolean) is rejected.

Every rejected line comes back with its file, 1-based line, reason and the raw line (first 500 chars).
An event id counts once: a repeat of an id already accepted (earlier in the inbox, or passed in as
`seen_event_ids`) is rejected and the first row is kept. Rows about eval-split contracts are valid
feedback; training filters them out, since they are kept here with their contract_id.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from selfinstruct.core.inbox import Inbox, as_inbox
from selfinstruct.intake.jsonl import (
    check_contract,
    check_fields,
    check_lengths,
    check_types,
    load_object,
    read_inbox_rows,
    read_rows,
    show_value,
)

FEEDBACK_COLUMNS = ("event_id", "question", "answer", "contract_id", "score", "comment", "source", "file", "line")

REQUIRED = ("event_id", "question", "answer", "contract_id", "score")
OPTIONAL = ("comment", "source", "scale")
SOURCES = ("human", "ai")
SCALES = ("0-1", "1-5")
MAX_CHARS = {"question": 4000, "answer": 4000, "comment": 2000, "event_id": 200}


class FeedbackError(ValueError):
    """A feedback row that cannot be accepted; the message is the reason."""


def feedback_inbox(home: Path) -> Path:
    return Path(home) / "inbox" / "feedback"


def normalise_score(score: float, scale: str | None) -> float:
    """The score on 0–1 by the module's rule; FeedbackError when it fits no allowed range."""
    if isinstance(score, float) and math.isnan(score):
        raise FeedbackError(f"score {score} is out of range: NaN is not a score")
    if scale == "0-1" or (scale is None and 0 <= score <= 1):
        if 0 <= score <= 1:
            return float(score)
    elif scale == "1-5" or (scale is None and 1 < score <= 5):
        if 1 <= score <= 5:
            return (score - 1) / 4
    if scale is None:
        raise FeedbackError(
            f"score {score} is out of range: allowed are 0 to 1, or 1 to 5 "
            "(normalised as (score - 1) / 4); set scale '0-1' or '1-5' to be explicit"
        )
    low, high = scale.split("-")
    raise FeedbackError(f"score {score} is out of range for scale {scale!r}: allowed are {low} to {high}")


def parse_feedback_line(text: str, contracts: Mapping[str, str]) -> dict:
    """One JSON line checked and normalised to the feedback fields (without file/line); FeedbackError if bad."""
    row = load_object(text, FeedbackError)
    check_fields(row, REQUIRED, OPTIONAL, FeedbackError)
    strings = ("event_id", "question", "answer", "contract_id", "comment", "source", "scale")
    check_types(row, strings, (str,), "a string", FeedbackError)
    check_types(row, ("score",), (int, float), "a number", FeedbackError)
    for field in ("event_id", "question", "answer"):
        if not row[field].strip():
            raise FeedbackError(f"empty {field}")
    check_lengths(row, MAX_CHARS, FeedbackError)
    if row.get("source", "human") not in SOURCES:
        raise FeedbackError(f"wrong value for source: {show_value(row['source'])} (expected 'human' or 'ai')")
    if row.get("scale", "0-1") not in SCALES:
        raise FeedbackError(f"wrong value for scale: {show_value(row['scale'])} (expected '0-1' or '1-5')")
    check_contract(row["contract_id"], contracts, FeedbackError)
    return {
        "event_id": row["event_id"],
        "question": row["question"],
        "answer": row["answer"],
        "contract_id": row["contract_id"],
        "score": normalise_score(row["score"], row.get("scale")),
        "comment": row.get("comment", ""),
        "source": row.get("source", "human"),
    }


def _seen(seen_event_ids: Iterable[str]) -> dict[str, str]:
    return {event_id: "in seen_event_ids (accepted before)" for event_id in seen_event_ids}


def read_feedback_bytes(
    name: str, data: bytes, contracts: Mapping[str, str], seen: Mapping[str, str] | Iterable[str] = ()
) -> tuple[list[dict], list[dict]]:
    """Rows and rejects of one file's bytes named `name`. `seen`: ids accepted before; a dict (id -> where first
    seen) grows in place with this file's ids, so files read in turn share it; other iterables are copied."""
    seen = seen if isinstance(seen, dict) else _seen(seen)
    return read_rows(name, data, lambda text, _: parse_feedback_line(text, contracts), "event_id", FeedbackError, seen)


def read_feedback_file(
    path: Path, contracts: Mapping[str, str], seen_event_ids: Iterable[str] = ()
) -> tuple[list[dict], list[dict]]:
    """Valid rows and rejects of one local file, whatever its name (the same rules as the inbox)."""
    path = Path(path)
    return read_feedback_bytes(path.name, path.read_bytes(), contracts, _seen(seen_event_ids))


def inbox_files(folder: Path) -> list[Path]:
    """The complete files of a local inbox folder in name order: `*.jsonl`, not hidden."""
    return [Path(folder) / f.name for f in Inbox(str(folder)).files()]


def read_feedback_inbox(
    inbox_or_folder: Inbox | Path | str, contracts: Mapping[str, str], seen_event_ids: Iterable[str] = ()
) -> tuple[list[dict], list[dict]]:
    """(valid rows, rejects) of every complete file of the inbox (or local folder), in sorted name order.

    A last line still being written (no newline yet, its file modified in the last SETTLE_S seconds) waits
    for the next read, as feedback_sensor waits for it: it is never rejected as a fragment."""
    return read_inbox_rows(
        as_inbox(inbox_or_folder),
        lambda name, data, seen: read_feedback_bytes(name, data, contracts, seen),
        _seen(seen_event_ids),
        wait_for_lines=True,
    )


def write_feedback_file(inbox_or_folder: Inbox | Path | str, rows: Sequence[dict]) -> Path | str:
    """Publish validated rows as one new inbox file; returns its Path for a folder, its location for an Inbox.

    Rows are as `parse_feedback_line` or the readers return them; their file and line are not written.
    Scores are already on 0–1, so each line is written with `scale` "0-1" and reads back unchanged.
    `Inbox.write` publishes the file whole: readers see all of it or nothing.
    """
    if not rows:
        raise ValueError("no feedback rows to write")
    lines = []
    for row in rows:
        extra = set(row) - set(FEEDBACK_COLUMNS)
        if extra:
            raise ValueError(f"feedback rows hold only {FEEDBACK_COLUMNS}; got also {sorted(extra)}")
        if not 0 <= row["score"] <= 1:
            raise ValueError(f"score {row['score']} is not normalised to 0-1; parse rows with parse_feedback_line")
        record = {k: row[k] for k in REQUIRED}
        record.update(comment=row.get("comment", ""), source=row.get("source", "human"), scale="0-1")
        lines.append(json.dumps(record, ensure_ascii=False, allow_nan=False))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name, data = f"{stamp}-{uuid.uuid4().hex}.jsonl", ("\n".join(lines) + "\n").encode("utf-8")
    written = as_inbox(inbox_or_folder).write(name, data)
    return written if isinstance(inbox_or_folder, Inbox) else Path(written)
