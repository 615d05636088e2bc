"""One bad inbox entry (symlink loop, dangling link, FIFO, unreadable file) is a reject or a logged skip; the rest
flows. And inputs that used to end in a traceback: an unreadable import, a current.json of the wrong shape, an
S3 inbox without credentials: each is a message naming the thing and the fix."""

import json
import logging
import os
import threading
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from resources.project import InboxResource
from selfinstruct.core.inbox import Inbox, inbox_for
from selfinstruct.core.inbox_types import InboxEntryError, InboxUnavailable
from selfinstruct.corpus.cuad import contract_id_for
from selfinstruct.intake.contract_inbox import read_contract_files
from selfinstruct.intake.feedback import read_feedback_inbox
from selfinstruct.intake.queries import read_query_inbox
from selfinstruct.intake.triggers import feedback_decision, new_files_decision
from selfinstruct_assets.cli import main
from selfinstruct_assets.definitions import SENSORS

CONTRACTS = {"c-train": "train", "c-eval": "eval"}
BAD = ("dangling", "fifo", "loop", "unreadable")
CONTRACT_TEXT = "This Agreement is made between Acme Corp and Beta LLC for the supply of widgets.\n" * 5


def rating(event_id: str) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "question": "Who are the parties?",
            "answer": "Acme and Beta",
            "contract_id": "c-train",
            "score": 4,
            "scale": "1-5",
        }
    )


def query(question: str) -> str:
    return json.dumps({"question": question, "contract_id": "c-train", "timestamp": "2026-01-01T00:00:00Z"})


def bad_folder(folder: Path, suffix: str, good: dict[str, str], monkeypatch) -> Path:
    """`good` files plus four bad entries named <kind><suffix>; the unreadable one raises PermissionError when
    opened (tests run as root, which chmod 000 does not stop)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in good.items():
        (folder / name).write_text(text)
    os.symlink(folder / "gone", folder / f"dangling{suffix}")
    os.mkfifo(folder / f"fifo{suffix}")
    os.symlink(f"loop{suffix}", folder / f"loop{suffix}")
    (folder / f"unreadable{suffix}").write_text(next(iter(good.values())))
    real_open = os.open

    def guarded(path, flags, *args, **kwargs):
        if os.fspath(path).endswith(f"unreadable{suffix}"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded)
    return folder


def in_thread(fn, seconds: float = 10.0):
    # A FIFO opened for reading blocks until a writer comes: a hang must fail the test, not stall the suite.
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001  (handed back to the test)
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "blocked (a FIFO read?)"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_every_bad_entry_is_listed_and_its_read_says_why(tmp_path, monkeypatch):
    inbox = Inbox(str(bad_folder(tmp_path, ".jsonl", {"ok.jsonl": rating("e1") + "\n"}, monkeypatch)))
    names = [f.name for f in in_thread(inbox.files)]
    assert names == ["dangling.jsonl", "fifo.jsonl", "loop.jsonl", "ok.jsonl", "unreadable.jsonl"]
    why = {}
    for kind in BAD:
        with pytest.raises(InboxEntryError) as exc:
            in_thread(lambda kind=kind: inbox.read(f"{kind}.jsonl"))
        why[kind] = str(exc.value)
    assert "symlink" in why["dangling"] and "does not exist" in why["dangling"]
    assert "FIFO" in why["fifo"] and "not a regular file" in why["fifo"]
    assert "symbolic links" in why["loop"] and "Permission denied" in why["unreadable"]
    assert all(f"{kind}.jsonl" in why[kind] for kind in BAD)
    assert inbox.read("ok.jsonl") == (rating("e1") + "\n").encode()


@pytest.mark.parametrize("reader, line", [(read_feedback_inbox, rating("e1")), (read_query_inbox, query("Who?"))])
def test_inbox_logs_turn_each_bad_entry_into_a_reject_and_keep_the_rest(tmp_path, monkeypatch, reader, line):
    folder = bad_folder(tmp_path, ".jsonl", {"ok.jsonl": line + "\n"}, monkeypatch)
    rows, rejects = in_thread(lambda: reader(Inbox(str(folder)), CONTRACTS))
    assert [r["file"] for r in rows] == ["ok.jsonl"]
    assert sorted(r["file"] for r in rejects) == [f"{kind}.jsonl" for kind in BAD]
    assert all(r["reason"] and r["line"] is None and r["raw"] == "" for r in rejects)


def test_contracts_inbox_rejects_each_bad_entry_and_reads_the_rest(tmp_path, monkeypatch):
    folder = bad_folder(tmp_path, ".txt", {"Acme_Supply.txt": CONTRACT_TEXT}, monkeypatch)
    contracts, rejects = in_thread(lambda: read_contract_files(Inbox(str(folder), (".txt", ".zip"))))
    assert [c["inbox_file"] for c in contracts] == ["Acme_Supply.txt"]
    assert sorted(r["source"] for r in rejects) == [f"{kind}.txt" for kind in BAD]
    assert all(r["reason"] and r["action"] == "skipped" for r in rejects)


def test_triggers_skip_bad_entries_with_the_reason_and_count_the_rest(tmp_path, monkeypatch):
    inbox = Inbox(str(bad_folder(tmp_path, ".jsonl", {"ok.jsonl": rating("e1") + "\n"}, monkeypatch)))
    d = in_thread(lambda: feedback_decision(inbox.files(), inbox.read, CONTRACTS, None, now=1e10, min_rows=1))
    assert d.request and d.new_rows == 1 and d.items == ["ok.jsonl"] and "4 file(s) not readable" in d.reason
    assert all(reason for _, reason in d.skipped)
    assert sorted(name for name, _ in d.skipped) == [f"{kind}.jsonl" for kind in BAD]
    d = in_thread(lambda: new_files_decision(inbox.files(), inbox.read, None, "query", now=1e10))
    assert d.request and d.items == ["ok.jsonl"] and len(d.skipped) == 4


@pytest.fixture
def db(tmp_path) -> str:
    path = str(tmp_path / "selfinstruct.duckdb")
    with duckdb.connect(path) as conn:
        conn.execute("create table cuad_contracts (contract_id varchar, split varchar, sha256 varchar)")
        conn.execute("insert into cuad_contracts values ('c-train', 'train', 'a'), ('c-eval', 'eval', 'b')")
    return path


def tick(name: str, root: str, db: str, instance, logs: list | None = None):
    ctx = dg.build_sensor_context(
        instance=instance, resources={"inbox": InboxResource(root=root), "duckdb": DuckDBResource(database=db)}
    )
    if logs is not None:  # the tick's own log, as the UI shows it
        handler = logging.Handler(logging.WARNING)
        handler.emit = lambda record: logs.append(record.getMessage())
        ctx.log.addHandler(handler)
    return in_thread(lambda: next(s for s in SENSORS if s.name == name)(ctx))


def skip_text(result) -> str:
    if isinstance(result, dg.SkipReason):
        return result.skip_message
    return result.skip_reason.skip_message if result.skip_reason else ""


def test_all_three_sensors_tick_past_bad_entries(tmp_path, db, monkeypatch):
    monkeypatch.setenv("SELFINSTRUCT_FEEDBACK_MIN_ROWS", "1")
    root = tmp_path / "inbox"
    bad_folder(root / "feedback", ".jsonl", {"ok.jsonl": rating("e1") + "\n"}, monkeypatch)
    for kind, suffix, good in (
        ("queries", ".jsonl", {"ok.jsonl": query("Who?") + "\n"}),
        ("contracts", ".txt", {"Acme_Supply.txt": CONTRACT_TEXT}),
    ):
        folder = root / kind
        folder.mkdir(parents=True)
        for name, text in good.items():
            (folder / name).write_text(text)
        os.symlink(f"loop{suffix}", folder / f"loop{suffix}")
        os.mkfifo(folder / f"fifo{suffix}")
    logs: list[str] = []
    with dg.instance_for_test() as instance:
        feedback = tick("feedback_sensor", str(root), db, instance, logs)
        assert isinstance(feedback, dg.RunRequest) and feedback.tags["selfinstruct/new_rows"] == "1"
        drift = tick("drift_sensor", str(root), db, instance, logs)
        assert [r.job_name for r in drift.run_requests] == ["query_log_job"]
        contracts = tick("new_contracts_sensor", str(root), db, instance, logs)
        assert [r.partition_key for r in contracts.run_requests] == [contract_id_for("Acme_Supply.txt")]
    for kind, name in (("feedback", "loop.jsonl"), ("queries", "fifo.jsonl"), ("contracts", "loop.txt")):
        assert any(line.startswith(f"{kind} inbox: skipped {name}: ") for line in logs), (kind, logs)


def test_cli_feedback_add_works_beside_a_bad_entry(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(home))
    with duckdb.connect(str(home / "selfinstruct.duckdb")) as conn:
        conn.execute("create table cuad_contracts as select 'c-train' as contract_id, 'train' as split, 'a' as sha256")
    folder = home / "inbox" / "feedback"
    folder.mkdir(parents=True)
    os.symlink("loop.jsonl", folder / "loop.jsonl")
    code = main(
        ["feedback", "add", "--question", "Who?", "--answer", "Acme", "--contract-id", "c-train", "--score", "1"]
    )
    assert code == 0, capsys.readouterr().err
    rows, rejects = read_feedback_inbox(Inbox(str(folder)), CONTRACTS)
    assert len(rows) == 1 and [r["file"] for r in rejects] == ["loop.jsonl"]


# --- messages instead of tracebacks ---------------------------------------------------------------------------


def test_cli_feedback_import_of_an_unreadable_file_says_so(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(home))
    with duckdb.connect(str(home / "selfinstruct.duckdb")) as conn:
        conn.execute("create table cuad_contracts as select 'c-train' as contract_id, 'train' as split, 'a' as sha256")
    path = tmp_path / "ratings.jsonl"
    path.write_text(rating("e1") + "\n")
    real = Path.read_bytes
    monkeypatch.setattr(
        Path,
        "read_bytes",
        lambda self: (
            (_ for _ in ()).throw(PermissionError(13, "Permission denied", str(self))) if self == path else real(self)
        ),
    )
    assert main(["feedback", "import", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Permission denied" in err and "Traceback" not in err


def serve_two(home: Path) -> list[dict]:
    import numpy as np
    from safetensors.numpy import save_file

    from selfinstruct.serving.registry import promote, snapshot_adapter

    entries = []
    for i, method in enumerate(("sft", "dpo")):
        src = home / "adapters" / method
        src.mkdir(parents=True)
        (src / "adapter_config.json").write_text("{}")
        save_file({"w": np.full((2, 2), i, dtype=np.float32)}, str(src / "adapter_model.safetensors"))
        snap = snapshot_adapter(src, home / "serving", f"{method}000000id")
        entries.append(
            promote(
                home / "serving",
                {
                    "method": method,
                    "adapter_id": f"{method}000000id",
                    "path": str(snap),
                    "scores": {"cuad_match": 0.1},
                    "benchmark_run_id": "r",
                },
                reason="gate",
            )
        )
    return entries


@pytest.mark.parametrize(
    "content",
    ["[1, 2]", '{"method": "sft"}', '"sft"', '{"entry_id": 5, "method": "sft", "adapter_id": "x", "path": "p"}'],
)
def test_current_json_of_the_wrong_shape_is_named_with_the_fix(tmp_path, monkeypatch, capsys, content):
    home = tmp_path / "home"
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(home))
    entries = serve_two(home)
    current = home / "serving" / "current.json"
    current.write_text(content)
    assert main(["promote", "--to", "previous"]) == 1
    err = capsys.readouterr().err
    assert str(current) in err and "selfinstruct promote --to" in err and "Traceback" not in err
    assert main(["promote", "--list"]) == 0  # the history is still listed, with the warning
    out = capsys.readouterr()
    assert entries[0]["entry_id"] in out.out and str(current) in out.err
    assert main(["promote", "--to", entries[0]["entry_id"]]) == 0  # the fix the message names works
    assert json.loads(current.read_text())["adapter_id"] == "sft000000id"


def no_credentials(monkeypatch, tmp_path) -> None:
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to look for either
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_an_s3_inbox_without_credentials_is_named_with_the_fix(tmp_path, monkeypatch, capsys, db):
    no_credentials(monkeypatch, tmp_path)
    with pytest.raises(InboxUnavailable, match=r"s3://no-creds-bucket/inbox/feedback/.*AWS credentials"):
        inbox_for("feedback", "s3://no-creds-bucket/inbox").files()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(home))
    monkeypatch.setenv("SELFINSTRUCT_INBOX", "s3://no-creds-bucket/inbox")
    with duckdb.connect(str(home / "selfinstruct.duckdb")) as conn:
        conn.execute("create table cuad_contracts as select 'c-train' as contract_id, 'train' as split, 'a' as sha256")
    code = main(
        ["feedback", "add", "--question", "Who?", "--answer", "Acme", "--contract-id", "c-train", "--score", "1"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "s3://no-creds-bucket/inbox/feedback/" in err and "SELFINSTRUCT_INBOX" in err
    assert "AWS credentials" in err and "Traceback" not in err
    with dg.instance_for_test() as instance:
        for name in ("feedback_sensor", "drift_sensor", "new_contracts_sensor"):
            text = skip_text(tick(name, "s3://no-creds-bucket/inbox", db, instance))
            assert "s3://no-creds-bucket/inbox/" in text and "AWS credentials" in text, (name, text)


def test_cli_names_a_bad_inbox_setting_instead_of_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(tmp_path))
    with duckdb.connect(str(tmp_path / "selfinstruct.duckdb")) as conn:
        conn.execute("create table cuad_contracts as select 'c-train' as contract_id, 'train' as split, 'a' as sha256")
    monkeypatch.setenv("SELFINSTRUCT_INBOX", "s3://")
    code = main(
        ["feedback", "add", "--question", "Who?", "--answer", "Acme", "--contract-id", "c-train", "--score", "1"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "SELFINSTRUCT_INBOX='s3://'" in err and "Traceback" not in err


def test_human_feedback_asset_quarantines_a_bad_entry_and_keeps_the_rest(tmp_path, db, monkeypatch):
    from selfinstruct_assets.intake.assets import human_feedback

    root = tmp_path / "inbox"
    bad_folder(root / "feedback", ".jsonl", {"ok.jsonl": rating("e1") + "\n"}, monkeypatch)
    outputs = {
        o.output_name: o.value
        for o in in_thread(
            lambda: list(human_feedback(inbox=InboxResource(root=str(root)), duckdb=DuckDBResource(database=db)))
        )
    }
    assert outputs["human_feedback"]["event_id"].to_list() == ["e1"]
    rejects = outputs["feedback_rejects"]
    assert sorted(rejects["file"].to_list()) == [f"{kind}.jsonl" for kind in BAD]
    assert rejects["line"].null_count() == 4 and all(rejects["reason"].to_list())
