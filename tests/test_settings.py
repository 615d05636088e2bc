"""One validated settings module: bad SELFINSTRUCT_* values fail naming the variable, the value and an example."""

import pytest

from selfinstruct.core import settings
from selfinstruct.core.paths import duckdb_path, project_home
from selfinstruct.core.settings import SettingsError
from selfinstruct.intake.loop_settings import LoopSettings


@pytest.mark.parametrize(
    "name,value,reason",
    [
        ("SELFINSTRUCT_FEEDBACK_MAX_WAIT_S", "nan", "not a finite number"),
        ("SELFINSTRUCT_FEEDBACK_MAX_WAIT_S", "inf", "not a finite number"),
        ("SELFINSTRUCT_DRIFT_COOLDOWN_S", "-5", "must not be negative"),
        ("SELFINSTRUCT_DRIFT_COOLDOWN_S", "6h", "not a number"),
        ("SELFINSTRUCT_FEEDBACK_MIN_ROWS", "0", "out of range"),
        ("SELFINSTRUCT_FEEDBACK_MIN_ROWS", "2.5", "not a whole number"),
        ("SELFINSTRUCT_FEEDBACK_MIN_ROWS", "twenty", "not a whole number"),
    ],
)
def test_loop_settings_refuse_bad_numbers(monkeypatch, name, value, reason):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=rf"{name}='{value}' .*{reason}.*set it like {name}=\d+"):
        LoopSettings.from_env()


def test_loop_settings_defaults_and_values_are_read_at_each_call(monkeypatch):
    for name in ("SELFINSTRUCT_FEEDBACK_MIN_ROWS", "SELFINSTRUCT_FEEDBACK_MAX_WAIT_S", "SELFINSTRUCT_DRIFT_COOLDOWN_S"):
        monkeypatch.delenv(name, raising=False)
    assert LoopSettings.from_env() == LoopSettings(20, 3600.0, 21600.0)
    monkeypatch.setenv("SELFINSTRUCT_FEEDBACK_MIN_ROWS", " 3 ")
    monkeypatch.setenv("SELFINSTRUCT_FEEDBACK_MAX_WAIT_S", "1.5")
    monkeypatch.setenv("SELFINSTRUCT_DRIFT_COOLDOWN_S", "")
    assert LoopSettings.from_env() == LoopSettings(3, 1.5, 21600.0)


@pytest.mark.parametrize(
    "value,reason",
    [
        ("s3://", "names no valid S3 bucket"),
        ("s3:///prefix", "names no valid S3 bucket"),
        ("s3:bucket/prefix", "is not of the form s3://BUCKET"),
        ("S3://Bucket/x", "is not of the form s3://BUCKET"),
        ("http://host/inbox", "uses http://, but an inbox is a local folder or s3://"),
    ],
)
def test_inbox_setting_refuses_what_is_neither_a_folder_nor_an_s3_prefix(value, reason):
    with pytest.raises(SettingsError, match=rf"SELFINSTRUCT_INBOX='{value}' {reason}.*s3://my-bucket"):
        settings.get("SELFINSTRUCT_INBOX", {"SELFINSTRUCT_INBOX": value})
    assert settings.get("SELFINSTRUCT_INBOX", {"SELFINSTRUCT_INBOX": "s3://my-bucket"}) == "s3://my-bucket"
    assert settings.get("SELFINSTRUCT_INBOX", {"SELFINSTRUCT_INBOX": "rel/inbox"}) == "rel/inbox"


@pytest.mark.parametrize(
    "name,value,reason",
    [
        ("SELFINSTRUCT_CUAD_URI", "s3://bucket", "names no object key"),
        ("SELFINSTRUCT_CUAD_URI", "ftp://host/CUAD_v1.zip", "uses ftp://"),
        ("SELFINSTRUCT_CUAD_URI", "https:///CUAD_v1.zip", "names no host"),
        ("SELFINSTRUCT_EMBEDDER", "bert", "is not one of minilm, titan, hashing"),
        ("SELFINSTRUCT_EXECUTOR", "threads", "is not one of in_process"),
        ("SELFINSTRUCT_CHROMA_URL", "localhost:8000", "must start with http:// or https://"),
        ("SELFINSTRUCT_CHROMA_URL", "http://localhost:99999", "is not a valid URL"),
        ("SELFINSTRUCT_CELERY_BROKER", "127.0.0.1:6379", "must start with redis://"),
        ("SELFINSTRUCT_PG_URL", "mysql://h/db", "must start with postgresql://"),
    ],
)
def test_other_settings_name_variable_value_and_example(name, value, reason):
    with pytest.raises(SettingsError, match=rf"{name}='{value}' {reason}.*set it like {name}=\S+"):
        settings.get(name, {name: value})


def test_a_password_in_a_bad_url_is_masked():
    with pytest.raises(SettingsError) as err:
        settings.get("SELFINSTRUCT_PG_URL", {"SELFINSTRUCT_PG_URL": "mysql://admin:hunter2@db/x"})
    assert "hunter2" not in str(err.value) and "admin:***@db" in str(err.value)


@pytest.mark.parametrize(
    "name, value, shown",
    [
        ("SELFINSTRUCT_PG_URL", "admin:hunter2@db:5432/dagster", "'admin:***@db:5432/dagster'"),  # no scheme
        ("SELFINSTRUCT_CUAD_URI", "https://h:99999/c.zip?X-Amz-Signature=hunter2", "X-Amz-Signature=***"),
        ("SELFINSTRUCT_CHROMA_URL", "http://hunter2@:80", "'http://***@:80'"),  # a token as the user
    ],
)
def test_settings_show_values_redacted_as_every_uri_the_project_prints(name, value, shown):
    """Before: only scheme://user:password@ was masked, so these printed hunter2."""
    with pytest.raises(SettingsError) as err:
        settings.get(name, {name: value})
    assert "hunter2" not in str(err.value) and shown in str(err.value)


def test_home_that_is_a_file_is_refused_naming_the_variable(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    for home in (tmp_path / "f", tmp_path / "f" / "below"):
        monkeypatch.setenv("SELFINSTRUCT_HOME", str(home))
        with pytest.raises(
            SettingsError, match=rf"SELFINSTRUCT_HOME='{home}' cannot be used: {tmp_path / 'f'} is a file"
        ):
            project_home()
        with pytest.raises(SettingsError, match="SELFINSTRUCT_HOME"):
            duckdb_path()


def test_home_that_cannot_be_written_is_refused(monkeypatch):
    # /proc is a folder nobody, the superuser included, can create files in.
    monkeypatch.setenv("SELFINSTRUCT_HOME", "/proc")
    with pytest.raises(SettingsError, match=r"SELFINSTRUCT_HOME='/proc' is not writable.*SELFINSTRUCT_HOME=/srv"):
        project_home()
    monkeypatch.setenv("SELFINSTRUCT_HOME", "/proc/selfinstruct-home")
    with pytest.raises(SettingsError, match=r"cannot be created: /proc is not writable"):
        project_home()


def test_home_is_read_at_each_call_and_not_created(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(tmp_path / "a" / "b"))
    assert project_home() == tmp_path / "a" / "b" and not (tmp_path / "a").exists()
    monkeypatch.delenv("SELFINSTRUCT_HOME")
    monkeypatch.chdir(tmp_path)
    assert project_home() == tmp_path / ".selfinstruct"


def test_every_selfinstruct_variable_the_code_reads_is_declared():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    used = set()
    for folder in ("selfinstruct_assets", "resources", "selfinstruct.core", "training"):
        for path in (root / folder).rglob("*.py"):
            used |= set(re.findall(r"\bSELFINSTRUCT_[A-Z_]*[A-Z]\b", path.read_text()))
    assert used - set(settings.SETTINGS) == set()


def test_inbox_root_is_validated_through_settings(monkeypatch):
    from selfinstruct.core.inbox import inbox_root

    monkeypatch.setenv("SELFINSTRUCT_INBOX", "s3://")
    with pytest.raises(SettingsError, match=r"SELFINSTRUCT_INBOX='s3://' names no valid S3 bucket"):
        inbox_root()
    monkeypatch.setenv("SELFINSTRUCT_INBOX", "s3://my-bucket/in")
    assert inbox_root() == "s3://my-bucket/in"
