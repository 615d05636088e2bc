"""Inboxes on a local folder and on an S3 prefix (moto): complete-file listing, atomic writes, the root setting."""

import os
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from selfinstruct.core.inbox import Inbox, as_inbox, inbox_for, inbox_root
from selfinstruct.core.inbox_types import InboxFile

BUCKET = "inbox-bucket"


@pytest.fixture
def s3(monkeypatch):
    # Fake credentials so nothing can reach a real account; moto answers every call.
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def put(client, key: str, body: bytes = b"x") -> None:
    client.put_object(Bucket=BUCKET, Key=key, Body=body)


def test_local_listing_keeps_complete_files_only_in_name_order(tmp_path):
    for name in ["b.jsonl", "a.jsonl", "c.jsonl.tmp", ".hidden.jsonl", "notes.txt", "A.jsonl"]:
        (tmp_path / name).write_bytes(b"12345")
    (tmp_path / "sub.jsonl").mkdir()  # a folder named like a file
    (tmp_path / "sub.jsonl" / "deep.jsonl").write_bytes(b"x")
    files = Inbox(str(tmp_path)).files()
    assert [f.name for f in files] == ["A.jsonl", "a.jsonl", "b.jsonl"]
    assert all(isinstance(f, InboxFile) and f.size == 5 and f.modified > 0 for f in files)
    assert [f.name for f in Inbox(str(tmp_path), (".txt", ".jsonl")).files()] == [
        "A.jsonl",
        "a.jsonl",
        "b.jsonl",
        "notes.txt",
    ]


def test_missing_local_folder_is_empty_and_write_creates_it(tmp_path):
    inbox = Inbox(str(tmp_path / "no" / "such"))
    assert inbox.files() == []
    assert inbox.write("one.jsonl", b"{}\n") == str(tmp_path / "no" / "such" / "one.jsonl")
    assert [f.name for f in inbox.files()] == ["one.jsonl"]


def test_local_write_is_atomic_and_round_trips(tmp_path, monkeypatch):
    inbox = Inbox(str(tmp_path))
    data = "né\u2028x\n".encode() + bytes(range(256))
    assert inbox.write("a.jsonl", data) == str(tmp_path / "a.jsonl")
    assert os.listdir(tmp_path) == ["a.jsonl"]  # no NAME.tmp left behind
    assert inbox.read("a.jsonl") == data
    inbox.write("a.jsonl", b"new")
    assert inbox.read("a.jsonl") == b"new"

    # A write that fails before the rename leaves the old file whole and no temp file.
    def broken_replace(src, dst):
        assert Path(src).name == "a.jsonl.tmp" and Path(src).read_bytes() == b"half"
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        inbox.write("a.jsonl", b"half")
    assert os.listdir(tmp_path) == ["a.jsonl"] and inbox.read("a.jsonl") == b"new"


def test_read_of_a_vanished_file_raises_file_not_found(tmp_path):
    inbox = Inbox(str(tmp_path))
    inbox.write("gone.jsonl", b"x")
    (tmp_path / "gone.jsonl").unlink()
    with pytest.raises(FileNotFoundError):
        inbox.read("gone.jsonl")


@pytest.mark.parametrize("name", ["x.jsonl.tmp", ".x.jsonl", "x.txt", "sub/x.jsonl", "../x.jsonl", ""])
def test_incomplete_or_foreign_names_are_refused(tmp_path, name):
    inbox = Inbox(str(tmp_path / "in"))
    with pytest.raises(ValueError, match="is not a complete file name of inbox"):
        inbox.write(name, b"x")
    with pytest.raises(ValueError, match="must end with one of .jsonl"):
        inbox.read(name)
    assert not (tmp_path / "in").exists()


@pytest.mark.parametrize(
    "uri, suffixes, message",
    [
        ("", (".jsonl",), "inbox location is empty"),
        ("s3://", (".jsonl",), "names no bucket"),
        ("s3:///prefix/", (".jsonl",), "names no bucket"),
        ("/tmp/x", (), "must be non-empty"),
        ("/tmp/x", (".jsonl.tmp",), "none may end in '.tmp'"),
    ],
)
def test_bad_inbox_settings_are_refused_with_the_fix(uri, suffixes, message):
    with pytest.raises(ValueError, match=message):
        Inbox(uri, suffixes)


def test_a_single_suffix_string_is_one_suffix(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    assert [f.name for f in Inbox(str(tmp_path), ".txt").files()] == ["a.txt"]


def test_inbox_root_reads_the_environment_when_called(tmp_path, monkeypatch):
    monkeypatch.delenv("SELFINSTRUCT_INBOX", raising=False)
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(tmp_path / "home"))
    assert inbox_root() == str((tmp_path / "home" / "inbox").resolve())
    monkeypatch.setenv("SELFINSTRUCT_INBOX", "s3://drop-bucket/drop")
    assert inbox_root() == "s3://drop-bucket/drop"
    monkeypatch.setenv("SELFINSTRUCT_INBOX", str(tmp_path / "elsewhere"))
    assert inbox_for("feedback").location == f"{tmp_path}/elsewhere/feedback"


def test_an_inbox_setting_without_a_bucket_is_refused_naming_the_variable(monkeypatch):
    from selfinstruct.core.settings import SettingsError

    monkeypatch.setenv("SELFINSTRUCT_INBOX", "s3://")  # was taken as a local folder named 's3:'
    with pytest.raises(SettingsError, match="SELFINSTRUCT_INBOX='s3://' names no valid S3 bucket"):
        inbox_root()


def test_inbox_for_picks_the_kind_folder_and_its_suffixes(tmp_path):
    assert inbox_for("queries", str(tmp_path)).location == f"{tmp_path}/queries"
    assert inbox_for("queries", str(tmp_path)).suffixes == (".jsonl",)
    assert inbox_for("contracts", "s3://b/root/").suffixes == (".txt", ".zip")
    assert inbox_for("contracts", "s3://b/root/").location == "s3://b/root/contracts/"
    assert inbox_for("feedback", str(tmp_path), suffixes=(".json",)).suffixes == (".json",)
    with pytest.raises(ValueError, match="unknown inbox kind 'feedbacks'; expected one of feedback, queries"):
        inbox_for("feedbacks", str(tmp_path))


def test_as_inbox_wraps_paths_and_keeps_inboxes(tmp_path):
    inbox = Inbox(str(tmp_path), (".txt",))
    assert as_inbox(inbox) is inbox
    assert as_inbox(tmp_path).location == str(tmp_path) and as_inbox(tmp_path).suffixes == (".jsonl",)
    with pytest.raises(TypeError, match="expected an Inbox, a folder path or an s3:// URI, got NoneType"):
        as_inbox(None)


# --- S3 ------------------------------------------------------------------------------------------------------


def test_s3_listing_keeps_complete_files_directly_below_the_prefix(s3):
    for key in [
        "in/b.jsonl",
        "in/a.jsonl",
        "in/c.jsonl.tmp",
        "in/.h.jsonl",
        "in/n.txt",
        "in/sub/d.jsonl",
        "in/",
        "inbox2/e.jsonl",
        "f.jsonl",
    ]:
        put(s3, key, b"abc")
    inbox = Inbox(f"s3://{BUCKET}/in", s3_client=s3)
    assert inbox.location == f"s3://{BUCKET}/in/"
    files = inbox.files()
    assert [f.name for f in files] == ["a.jsonl", "b.jsonl"]
    assert all(f.size == 3 and f.modified > 1e9 for f in files)
    assert [f.name for f in Inbox(f"s3://{BUCKET}", s3_client=s3).files()] == ["f.jsonl"]  # bucket root
    assert Inbox(f"s3://{BUCKET}/empty/", s3_client=s3).files() == []


def test_s3_listing_pages_through_many_keys(s3):
    for i in range(1005):  # one list_objects_v2 page holds 1000
        put(s3, f"many/{i:04d}.jsonl")
    assert len(Inbox(f"s3://{BUCKET}/many/", s3_client=s3).files()) == 1005


def test_s3_write_read_round_trip_and_vanished_file(s3):
    inbox = Inbox(f"s3://{BUCKET}/drop/")  # no client passed: made lazily with boto3 (moto answers)
    data = bytes(range(256))
    assert inbox.write("x.jsonl", data) == f"s3://{BUCKET}/drop/x.jsonl"
    assert inbox.read("x.jsonl") == data
    assert s3.get_object(Bucket=BUCKET, Key="drop/x.jsonl")["Body"].read() == data
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == ["drop/x.jsonl"]
    s3.delete_object(Bucket=BUCKET, Key="drop/x.jsonl")
    with pytest.raises(FileNotFoundError, match=f"s3://{BUCKET}/drop/x.jsonl is gone"):
        inbox.read("x.jsonl")


def test_s3_missing_bucket_is_a_clear_error(s3):
    inbox = Inbox("s3://no-such-bucket/in/", s3_client=s3)
    with pytest.raises(FileNotFoundError, match="bucket 'no-such-bucket' of inbox s3://no-such-bucket/in/ does not"):
        inbox.files()
    with pytest.raises(FileNotFoundError, match="create it or point SELFINSTRUCT_INBOX"):
        inbox.write("a.jsonl", b"x")


def test_s3_client_is_created_only_when_first_used(monkeypatch):
    made = []

    def no_real_client(session, *args, **kwargs):
        made.append(args)
        raise RuntimeError("stop before any network call")

    monkeypatch.setattr(boto3.session.Session, "client", no_real_client)  # a session of its own, made when used
    inbox = Inbox("s3://b/p/")
    assert made == [] and inbox.location == "s3://b/p/"
    with pytest.raises(RuntimeError, match="stop before"):
        inbox.files()
    assert made == [("s3",)]
