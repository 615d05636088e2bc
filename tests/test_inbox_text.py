"""A feedback or query-log line whose text is no UTF-8 (JSON's "\\ud800" escape, a command-line argument in another
encoding) is one reject with the reason, never an exception: before, `selfinstruct feedback add/import` ended in a
UnicodeEncodeError traceback, and the readers passed the row on to polars/DuckDB, which failed the whole step."""

import json
from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest

from selfinstruct.intake.feedback import FeedbackError, parse_feedback_line, read_feedback_bytes
from selfinstruct.intake.queries import QueryLogError, parse_query_line
from selfinstruct_assets.cli import main

CONTRACTS = {"c-1": "Governing law: New York."}
ARGV_BYTE = b"caf\xe9".decode("utf-8", "surrogateescape")  # how Python hands over a Latin-1 argument


def feedback(**fields) -> str:
    row = {"event_id": "e-1", "question": "Which law?", "answer": "New York", "contract_id": "c-1", "score": 1}
    return json.dumps({**row, **fields})


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("question", "Which\ud800 law?", r"question is not text: at character 5 it holds '\\ud800', half of a UTF-16"),
        ("answer", ARGV_BYTE, "answer is not text: at character 3 it holds byte 0xe9, which is no UTF-8"),
        ("comment", "\udfff", "comment is not text"),
    ],
)
def test_a_feedback_line_whose_text_is_no_utf8_is_rejected_naming_the_field(field, value, reason):
    with pytest.raises(FeedbackError, match=reason):
        parse_feedback_line(feedback(**{field: value}), CONTRACTS)


def test_a_query_line_whose_text_is_no_utf8_is_rejected():
    line = {"question": "Which law?\ud800", "contract_id": "c-1", "timestamp": datetime.now(UTC).isoformat()}
    with pytest.raises(QueryLogError, match="question is not text"):
        parse_query_line(json.dumps(line), CONTRACTS)


def test_the_other_lines_of_the_file_are_kept_and_reach_a_table():
    data = "\n".join([feedback(event_id="e-1"), feedback(event_id="e-2", question="q\ud800"), feedback(event_id="e-3")])
    rows, rejects = read_feedback_bytes("f.jsonl", data.encode() + b"\n", CONTRACTS)
    assert [r["event_id"] for r in rows] == ["e-1", "e-3"]
    assert [(r["line"], r["reason"].split(":")[0]) for r in rejects] == [(2, "question is not text")]
    assert pl.DataFrame(rows).height == 2  # what human_feedback builds; a lone surrogate made polars raise


@pytest.fixture
def contracts_table(home):
    home.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(home / "selfinstruct.duckdb")) as con:
        con.execute("create table cuad_contracts(contract_id varchar, text varchar, split varchar, sha256 varchar)")
        con.execute("insert into cuad_contracts values ('c-1', 'Governing law: New York.', 'train', 'x')")
    return home


def test_cli_feedback_add_with_an_argument_in_another_encoding_says_so(contracts_table, capsys):
    argv = ["feedback", "add", "--question", ARGV_BYTE, "--answer", "a", "--contract-id", "c-1", "--score", "1"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("selfinstruct: feedback rejected: question is not text") and "0xe9" in err
    assert not list((contracts_table / "inbox" / "feedback").glob("*.jsonl"))


def test_cli_feedback_import_rejects_the_line_and_writes_the_rest(contracts_table, tmp_path, capsys):
    path = tmp_path / "ratings.jsonl"
    path.write_text(feedback(event_id="e-1") + "\n" + feedback(event_id="e-2", answer="\ud800") + "\n")
    assert main(["feedback", "import", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 valid row(s), 1 rejected" in out and "line 2: answer is not text" in out
    [written] = (contracts_table / "inbox" / "feedback").glob("*.jsonl")
    assert [json.loads(line)["event_id"] for line in written.read_text().splitlines()] == ["e-1"]
