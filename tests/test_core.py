"""selfinstruct.core's shared helpers: publishing, markdown tables, the DuckDB lock retry, checked zips."""

import io
import os
import zipfile

import duckdb
import pytest

from selfinstruct.core.artifacts import missing_adapter_files, publish_bytes, publish_dir, publish_file
from selfinstruct.core.duckdb_lock import retry_locked
from selfinstruct.core.markdown import md_table
from selfinstruct.core.zips import DamagedZip, open_checked_zip


def test_publish_file_replaces_whole_and_a_failed_write_leaves_the_old_file(tmp_path):
    final = tmp_path / "program.json"
    publish_bytes(final, b"one")
    publish_file(lambda tmp: tmp.write_text("two"), final)
    assert final.read_text() == "two" and os.listdir(tmp_path) == ["program.json"]

    def fail(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        publish_file(fail, final)
    assert final.read_text() == "two" and os.listdir(tmp_path) == ["program.json"]


def test_publish_file_temp_keeps_the_suffix_or_the_given_name(tmp_path):
    seen = []
    publish_file(lambda tmp: seen.append(tmp.name) or tmp.write_text("{}"), tmp_path / "p.json")
    publish_bytes(tmp_path / "a.jsonl", b"x", tmp_name="a.jsonl.tmp")
    assert seen[0].startswith(".tmp-p-") and seen[0].endswith(".json")
    assert sorted(os.listdir(tmp_path)) == ["a.jsonl", "p.json"]


def test_publish_dir_without_replace_keeps_an_existing_folder(tmp_path):
    final = tmp_path / "snap"
    publish_dir(lambda tmp: (tmp / "v").write_text("first"), final, replace=False)
    publish_dir(lambda tmp: (tmp / "v").write_text("second"), final, replace=False)
    assert (final / "v").read_text() == "first" and os.listdir(tmp_path) == ["snap"]
    assert missing_adapter_files(final) == ["adapter_config.json", "adapter_model.safetensors"]


def test_md_table_formats_floats_and_escapes_pipes():
    text = md_table([{"method": "a|b", "score": 0.12345}, {"method": "c"}], ["method", "score"])
    assert text.splitlines() == ["| method | score |", "|---|---|", "| a\\|b | 0.123 |", "| c | None |"]


def test_retry_locked_retries_only_lock_errors():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise duckdb.IOException("Could not set lock on file")
        return "done"

    assert retry_locked(flaky, patience_s=5) == "done" and len(calls) == 3
    with pytest.raises(duckdb.IOException):
        retry_locked(lambda: (_ for _ in ()).throw(duckdb.IOException("Could not set lock on file")), patience_s=0)


def test_open_checked_zip_names_the_damage(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.txt", "the contract text")
    data = buf.getvalue()
    assert open_checked_zip(data).read("a.txt") == b"the contract text"
    with pytest.raises(DamagedZip, match="not a readable zip archive") as info:
        open_checked_zip(b"not a zip")
    assert info.value.member is None
    bad = data.replace(b"the contract text", b"the contract TEXT")  # same length, wrong CRC
    with pytest.raises(DamagedZip, match="'a.txt' fails its CRC check") as info:
        open_checked_zip(bad)
    assert info.value.member == "a.txt"


def test_relocated_finds_a_recorded_path_under_a_moved_home(tmp_path):
    from selfinstruct.core.paths import relocated

    old, new = tmp_path / "old" / "home", tmp_path / "new" / "home"
    (new / "models" / "answer_judge").mkdir(parents=True)
    (new / "answer_judge").mkdir()  # a shorter trailing match must not win over the longer one
    recorded = old / "models" / "answer_judge"
    assert relocated(recorded, new) == new / "models" / "answer_judge"
    assert relocated(old / "models" / "gone", new) == old / "models" / "gone"  # nowhere: as recorded
    (old / "models" / "answer_judge").mkdir(parents=True)
    assert relocated(recorded, new) == recorded  # still there: as recorded
    assert relocated(tmp_path.joinpath("x").relative_to(tmp_path), new) == tmp_path.joinpath("x").relative_to(tmp_path)


def test_recorded_path_follows_a_home_that_was_copied_elsewhere(tmp_path, monkeypatch):
    import shutil

    import dagster as dg

    from selfinstruct_assets.locations import recorded_path

    old = tmp_path / "old"
    (old / "models" / "judge").mkdir(parents=True)

    @dg.asset(name="answer_judge")
    def judge() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"path": str(old / "models" / "judge")})

    with dg.instance_for_test() as instance:
        assert dg.materialize([judge], instance=instance).success
        monkeypatch.setenv("SELFINSTRUCT_HOME", str(old))
        assert recorded_path(instance, "answer_judge") == old / "models" / "judge"
        shutil.move(str(old), str(tmp_path / "new"))
        monkeypatch.setenv("SELFINSTRUCT_HOME", str(tmp_path / "new"))
        assert recorded_path(instance, "answer_judge") == tmp_path / "new" / "models" / "judge"


def test_a_serving_entry_recorded_with_an_absolute_path_resolves_after_the_home_moved(tmp_path):
    from selfinstruct.serving.registry import adapter_dir

    new_root = tmp_path / "new" / "home" / "serving"
    (new_root / "adapters" / "5f05683c2bfa").mkdir(parents=True)
    recorded = {"path": str(tmp_path / "old" / "home" / "serving" / "adapters" / "5f05683c2bfa")}
    assert adapter_dir(new_root, recorded) == (new_root / "adapters" / "5f05683c2bfa").resolve()
    assert (
        adapter_dir(new_root, {"path": "adapters/5f05683c2bfa"}) == (new_root / "adapters" / "5f05683c2bfa").resolve()
    )
