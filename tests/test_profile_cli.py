"""`selfinstruct benchmark PROFILE` with a profile it cannot use says so in one sentence, rc 2, before any run: a
missing or mistyped file (with the near name), a folder, bad YAML (line and column), a YAML that is no mapping, an
`ops` or an op entry of the wrong shape, an unknown op, a config value out of bounds, DAGSTER_HOME unset or no
folder. Before, each was a Python traceback."""

import pytest

from selfinstruct_assets.cli.profile import main


@pytest.fixture
def dagster_home(home):
    return home / "dagster"  # the conftest home makes it and sets DAGSTER_HOME


def refused(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("selfinstruct: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "text, reason",
    [
        (None, "is a folder; give a YAML file"),
        ("ops:\n  cuad_corpus: [unclosed\n", "is not valid YAML at line 3, column 1"),
        ("- just\n- a list\n", "a profile is a mapping with one 'ops' section"),
        ("ops: 5\n", "'ops' must map asset ops to their config"),
        ("ops:\n  benchmark_scores: [1]\n", "ops.benchmark_scores must be {config: {FIELD: VALUE}}, got [1]"),
        ("ops:\n  benchmark_score:\n    config: {n_questions: 4}\n", "'benchmark_score', which is no asset op"),
        ("ops:\n  benchmark_scores:\n    config: {n_questions: 0}\n", "n_questions: Input should be greater than"),
    ],
    ids=["folder", "bad-yaml", "list", "ops-int", "entry-list", "unknown-op", "out-of-bounds"],
)
def test_a_profile_it_cannot_use_is_one_sentence(dagster_home, tmp_path, capsys, text, reason):
    path = tmp_path / "profiles"
    path.mkdir()
    if text is not None:
        path = path / "p.yaml"
        path.write_text(text)
    assert reason in refused(capsys, [str(path), "--plan"])


def test_a_missing_or_mistyped_profile_is_named_with_the_near_one(dagster_home, tmp_path, capsys):
    err = refused(capsys, ["benchmarks/benchmrk.yaml", "--plan"])
    assert "profile benchmarks/benchmrk.yaml does not exist; did you mean benchmarks/benchmark.yaml?" in err
    assert "did you mean" not in refused(capsys, [str(tmp_path / "nothing-near.yaml")])


@pytest.mark.parametrize("where", ["unset", "missing"])
def test_dagster_home_unset_or_missing_is_named(home, monkeypatch, capsys, where):
    if where == "unset":
        monkeypatch.delenv("DAGSTER_HOME")
    else:
        monkeypatch.setenv("DAGSTER_HOME", str(home / "no-such-folder"))
    err = refused(capsys, ["benchmarks/benchmark.yaml", "--plan"])
    assert "DAGSTER_HOME" in err and "selfinstruct instance" in err
