"""JSON Lines logs that arrive in inboxes: lines, field checks whose messages name what is wrong, and rows.

    rows, rejects = read_inbox_rows(inbox, lambda name, data, seen: read_rows(
        name, data, lambda text, number: parse(text), "event_id", MyError, seen))

Dagster-free. Each check takes the error class to raise, so every log (feedback, queries) gives the same
reasons in its own words. A rejected line comes back with its file, 1-based line, reason and raw text (first
500 chars); an id counts once, the first row is kept and a repeat is rejected naming where it was first seen.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from selfinstruct.core.inbox_types import InboxEntryError

REJECT_COLUMNS = ("file", "line", "reason", "raw")
SETTLE_S = 10.0  # seconds unmodified after which a file without a final newline counts as complete
MAX_RAW_CHARS = 500
_JSON_TYPES = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
    list: "array",
    dict: "object",
}


def show_value(value: object, limit: int = 80) -> str:
    # Reasons quote the offending value, cut short so a 10 MB field does not become a 10 MB reason.
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), "value")


def load_object(text: str, error: type[ValueError] = ValueError) -> dict:
    """The JSON object on one line; `error` with the reason when the line is not one."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON: {exc.msg} (line char {exc.colno})") from None
    except RecursionError:
        raise error("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # Python refuses integers of over 4300 digits; the reason is before the advice
        raise error(f"invalid JSON: {str(exc).split(':')[0]}") from None
    if not isinstance(row, dict):
        raise error(f"not a JSON object (got {json_type(row)})")
    return row


def check_fields(
    row: dict, required: Sequence[str], optional: Sequence[str], error: type[ValueError] = ValueError
) -> None:
    unknown = sorted(set(row) - set(required) - set(optional))
    if unknown:
        raise error(
            f"unknown field(s) {', '.join(map(show_value, unknown))}; allowed: {', '.join((*required, *optional))}"
        )
    for field in required:
        if field not in row:
            raise error(f"missing field {field}")


def check_types(
    row: dict, fields: Sequence[str], want: tuple[type, ...], name: str, error: type[ValueError] = ValueError
) -> None:
    """Each of `fields` that the row holds is of a type in `want` (a boolean is no number); `name` says which.
    A string must be text: a lone surrogate (JSON's "\\ud800", or a command-line argument that was no UTF-8)
    cannot be written as UTF-8, so one such line would fail the table its whole file is read into."""
    for field in (f for f in fields if f in row):
        value = row[field]
        if isinstance(value, bool) and bool not in want or not isinstance(value, want):
            raise error(f"wrong type for {field} (expected {name}, got {json_type(value)})")
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                bad = value[exc.start]
                what = (
                    f"byte 0x{ord(bad) - 0xDC00:02x}, which is no UTF-8 (text in another encoding); give it as UTF-8"
                    if 0xDC80 <= ord(bad) <= 0xDCFF  # how Python keeps an undecodable byte of argv or a file name
                    else f"{bad!r}, half of a UTF-16 pair (a lone surrogate); write the character itself"
                )
                raise error(f"{field} is not text: at character {exc.start} it holds {what}") from None


def check_lengths(row: dict, limits: Mapping[str, int], error: type[ValueError] = ValueError) -> None:
    for field, limit in limits.items():
        if len(row.get(field, "")) > limit:
            raise error(f"oversize {field}: {len(row[field])} chars, at most {limit} allowed")


def check_contract(contract_id: str, contracts: Mapping[str, str], error: type[ValueError] = ValueError) -> None:
    if contract_id not in contracts:
        raise error(
            f"unknown contract_id {show_value(contract_id)}: it must be a contract_id from "
            'cuad_contracts (selfinstruct query "select contract_id from cuad_contracts")'
        )


def jsonl_lines(data: bytes) -> Iterator[tuple[int, str, str | None]]:
    """(number, text, None) per non-blank line, BOM and CRLF tolerated; (number, raw, reason) if not UTF-8."""
    # Split on \n only: str.splitlines would also cut at U+2028 and friends, which JSON strings may hold.
    for number, line in enumerate(data.split(b"\n"), start=1):
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        line = line.removesuffix(b"\r")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield (
                number,
                line.decode("utf-8", errors="replace")[:MAX_RAW_CHARS],
                f"not valid UTF-8: byte 0x{line[exc.start]:02x} at position {exc.start}",
            )
            continue
        if text.strip():
            yield number, text, None


def read_rows(
    name: str,
    data: bytes,
    parse: Callable[[str, int], dict],
    id_field: str,
    error: type[ValueError],
    seen: dict[str, str],
) -> tuple[list[dict], list[dict]]:
    """Rows (with file and line) and rejects of one file; `parse(text, line_number)` raises `error` for a bad
    line; `seen` maps accepted ids to where they were first seen, and grows."""
    rows, rejects = [], []
    for number, text, not_utf8 in jsonl_lines(data):
        try:
            if not_utf8:
                raise error(not_utf8)
            row = parse(text, number)
            first = seen.get(row[id_field])
            if first is not None:
                raise error(f"duplicate {id_field} {show_value(row[id_field])} (already seen {first})")
        except error as exc:
            rejects.append({"file": name, "line": number, "reason": str(exc), "raw": text[:MAX_RAW_CHARS]})
            continue
        seen[row[id_field]] = f"in file {name} line {number}"
        rows.append({**row, "file": name, "line": number})
    return rows, rejects


def complete_lines(data: bytes, modified: float, now: float) -> bytes:
    """`data` without a last line that may still be being written: one with no newline after it, in a file
    modified less than SETTLE_S seconds before `now`. The sensors wait by the same rule (intake.triggers)."""
    if not data or data.endswith(b"\n") or now - float(modified) >= SETTLE_S:
        return data
    return data[: data.rfind(b"\n") + 1]


def read_inbox_rows(
    inbox,
    read_file: Callable[[str, bytes, dict], tuple[list, list]],
    seen: dict[str, str] | None = None,
    wait_for_lines: bool = False,
    now: float | None = None,
) -> tuple[list[dict], list[dict]]:
    """(rows, rejects) of every complete file of `inbox` in name order, the files sharing one `seen`.

    A file that cannot be read (InboxEntryError: a broken link, a FIFO, no permission) is one reject with
    line None and the reason; the other files are read as usual. With `wait_for_lines`, a last line without
    its newline in a file modified in the last SETTLE_S seconds (before `now`, default the current time) is
    left for the next read, neither a row nor a reject: a writer may be in the middle of it."""
    seen = {} if seen is None else seen
    now = time.time() if now is None else now
    rows, rejects = [], []
    for file in inbox.files():
        try:
            data = inbox.read(file.name)
        except FileNotFoundError:  # moved away by a consumer between listing and reading
            continue
        except InboxEntryError as exc:
            rejects.append({"file": file.name, "line": None, "reason": f"file not read: {exc}", "raw": ""})
            continue
        if wait_for_lines:
            data = complete_lines(data, file.modified, now)
        file_rows, file_rejects = read_file(file.name, data, seen)
        rows += file_rows
        rejects += file_rejects
    return rows, rejects
