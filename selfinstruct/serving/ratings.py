"""Ratings of served answers as feedback inbox rows (`source: human`), and the requests they rate.

    rows = rating_rows(record, score=0.0, reviewer="ana", corrected=(text, start, end), contract_text=text)
    write_rows(inbox_for("feedback"), rows)      # one new inbox file, in the format intake/feedback.py reads
    rated_requests(inbox_for("feedback"))        # request ids some row already rates

Dagster-free. A row's `event_id` is `<request_id>-<action>-<8 hex>`, so the feedback inbox itself says which requests
were rated. A rating rates the served answer (score 0-1); a correction is its own row: the reviewer's verbatim quote
(checked to be that slice of the contract) or "No such clause.", scored 1, so it outranks the served answer as human
rows do in preference pairs. The reviewer's name goes in `comment`; nothing else of the request (no header, no
token) is written.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, datetime

from selfinstruct.answering import NO_CLAUSE
from selfinstruct.serving.request_errors import RequestError, utf8_text

ACTIONS = ("right", "wrong", "no_clause", "correct", "rate")
MAX_COMMENT = 2000  # the feedback inbox's limits
MAX_REVIEWER = 100
_EVENT = re.compile(r"^([0-9a-f]{16})-(?:" + "|".join(ACTIONS) + r")-[0-9a-f]{8}$")


def check_reviewer(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise RequestError("a reviewer name is needed: send the X-Reviewer header or sign in on /review/login", 401)
    name = " ".join(utf8_text(name, "reviewer").split())
    if len(name) > MAX_REVIEWER:
        raise RequestError(f"reviewer name is {len(name)} characters; at most {MAX_REVIEWER}", 422)
    return name


def check_score(score: object) -> float:
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise RequestError(f"score must be a number in [0, 1], got {json.dumps(score)[:40]}", 422)
    if not 0 <= score <= 1:
        raise RequestError(f"score {score} is out of range: 0 (wrong) to 1 (right)", 422)
    return float(score)


def check_correction(contract_text: str, quote: object, start: object = None, end: object = None) -> tuple:
    """(quote, start, end) of a corrected answer: "No such clause.", or a verbatim slice of the contract (at the
    given offsets when they are sent, else its first occurrence)."""
    if not isinstance(quote, str) or not quote.strip():
        raise RequestError("corrected_quote must be a non-empty string: a verbatim quote or 'No such clause.'", 422)
    quote = utf8_text(quote, "corrected_quote").strip()
    if quote == NO_CLAUSE:
        return quote, None, None
    if len(quote) > 4000:
        raise RequestError(f"corrected_quote is {len(quote)} characters; at most 4000", 413)
    if start is not None or end is not None:
        if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
            raise RequestError("start and end must both be whole numbers (contract offsets) or both be left out", 422)
        if not 0 <= start < end <= len(contract_text):
            raise RequestError(
                f"start..end must be contract offsets, 0 <= start < end <= {len(contract_text)} (its length), "
                f"got {start}..{end}; select the span again",
                422,
            )
        if contract_text[start:end].strip() != quote:
            raise RequestError(
                f"corrected_quote is not the contract's text at {start}..{end}; select the span again", 422
            )
        lead = len(contract_text[start:end]) - len(contract_text[start:end].lstrip())
        return quote, start + lead, start + lead + len(quote)
    at = contract_text.find(quote)
    if at < 0:
        raise RequestError("corrected_quote is not a verbatim slice of the contract; copy the clause exactly", 422)
    return quote, at, at + len(quote)


def _row(record: dict, action: str, answer: str, score: float, comment: str) -> dict:
    return {
        "event_id": f"{record['request_id']}-{action}-{uuid.uuid4().hex[:8]}",
        "question": record["question"],
        "answer": answer,
        "contract_id": record["contract_id"],
        "score": score,
        "comment": comment[:MAX_COMMENT],
        "source": "human",
        "scale": "0-1",
    }


def rating_rows(record: dict, action: str, reviewer: str, score: float | None = None, corrected=None) -> list[dict]:
    """The feedback rows of one action on a request record (question, answer, contract_id, adapter_id, request_id).

    right / wrong: the served answer scored 1 / 0; no_clause: "No such clause." scored 1; correct: `corrected`
    (quote, start, end) scored 1; rate: the served answer at `score`, plus the correction row when one is given.
    """
    if action not in ACTIONS:
        raise RequestError(f"unknown action {str(action)[:40]!r}; one of {', '.join(ACTIONS)}", 422)
    about = f"reviewer: {reviewer}; request {record['request_id']} answered by {record.get('adapter_id', '?')}"
    if action in ("right", "wrong"):
        return [_row(record, action, record["answer"], 1.0 if action == "right" else 0.0, about)]
    if action == "no_clause":
        return [_row(record, action, NO_CLAUSE, 1.0, f"{about}; there is no such clause")]
    rows = [] if action == "correct" else [_row(record, "rate", record["answer"], check_score(score), about)]
    if corrected is not None:
        quote, start, end = corrected
        where = "" if start is None else f" at {start}..{end}"
        served = record["answer"][:300]
        rows.append(_row(record, "correct", quote, 1.0, f"{about}; correction{where} of the served answer: {served}"))
    elif action == "correct":
        raise RequestError("a correction needs the corrected quote", 422)
    return rows


def write_rows(inbox, rows: list[dict]) -> str:
    """Publish rows as one new feedback inbox file (whole or not at all); its location."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    data = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows).encode()
    return inbox.write(f"review-{stamp}-{uuid.uuid4().hex[:8]}.jsonl", data)


def rated_requests(inbox) -> set[str]:
    """Request ids that a row of the feedback inbox rates (event ids written by `rating_rows`)."""
    out = set()
    for f in inbox.files():
        try:
            data = inbox.read(f.name)
        except OSError:
            continue
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                event = json.loads(line).get("event_id", "")
            except (ValueError, AttributeError):
                continue
            if isinstance(event, str) and (m := _EVENT.match(event)):
                out.add(m.group(1))
    return out
