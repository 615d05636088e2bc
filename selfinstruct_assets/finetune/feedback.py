"""The feedback inbox: scored (question, answer) rows about CUAD contracts, dropped as JSON Lines files.

    selfinstruct feedback add --question Q --answer A --contract-id C --score 4 --scale 1-5
    selfinstruct feedback import rows.jsonl

Dagster-free. Writers put `NAME.jsonl.tmp` (any name not ending in `.jsonl`) in the inbox, by default
`$SELFINSTRUCT_HOME/inbox/feedback/`, and rename it to `NAME.jsonl` when it is complete, so a reader
never sees half a file: names not ending in `.jsonl` and dot-files are neither read nor rejected.

One JSON object per line with `event_id`, `question`, `answer`, `contract_id`, `score` and optionally
`comment` (default ""), `source` ("human" default, or "ai") and `scale` ("0-1" or "1-5"). Any other key is
rejected, so a typo never passes silently. Blank lines are skipped.

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
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

FEEDBACK_COLUMNS = ("event_id", "question", "answer", "contract_id", "score", "comment", "source", "file", "line")
REJECT_COLUMNS = ("file", "line", "reason", "raw")

REQUIRED = ("event_id", "question", "answer", "contract_id", "score")
OPTIONAL = ("comment", "source", "scale")
SOURCES = ("human", "ai")
SCALES = ("0-1", "1-5")
MAX_CHARS = {"question": 4000, "answer": 4000, "comment": 2000, "event_id": 200}
MAX_RAW_CHARS = 500
_JSON_TYPES = {str: "string", int: "number", float: "number", bool: "boolean", type(None): "null",
               list: "array", dict: "object"}


class FeedbackError(ValueError):
    """A feedback row that cannot be accepted; the message is the reason."""


def feedback_inbox(home: Path) -> Path:
    return Path(home) / "inbox" / "feedback"


def _show(value: object, limit: int = 80) -> str:
    # Reasons quote the offending value, cut short so a 10 MB field does not become a 10 MB reason.
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


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
        raise FeedbackError(f"score {score} is out of range: allowed are 0 to 1, or 1 to 5 "
                            "(normalised as (score - 1) / 4); set scale '0-1' or '1-5' to be explicit")
    low, high = scale.split("-")
    raise FeedbackError(f"score {score} is out of range for scale {scale!r}: allowed are {low} to {high}")


def _check_type(row: dict, field: str, want: tuple[type, ...], name: str) -> None:
    value = row[field]
    if isinstance(value, bool) and bool not in want or not isinstance(value, want):
        raise FeedbackError(f"wrong type for {field} (expected {name}, got {_JSON_TYPES.get(type(value), 'value')})")


def parse_feedback_line(text: str, contracts: Mapping[str, str]) -> dict:
    """One JSON line checked and normalised to the feedback fields (without file/line); FeedbackError if bad."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FeedbackError(f"invalid JSON: {exc.msg} (line char {exc.colno})") from None
    except RecursionError:
        raise FeedbackError("invalid JSON: nested too deeply") from None
    if not isinstance(row, dict):
        raise FeedbackError(f"not a JSON object (got {_JSON_TYPES.get(type(row), 'value')})")
    unknown = sorted(set(row) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise FeedbackError(f"unknown field(s) {', '.join(map(_show, unknown))}; allowed: "
                            f"{', '.join(REQUIRED + OPTIONAL)}")
    for field in REQUIRED:
        if field not in row:
            raise FeedbackError(f"missing field {field}")
    for field in ("event_id", "question", "answer", "contract_id", "comment", "source", "scale"):
        if field in row:
            _check_type(row, field, (str,), "a string")
    _check_type(row, "score", (int, float), "a number")
    for field in ("event_id", "question", "answer"):
        if not row[field].strip():
            raise FeedbackError(f"empty {field}")
    for field, limit in MAX_CHARS.items():
        if len(row.get(field, "")) > limit:
            raise FeedbackError(f"oversize {field}: {len(row[field])} chars, at most {limit} allowed")
    if row.get("source", "human") not in SOURCES:
        raise FeedbackError(f"wrong value for source: {_show(row['source'])} (expected 'human' or 'ai')")
    if row.get("scale", "0-1") not in SCALES:
        raise FeedbackError(f"wrong value for scale: {_show(row['scale'])} (expected '0-1' or '1-5')")
    if row["contract_id"] not in contracts:
        raise FeedbackError(f"unknown contract_id {_show(row['contract_id'])}: it must be a contract_id from "
                            "cuad_contracts (selfinstruct query \"select contract_id from cuad_contracts\")")
    return {"event_id": row["event_id"], "question": row["question"], "answer": row["answer"],
            "contract_id": row["contract_id"], "score": normalise_score(row["score"], row.get("scale")),
            "comment": row.get("comment", ""), "source": row.get("source", "human")}


def _read_file(path: Path, contracts: Mapping[str, str], seen: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Rows and rejects of one file; `seen` maps accepted event ids to where they were first seen, and grows."""
    rows: list[dict] = []
    rejects: list[dict] = []
    # Split on \n only: str.splitlines would also cut at U+2028 and friends, which JSON strings may hold.
    for number, data in enumerate(path.read_bytes().split(b"\n"), start=1):
        if number == 1 and data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        data = data.removesuffix(b"\r")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raw = data.decode("utf-8", errors="replace")[:MAX_RAW_CHARS]
            reason = f"not valid UTF-8: byte 0x{data[exc.start]:02x} at position {exc.start}"
            rejects.append({"file": path.name, "line": number, "reason": reason, "raw": raw})
            continue
        if not text.strip():
            continue
        try:
            row = parse_feedback_line(text, contracts)
            first = seen.get(row["event_id"])
            if first is not None:
                raise FeedbackError(f"duplicate event_id {_show(row['event_id'])} (already seen {first})")
        except FeedbackError as exc:
            rejects.append({"file": path.name, "line": number, "reason": str(exc), "raw": text[:MAX_RAW_CHARS]})
            continue
        seen[row["event_id"]] = f"in file {path.name} line {number}"
        rows.append({**row, "file": path.name, "line": number})
    return rows, rejects


def _seen(seen_event_ids: Iterable[str]) -> dict[str, str]:
    return {event_id: "in seen_event_ids (accepted before)" for event_id in seen_event_ids}


def read_feedback_file(path: Path, contracts: Mapping[str, str],
                       seen_event_ids: Iterable[str] = ()) -> tuple[list[dict], list[dict]]:
    """Valid rows and rejects of one file, whatever its name (the same rules as the inbox)."""
    return _read_file(Path(path), contracts, _seen(seen_event_ids))


def inbox_files(folder: Path) -> list[Path]:
    """The complete files of the inbox in name order: `*.jsonl`, not hidden."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.name.endswith(".jsonl") and not p.name.startswith(".")
                   and p.is_file()), key=lambda p: p.name)


def read_feedback_inbox(folder: Path, contracts: Mapping[str, str],
                        seen_event_ids: Iterable[str] = ()) -> tuple[list[dict], list[dict]]:
    """(valid rows, rejects) of every complete file in `folder`, read in sorted name order."""
    seen = _seen(seen_event_ids)
    rows: list[dict] = []
    rejects: list[dict] = []
    for path in inbox_files(folder):
        try:
            file_rows, file_rejects = _read_file(path, contracts, seen)
        except FileNotFoundError:  # moved away by a consumer between listing and reading
            continue
        rows += file_rows
        rejects += file_rejects
    return rows, rejects


def write_feedback_file(folder: Path, rows: Sequence[dict]) -> Path:
    """Publish validated rows as one new inbox file; returns its path.

    Rows are as `parse_feedback_line` or the readers return them; their file and line are not written.

    Scores are already on 0–1, so each line is written with `scale` "0-1" and reads back unchanged.
    The file is written as `NAME.jsonl.tmp`, synced, then renamed: readers see all of it or nothing.
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
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{stamp}-{uuid.uuid4().hex}.jsonl"
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
