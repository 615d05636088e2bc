"""The query log of `selfinstruct serve`: each answered request as a query inbox line, published in batches.

    log = QueryLog(inbox_for("queries"), flush_s=0.5)
    log.start()                   # a background thread publishes the buffer as one inbox file per flush_s
    log.add(query_line(record))   # only buffered: a request never waits for the inbox
    log.close()                   # publishes what is left

Dagster-free; the lines are in the format selfinstruct.intake.queries reads.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import UTC, datetime

log = logging.getLogger(__name__)


class QueryLog:
    """Answered requests as query inbox lines, published as one new file per `flush_s` with traffic.

    `add` only appends to a buffer under a lock, so concurrent requests neither wait for the inbox nor lose or
    double a line: each line is taken out of the buffer exactly once, by the flush that publishes it. A write that
    fails puts its lines back (they go out with the next flush). `close` publishes what is left."""

    def __init__(self, inbox, flush_s: float = 0.5, prefix: str = "serve"):
        self.inbox, self.flush_s, self.prefix = inbox, flush_s, prefix
        self._lines: list[str] = []
        self._lock, self._write_lock = threading.Lock(), threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0  # lines published so far

    def add(self, line: dict) -> None:
        text = json.dumps(line, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")  # a line that cannot be written fails here, never in the buffer that later lines share
        with self._lock:
            self._lines.append(text)

    def flush(self) -> int:
        """Publish the buffered lines as one inbox file; how many."""
        with self._write_lock:  # one file at a time, so lines keep their order across files
            with self._lock:
                lines, self._lines = self._lines, []
            if not lines:
                return 0
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            try:
                self.inbox.write(
                    f"{self.prefix}-{stamp}-{uuid.uuid4().hex[:8]}.jsonl", ("\n".join(lines) + "\n").encode()
                )
            except Exception:
                with self._lock:
                    self._lines[:0] = lines
                raise
            self.written += len(lines)
            return len(lines)

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.flush_s):
                try:
                    self.flush()
                except Exception as exc:  # kept in the buffer; the next tick tries again
                    log.error("query log: could not write to %s: %s", getattr(self.inbox, "location", "inbox"), exc)

        self._thread = threading.Thread(target=loop, name="query-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()


def query_line(record: dict) -> dict:
    """A request record in the query inbox's format (selfinstruct.intake.queries)."""
    return {
        "query_id": record["request_id"],
        "question": record["question"],
        "contract_id": record["contract_id"],
        "timestamp": record["timestamp"],
        "answer": record["answer"],
        "latency_s": record["latency_s"],
        "adapter": record["adapter_id"],
        "arm": record["arm"],
    }
