"""The `selfinstruct` command line: feedback add/import into the inbox, query, and promote."""

import json
from pathlib import Path

import duckdb
import pytest

from selfinstruct.intake.feedback import feedback_inbox, read_feedback_inbox
from selfinstruct_assets.cli import main

CONTRACTS = {"c-train": "train", "c-eval": "eval"}


def line(**over) -> str:
    base = {
        "event_id": "e1",
        "question": "Who may terminate?",
        "answer": "Either party.",
        "contract_id": "c-train",
        "score": 0.5,
    }
    base.update(over)
    return json.dumps(base)


def drop(folder: Path, name: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return path


@pytest.fixture
def cli_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(home))
    return home


def make_contracts_table(home: Path) -> None:
    with duckdb.connect(str(home / "selfinstruct.duckdb")) as conn:
        conn.execute("create table cuad_contracts (contract_id varchar, split varchar, sha256 varchar)")
        conn.execute("insert into cuad_contracts values ('c-train', 'train', 'a'), ('c-eval', 'eval', 'b')")


def inbox_rows(home: Path) -> list[dict]:
    rows, rejects = read_feedback_inbox(feedback_inbox(home), CONTRACTS)
    assert rejects == []
    return rows


def test_cli_feedback_add_writes_one_validated_row(cli_home, capsys):
    make_contracts_table(cli_home)
    args = [
        "feedback",
        "add",
        "--question",
        "Who may terminate?",
        "--answer",
        "Either party.",
        "--contract-id",
        "c-train",
    ]
    assert main(args + ["--score", "4", "--comment", "good", "--event-id", "ev-1"]) == 0
    written = Path(capsys.readouterr().out.strip())
    assert written.parent == feedback_inbox(cli_home) and written.exists()
    assert main(args + ["--score", "1", "--scale", "1-5", "--source", "ai"]) == 0
    rows = inbox_rows(cli_home)
    by_id = {r["event_id"]: r for r in rows}
    assert by_id["ev-1"]["score"] == 0.75 and by_id["ev-1"]["comment"] == "good"
    other = next(r for r in rows if r["event_id"] != "ev-1")
    assert len(other["event_id"]) == 32 and other["score"] == 0.0 and other["source"] == "ai"

    assert main(args + ["--score", "7"]) == 1
    assert "score 7.0 is out of range" in capsys.readouterr().err
    assert main(["feedback", "add", "--question", "q", "--answer", "a", "--contract-id", "nope", "--score", "1"]) == 1
    assert "unknown contract_id 'nope'" in capsys.readouterr().err
    assert main(args + ["--score", "1", "--event-id", "ev-1"]) == 1
    assert "duplicate event_id 'ev-1'" in capsys.readouterr().err
    assert len(inbox_rows(cli_home)) == 2


def test_cli_feedback_import_writes_valid_rows_and_lists_rejects(cli_home, tmp_path, capsys):
    make_contracts_table(cli_home)
    src = drop(
        tmp_path / "src",
        "ratings.jsonl",
        [
            line(event_id="i1"),
            line(event_id="i2", score=99),
            "",
            line(event_id="i3", contract_id="c-eval", score=5),
            line(event_id="i1"),
        ],
    )
    assert main(["feedback", "import", str(src)]) == 0
    out = capsys.readouterr().out
    assert "2 valid row(s), 2 rejected" in out
    assert "line 2: score 99 is out of range" in out and "line 5: duplicate event_id 'i1'" in out
    assert [(r["event_id"], r["score"]) for r in inbox_rows(cli_home)] == [("i1", 0.5), ("i3", 1.0)]

    again = drop(tmp_path / "src", "again.jsonl", [line(event_id="i1"), "not json"])
    assert main(["feedback", "import", str(again)]) == 1  # i1 is already in the inbox
    out = capsys.readouterr().out
    assert "0 valid row(s), 2 rejected" in out and "nothing written" in out
    assert len(list(feedback_inbox(cli_home).iterdir())) == 1
    assert main(["feedback", "import", str(tmp_path / "missing.jsonl")]) == 2


@pytest.mark.parametrize("make_db", [False, True])
def test_cli_feedback_asks_for_make_demo_when_cuad_contracts_is_missing(cli_home, tmp_path, capsys, make_db):
    if make_db:  # the file exists, the table does not
        duckdb.connect(str(cli_home / "selfinstruct.duckdb")).close()
    src = drop(tmp_path, "r.jsonl", [line()])
    assert (
        main(["feedback", "add", "--question", "q", "--answer", "a", "--contract-id", "c-train", "--score", "1"]) == 2
    )
    assert "run `make demo` first" in capsys.readouterr().err
    assert main(["feedback", "import", str(src)]) == 2
    assert "run `make demo` first" in capsys.readouterr().err
    assert not feedback_inbox(cli_home).exists()


def test_cli_query_still_works(cli_home, capsys):
    make_contracts_table(cli_home)
    assert main(["query", "select count(*) as n from cuad_contracts"]) == 0
    assert "2" in capsys.readouterr().out


def test_cli_feedback_accepts_contracts_added_through_the_inbox(cli_home, capsys):
    make_contracts_table(cli_home)
    with duckdb.connect(str(cli_home / "selfinstruct.duckdb")) as conn:
        conn.execute("create table added_contracts (contract_id varchar, split varchar, sha256 varchar)")
        conn.execute("insert into added_contracts values ('c-new', 'train', 'c')")
    assert (
        main(
            [
                "feedback",
                "add",
                "--question",
                "Who may terminate?",
                "--answer",
                "Either party.",
                "--contract-id",
                "c-new",
                "--score",
                "0.5",
            ]
        )
        == 0
    )
    assert [r["contract_id"] for r in read_feedback_inbox(feedback_inbox(cli_home), {"c-new": "train"})[0]] == ["c-new"]


def test_cli_promote_lists_nothing_before_a_promotion(cli_home, capsys):
    assert main(["promote", "--list"]) == 1
    assert "nothing yet in" in capsys.readouterr().err
    assert main(["promote", "--to", "previous"]) == 1
    assert "no promoted entry matches 'previous'" in capsys.readouterr().err


def test_cli_rollback_moves_the_pointer_and_the_serving_model_table(cli_home, capsys):
    import numpy as np
    from safetensors.numpy import save_file

    from selfinstruct.serving.registry import promote, snapshot_adapter

    make_contracts_table(cli_home)
    for i, method in enumerate(("sft", "dpo")):
        src = cli_home / "adapters" / method
        src.mkdir(parents=True)
        (src / "adapter_config.json").write_text("{}")
        save_file({"w": np.full((2, 2), i, dtype=np.float32)}, str(src / "adapter_model.safetensors"))
        snap = snapshot_adapter(src, cli_home / "serving", f"{method}000000id")
        promote(
            cli_home / "serving",
            {
                "method": method,
                "adapter_id": f"{method}000000id",
                "path": str(snap),
                "scores": {"cuad_match": 0.1 * i},
                "benchmark_run_id": "r",
            },
            reason="gate",
        )
    assert main(["promote", "--to", "previous"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "sft"
    with duckdb.connect(str(cli_home / "selfinstruct.duckdb"), read_only=True) as conn:
        rows = conn.execute("select method, is_current from serving_model order by promoted_at").fetchall()
    assert rows == [("sft", False), ("dpo", False), ("sft", True)]
