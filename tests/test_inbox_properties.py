"""Properties of the inbox readers over generated input (hypothesis): whatever arrives, nothing raises, every
line (or file) comes out as a row or as a reject with a reason, and valid rows mixed with garbage all survive."""

import json
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfinstruct.core.inbox import Inbox
from selfinstruct.corpus.cuad import contract_id_for
from selfinstruct.intake.contract_inbox import read_contract_files
from selfinstruct.intake.feedback import read_feedback_bytes, read_feedback_inbox
from selfinstruct.intake.queries import read_query_inbox

CONTRACTS = {"c-train": "train", "c-eval": "eval"}
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    modified: float


class MemoryInbox(Inbox):
    """An Inbox whose files are held in memory, so each example costs no disk."""

    def __init__(self, files: dict[str, bytes]):
        super().__init__("memory-inbox", (".jsonl", ".txt", ".zip"))
        self._files = files

    def files(self) -> list[Entry]:
        return [Entry(n, len(d), 0.0) for n, d in sorted(self._files.items())]

    def read(self, name: str) -> bytes:
        return self._files[name]


def counted_lines(data: bytes) -> set[int]:
    """Numbers of the lines a reader must account for: all but blank ones (BOM, CR and spaces ignored)."""
    numbers = set()
    for number, line in enumerate(data.split(b"\n"), start=1):
        line = (line[3:] if number == 1 and line.startswith(b"\xef\xbb\xbf") else line).removesuffix(b"\r")
        try:
            if not line.decode("utf-8").strip():
                continue
        except UnicodeDecodeError:
            pass  # undecodable is not blank: it must come out as a reject
        numbers.add(number)
    return numbers


def accounted(rows: list[dict], rejects: list[dict]) -> list[tuple[str, int]]:
    out = [(r["file"], r["line"]) for r in rows] + [(r["file"], r["line"]) for r in rejects]
    assert all(isinstance(r["reason"], str) and r["reason"] for r in rejects)
    return sorted(out)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# Objects whose keys are often the real field names, so the checks past "is it JSON" get exercised too; garbage
# ids start with "g-", valid ones with "v-", so garbage can never take a valid row's id first.
FIELDS = [
    "event_id",
    "question",
    "answer",
    "contract_id",
    "score",
    "comment",
    "source",
    "scale",
    "timestamp",
    "query_id",
    "latency_s",
]
near_rows = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), json_values, max_size=8).map(
    lambda d: {
        **d,
        **({"event_id": f"g-{d['event_id']}"} if "event_id" in d else {}),
        **({"query_id": f"g-{d['query_id']}"} if "query_id" in d else {}),
    }
)
garbage_lines = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" ")),
    st.text(max_size=60).map(lambda t: t.replace("\n", " ").encode("utf-8")),
    near_rows.map(lambda d: json.dumps(d, allow_nan=True).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
)


@FAST
@given(st.binary(max_size=400))
def test_feedback_random_bytes_never_raise_and_every_line_is_a_row_or_a_reject(data):
    rows, rejects = read_feedback_bytes("f.jsonl", data, CONTRACTS)
    assert accounted(rows, rejects) == [("f.jsonl", n) for n in sorted(counted_lines(data))]


@FAST
@given(st.lists(garbage_lines, max_size=12))
def test_feedback_garbage_lines_never_raise_and_are_each_accounted_for(lines):
    data = b"\n".join(lines)
    rows, rejects = read_feedback_bytes("f.jsonl", data, CONTRACTS)
    assert accounted(rows, rejects) == [("f.jsonl", n) for n in sorted(counted_lines(data))]


valid_feedback = st.builds(
    lambda q, score, scale, source: {
        "question": q,
        "answer": "Either party.",
        "contract_id": "c-train",
        "score": score,
        "scale": scale,
        "source": source,
    },
    st.text(min_size=1, max_size=40).filter(str.strip),
    st.sampled_from([0, 0.25, 1]),
    st.just("0-1"),
    st.sampled_from(["human", "ai"]),
)


@FAST
@given(st.lists(st.tuples(st.booleans(), valid_feedback, garbage_lines), max_size=15), st.integers(1, 3))
def test_feedback_valid_rows_among_garbage_all_come_out(mix, n_files):
    lines, valid_ids = [], []
    for i, (is_valid, row, junk) in enumerate(mix):
        if is_valid:
            valid_ids.append(f"v-{i}")
            lines.append(json.dumps({"event_id": f"v-{i}", **row}).encode())
        else:
            lines.append(junk)
    files = {f"{k}.jsonl": b"\n".join(lines[k::n_files]) for k in range(n_files)}
    rows, rejects = read_feedback_inbox(MemoryInbox(files), CONTRACTS)
    assert sorted(r["event_id"] for r in rows if r["event_id"].startswith("v-")) == sorted(valid_ids)
    assert len(rows) + len(rejects) == sum(len(counted_lines(d)) for d in files.values())


@FAST
@given(st.binary(max_size=400))
def test_query_log_random_bytes_never_raise_and_every_line_is_a_row_or_a_reject(data):
    rows, rejects = read_query_inbox(MemoryInbox({"q.jsonl": data}), CONTRACTS)
    assert accounted(rows, rejects) == [("q.jsonl", n) for n in sorted(counted_lines(data))]


valid_query = st.builds(
    lambda q, ts, latency: {"question": q, "contract_id": "c-eval", "timestamp": ts, "latency_s": latency},
    st.text(min_size=1, max_size=40).filter(str.strip),
    st.sampled_from(["2026-01-01T00:00:00Z", "2025-06-30T12:00:00+02:00", 1714564800, 0]),
    st.sampled_from([0, 0.5, 12.25]),
)


@FAST
@given(st.lists(st.tuples(st.booleans(), valid_query, garbage_lines), max_size=15))
def test_query_log_valid_rows_among_garbage_all_come_out(mix):
    lines, valid_ids = [], []
    for i, (is_valid, row, junk) in enumerate(mix):
        if is_valid:
            valid_ids.append(f"v-{i}")
            lines.append(json.dumps({"query_id": f"v-{i}", **row}).encode())
        else:
            lines.append(junk)
    data = b"\n".join(lines)
    rows, rejects = read_query_inbox(MemoryInbox({"q.jsonl": data}), CONTRACTS)
    assert sorted(r["query_id"] for r in rows if r["query_id"].startswith("v-")) == sorted(valid_ids)
    assert accounted(rows, rejects) == [("q.jsonl", n) for n in sorted(counted_lines(data))]


junk_files = st.dictionaries(
    st.tuples(st.integers(0, 20), st.sampled_from([".txt", ".zip", ".TXT", ".pdf", ""])).map(
        lambda t: f"junk_{t[0]}{t[1]}"
    ),
    st.binary(max_size=300) | st.just(b"PK\x03\x04" + b"\x00" * 40),
    max_size=6,
)


@FAST
@given(junk_files)
def test_contract_inbox_random_files_never_raise_and_each_file_is_read_or_rejected(files):
    contracts, rejects = read_contract_files(MemoryInbox(files))
    assert all(r["reason"] for r in rejects)
    seen = {c["inbox_file"] for c in contracts} | {r["source"].split(":")[0] for r in rejects}
    assert seen == set(files)


@FAST
@given(st.lists(st.text(min_size=1, max_size=80).filter(str.strip), max_size=5), junk_files)
def test_contract_inbox_valid_contracts_among_garbage_all_come_out(texts, junk):
    valid = {f"valid_{i}.txt": f"Contract {i}: {t}".encode() for i, t in enumerate(texts)}
    # Garbage texts start with a byte no valid text has, so none can repeat a valid contract's text.
    files = {**{n: b"\xff" + d for n, d in junk.items()}, **valid}
    contracts, _ = read_contract_files(MemoryInbox(files))
    assert {contract_id_for(n) for n in valid} <= {c["contract_id"] for c in contracts}


ENTRY_KINDS = ["rows", "garbage", "loop", "dangling", "fifo", "folder"]


@FAST
@given(
    st.lists(st.tuples(st.sampled_from(ENTRY_KINDS), st.lists(valid_feedback, max_size=3), garbage_lines), max_size=8)
)
def test_a_real_inbox_folder_of_mixed_entries_keeps_every_valid_row_and_rejects_each_bad_file(entries):
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        valid_ids, bad = [], []
        for i, (kind, rows, junk) in enumerate(entries):
            path = os.path.join(folder, f"{i:02d}.jsonl")
            if kind == "rows":
                ids = [f"v-{i}-{k}" for k in range(len(rows))]
                valid_ids += ids
                with open(path, "w") as f:
                    f.write("".join(json.dumps({"event_id": e, **r}) + "\n" for e, r in zip(ids, rows)))
            elif kind == "garbage":
                with open(path, "wb") as f:
                    f.write(junk + b"\n")
            elif kind == "loop":
                os.symlink(path, path)
            elif kind == "dangling":
                os.symlink(path + ".gone", path)
            elif kind == "fifo":
                os.mkfifo(path)
            else:
                os.mkdir(path)  # a folder belongs to someone else: neither read nor rejected
            if kind in ("loop", "dangling", "fifo"):
                bad.append(f"{i:02d}.jsonl")
        rows, rejects = read_feedback_inbox(Inbox(folder), CONTRACTS)
    assert sorted(r["event_id"] for r in rows if r["event_id"].startswith("v-")) == sorted(valid_ids)
    assert sorted(r["file"] for r in rejects if r["line"] is None) == bad
    assert all(r["reason"] for r in rejects)
