"""Bad flags and a missing database are named at once, before `selfinstruct serve` prepares the base model and the
index (on a fresh home that took 65 s of model conversion before the same message; a bad --port was only refused by
uvicorn after all of it), and a bad SELFINSTRUCT_ARTIFACTS is rc 2 for `selfinstruct promote`."""

import pytest

import selfinstruct_assets.definitions
from selfinstruct_assets.cli import main


@pytest.fixture
def no_resources(home, monkeypatch):
    """Fails the test if serve builds its resources (the base model, the index): what must come after the checks."""

    def built(*args, **kwargs):
        raise AssertionError("serve built its resources before checking the flags and the tables")

    monkeypatch.setattr(selfinstruct_assets.definitions, "default_resources", built)
    monkeypatch.setenv("SELFINSTRUCT_EMBEDDER", "hashing")
    return home


@pytest.mark.parametrize(
    "flag, value, reason",
    [
        ("--port", "99999", "--port must be between 0 and 65535, got 99999"),
        ("--port", "-1", "--port must be between 0 and 65535, got -1"),
        ("--k", "0", "--k must be at least 1, got 0"),
        ("--n-windows", "-1", "--n-windows must be at least 0, got -1"),
        ("--review-size", "-1", "--review-size must be at least 1, got -1"),
        ("--poll-s", "0", "--poll-s must be a positive, finite number of seconds, got '0'"),
        ("--margin", "nan", "--margin must be a number (-inf: always quote), got nan"),
    ],
)
def test_a_bad_serve_flag_is_refused_by_the_parser(no_resources, capsys, flag, value, reason):
    with pytest.raises(SystemExit) as done:
        main(["serve", flag, value])
    assert done.value.code == 2 and reason in capsys.readouterr().err


def test_serve_on_a_home_without_tables_says_so_before_any_model_work(no_resources, capsys):
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("selfinstruct: ") and "selfinstruct.duckdb does not exist yet: run `make demo`" in err


def test_promote_with_a_bad_artifacts_setting_is_rc_2_with_its_fix(home, monkeypatch, capsys):
    monkeypatch.setenv("SELFINSTRUCT_ARTIFACTS", "s3://")
    assert main(["promote", "--list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("selfinstruct: SELFINSTRUCT_ARTIFACTS='s3://' names no valid S3 bucket") and "\n" not in err
