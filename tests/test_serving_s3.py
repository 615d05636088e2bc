"""The serving registry on S3 (a real moto server on loopback): with SELFINSTRUCT_ARTIFACTS=s3://BUCKET/PREFIX,
snapshots, current.json and the history live under PREFIX/serving, `selfinstruct promote` lists and rolls back
there, the served adapter is a byte-identical local copy, and an upload that dies half-way changes nothing."""

import argparse
import json
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from moto.server import ThreadedMotoServer

from selfinstruct.core.artifact_store import ArtifactStoreError
from selfinstruct.core.s3_store import S3Store
from selfinstruct.serving.registry import (
    BrokenPointer,
    current,
    entry_location,
    history,
    promote,
    served_adapter_dir,
    snapshot_adapter,
)
from selfinstruct_assets.cli import main
from selfinstruct_assets.cli.promote import add_promote_parser, serving_store


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(monkeypatch, moto_url, home) -> str:
    """A fresh bucket, named by SELFINSTRUCT_ARTIFACTS; boto3 reaches moto through its own variables."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": moto_url,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    name = f"serve-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_url).create_bucket(Bucket=name)
    monkeypatch.setenv("SELFINSTRUCT_ARTIFACTS", f"s3://{name}/team")
    return name


def client():
    return boto3.client("s3")  # AWS_ENDPOINT_URL_S3: the moto server


def adapter(folder: Path, weights: bytes) -> dict[str, bytes]:
    files = {
        "adapter_config.json": b'{"r": 8}',
        "adapter_model.safetensors": weights * 4096,
        "training_metrics.json": b'{"loss": 1.0}',
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def read_tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def serve(home: Path, store, method: str, adapter_id: str) -> tuple[dict, dict[str, bytes]]:
    """Snapshot a fresh adapter for `method` into the store and promote it, as serving_model does."""
    files = adapter(home / "adapters" / method, adapter_id.encode())
    snap = snapshot_adapter(home / "adapters" / method, home / "serving", adapter_id, store=store)
    entry = {
        "method": method,
        "adapter_id": adapter_id,
        "path": snap,
        "scores": {"cuad_match": 0.4},
        "benchmark_run_id": "run-1",
    }
    return promote(home / "serving", entry, "passed the gate", store=store), files


def run_cli(home: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="selfinstruct")
    add_promote_parser(parser.add_subparsers(dest="command", required=True), lambda: home)
    args = parser.parse_args(["promote", *argv])
    return args.func(args)


def keys(bucket: str) -> list[str]:
    return [o["Key"] for o in client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_two_promotions_live_on_s3_list_roll_back_and_serve_byte_identical_copies(home, bucket, capsys):
    store = serving_store(home)
    (first, a_files), (second, b_files) = (
        serve(home, store, "sft", "aaaaaa111111"),
        serve(home, store, "dpo", "bbbbbb222222"),
    )
    assert first["path"].startswith(f"s3://{bucket}/team/serving/adapters/aaaaaa111111/versions/")
    assert entry_location(home / "serving", second, store) == second["path"]
    assert not (home / "serving").exists()  # nothing of the registry is written locally
    assert {
        f"team/serving/{n}/LATEST.json"
        for n in ("current.json", "history.jsonl", "adapters/aaaaaa111111", "adapters/bbbbbb222222")
    } <= set(keys(bucket))
    assert read_tree(served_adapter_dir(home / "serving", store)) == b_files

    assert run_cli(home, "--list") == 0
    lines = capsys.readouterr().out.splitlines()
    starred = [line for line in lines if line.startswith("*")]
    assert len(starred) == 1 and second["entry_id"] in starred[0] and lines[-1] == "(2 rows)"
    assert any(first["entry_id"] in line for line in lines)

    assert run_cli(home, "--to", "previous") == 0
    assert json.loads(capsys.readouterr().out)["adapter_id"] == "aaaaaa111111"
    # Another machine (a fresh store, an empty cache) reads the rolled-back pointer and downloads the snapshot.
    fresh = S3Store(bucket, "team", client(), home / "other-cache")
    served = served_adapter_dir(home / "serving", fresh)
    assert read_tree(served) == a_files and str(served).startswith(str(home / "other-cache"))
    assert [e["adapter_id"] for e in history(home / "serving", fresh)] == [
        "aaaaaa111111",
        "bbbbbb222222",
        "aaaaaa111111",
    ]
    assert history(home / "serving") == [] and current(home / "serving") is None  # the local registry: untouched


def test_the_same_adapter_id_is_uploaded_once(home, bucket):
    store = serving_store(home)
    adapter(home / "adapters" / "sft", b"w")
    uri = snapshot_adapter(home / "adapters" / "sft", home / "serving", "cccccc333333", store=store)
    count = len(keys(bucket))
    again = snapshot_adapter(home / "adapters" / "sft", home / "serving", "cccccc333333", store=store)
    assert len(keys(bucket)) == count and read_tree(store.fetch_dir(again)) == read_tree(store.fetch_dir(uri))


class DiesMidUpload:
    """A client whose connection drops after `ok` file uploads, as when the promoting process is killed."""

    def __init__(self, inner, ok: int):
        self._inner, self._left = inner, ok

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def upload_file(self, *args, **kwargs):
        if self._left == 0:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1")
        self._left -= 1
        return self._inner.upload_file(*args, **kwargs)


def test_a_half_finished_snapshot_upload_leaves_the_served_adapter(home, bucket):
    store, root = serving_store(home), home / "serving"
    served, a_files = serve(home, store, "sft", "aaaaaa111111")
    dying = S3Store(bucket, "team", DiesMidUpload(client(), ok=1), home / "dying-cache")
    with pytest.raises(ArtifactStoreError, match="uploading"):
        serve(home, dying, "dpo", "bbbbbb222222")
    assert any("adapters/bbbbbb222222/versions/" in k for k in keys(bucket))  # the upload really began
    reader = S3Store(bucket, "team", client(), home / "reader-cache")
    assert current(root, reader) == served and len(history(root, reader)) == 1
    assert read_tree(served_adapter_dir(root, reader)) == a_files
    # Its history line is written, its pointer is not: the old entry stays served.
    dying = S3Store(bucket, "team", DiesMidUpload(client(), ok=4), home / "dying-cache-2")
    with pytest.raises(ArtifactStoreError, match="uploading current.json"):
        serve(home, dying, "dpo", "bbbbbb222222")
    assert current(root, reader) == served and len(history(root, reader)) == 2
    # A later promotion of the same adapter completes it.
    entry, b_files = serve(home, store, "dpo", "bbbbbb222222")
    assert current(root, reader) == entry and read_tree(served_adapter_dir(root, reader)) == b_files


def test_a_pointer_of_the_wrong_shape_on_s3_is_a_broken_pointer_that_promote_to_repairs(home, bucket, capsys):
    store, root = serving_store(home), home / "serving"
    served, _ = serve(home, store, "sft", "aaaaaa111111")
    store.publish_bytes("serving/current.json", b"[1, 2]")
    with pytest.raises(BrokenPointer, match=rf"s3://{bucket}/team/serving/current.json holds a JSON list"):
        current(root, store)
    assert run_cli(home, "--list") == 0
    assert "holds a JSON list" in capsys.readouterr().err
    assert run_cli(home, "--to", served["entry_id"]) == 0
    assert current(root, store)["adapter_id"] == "aaaaaa111111"


def test_a_local_folder_is_not_promoted_into_an_s3_registry(home, bucket):
    adapter(home / "adapters" / "sft", b"w")
    entry = {
        "method": "sft",
        "adapter_id": "x",
        "path": str(home / "adapters" / "sft"),
        "scores": {},
        "benchmark_run_id": "r",
    }
    with pytest.raises(ValueError, match=rf"is a local folder, but the serving registry is on s3://{bucket}/team"):
        promote(home / "serving", entry, "ok", store=serving_store(home))


@pytest.mark.parametrize("argv", [("--list",), ("--to", "previous")])
def test_a_missing_bucket_exits_2_naming_it(home, bucket, monkeypatch, capsys, argv):
    monkeypatch.setenv("SELFINSTRUCT_ARTIFACTS", "s3://no-such-bucket-serving/team")
    assert main(["promote", *argv]) == 2
    err = capsys.readouterr().err
    assert "bucket 'no-such-bucket-serving'" in err and "does not exist" in err and "Traceback" not in err


def test_an_unreachable_endpoint_exits_2_naming_the_fix(home, bucket, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert main(["promote", "--list"]) == 2
    assert "AWS_ENDPOINT_URL_S3" in capsys.readouterr().err
