"""Artifact stores: the local folder and S3 (a real moto server on loopback) behave the same; S3 publishes are
atomic (an upload killed half-way is never read), a missing bucket is a clear error, and the Dagster resources
build their S3 client from the environment when a step runs."""

import io
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import boto3
import dagster as dg
import pytest
from botocore.exceptions import EndpointConnectionError
from moto.server import ThreadedMotoServer

from resources.project import InboxResource
from resources.s3 import ArtifactsResource, client_for
from selfinstruct.core.artifact_store import ArtifactNotFound, ArtifactStoreError, LocalStore
from selfinstruct.core.artifacts import adapter_dir, dataset_path, program_path
from selfinstruct.core.s3_store import S3Store
from selfinstruct.core.settings import SettingsError

SFT = adapter_dir("", "sft")  # the same relative layout on disk and on S3


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch):
    # Keys moto accepts; no profile or real endpoint can be picked up from the machine.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "SELFINSTRUCT_ARTIFACTS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def client(moto_url):
    return boto3.client("s3", endpoint_url=moto_url)


@pytest.fixture
def bucket(client):
    name = f"art-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "home")
    return S3Store(request.getfixturevalue("bucket"), "team/run", request.getfixturevalue("client"), tmp_path / "cache")


def adapter_files(seed: int) -> dict[str, bytes]:
    payload = os.urandom(1 << 16) + bytes([seed])
    return {
        "adapter_config.json": b'{"r": %d}' % seed,
        "adapter_model.safetensors": payload,
        "tokenizer/vocab.txt": b"a\nb\n" * seed,
    }


def writer(files: dict[str, bytes], fail_after: int | None = None):
    def build(tmp: Path) -> None:
        for i, (rel, data) in enumerate(files.items()):
            if fail_after is not None and i == fail_after:
                raise OSError("disk full while saving the adapter")
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)

    return build


def read_tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- both stores --------------------------------------------------------------------------------------------------


def test_a_published_folder_reads_back_byte_identical_by_uri_and_by_name(store):
    files = adapter_files(1)
    assert not store.exists(SFT)
    uri = store.publish_dir(writer(files), SFT)
    assert read_tree(store.fetch_dir(uri)) == files
    assert read_tree(store.fetch_dir(SFT)) == files
    assert store.exists(SFT) and store.exists(uri) and not store.exists(adapter_dir("", "dpo"))
    assert store.uri(SFT).endswith("adapters/sft")


def test_a_new_publish_replaces_the_whole_folder_for_readers_by_name(store):
    store.publish_dir(writer(adapter_files(1)), SFT)
    second = {"adapter_config.json": b"{}", "adapter_model.safetensors": b"new"}
    store.publish_dir(writer(second), SFT)
    assert read_tree(store.fetch_dir(SFT)) == second  # no file of the first publish is left over


def test_a_build_failing_half_way_leaves_the_previous_artifact(store):
    first = adapter_files(1)
    store.publish_dir(writer(first), SFT)
    with pytest.raises(OSError, match="disk full"):
        store.publish_dir(writer(adapter_files(2), fail_after=2), SFT)
    assert read_tree(store.fetch_dir(SFT)) == first


def test_files_and_bytes_round_trip_and_keep_their_suffix(store):
    data = b'{"predict": {"demos": []}}'
    uri = store.publish_bytes(program_path("", "rag_program"), data)
    assert store.read_bytes(uri) == data and store.read_bytes(program_path("", "rag_program")) == data

    seen = []
    rows = b'{"prompt": "q", "completion": "a"}\n' * 3
    store.publish_file(lambda tmp: (seen.append(tmp.suffix), tmp.write_bytes(rows)), dataset_path("", "sft"))
    assert seen == [".jsonl"]  # writers such as DSPy's save() pick the format from the suffix
    path = store.fetch_file(dataset_path("", "sft"))
    assert path.name == "sft.jsonl" and path.read_bytes() == rows


def test_a_finished_folder_or_file_is_put_as_is(store, tmp_path):
    files, trained = adapter_files(4), tmp_path / "trained"
    trained.mkdir()
    writer(files)(trained)
    uri = store.put_dir(trained, SFT)
    assert read_tree(store.fetch_dir(uri)) == files and read_tree(store.fetch_dir(SFT)) == files
    (tmp_path / "rows.jsonl").write_bytes(b"{}\n")
    assert store.read_bytes(store.put_file(tmp_path / "rows.jsonl", dataset_path("", "dpo"))) == b"{}\n"


def test_a_local_folder_trained_in_place_is_not_copied(tmp_path):
    store = LocalStore(tmp_path)
    in_place = tmp_path / SFT
    in_place.mkdir(parents=True)
    (in_place / "adapter_config.json").write_text("{}")
    inode = (in_place / "adapter_config.json").stat().st_ino
    assert store.put_dir(in_place, SFT) == str(in_place)
    assert (in_place / "adapter_config.json").stat().st_ino == inode


def test_a_missing_artifact_is_not_found(store):
    with pytest.raises(ArtifactNotFound):
        store.fetch_dir(adapter_dir("", "grpo"))
    with pytest.raises(ArtifactNotFound):
        store.read_bytes(program_path("", "optimized_rag_program"))


@pytest.mark.parametrize("name", ["", "/abs/path", "../outside", "adapters/sft/versions/x", "a/LATEST.json"])
def test_names_outside_the_layout_are_refused(store, name):
    with pytest.raises(ValueError, match="artifact name"):
        store.publish_bytes(name, b"x")


# --- S3 only ------------------------------------------------------------------------------------------------------


class DiesMidUpload:
    """A client whose connection drops after `ok` file uploads, as when the publishing process is killed."""

    def __init__(self, client, ok: int):
        self._client, self._left = client, ok

    def __getattr__(self, name):
        return getattr(self._client, name)

    def upload_file(self, *args, **kwargs):
        if self._left == 0:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1")
        self._left -= 1
        return self._client.upload_file(*args, **kwargs)


def keys(client, bucket) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_a_half_finished_upload_is_invisible_and_publishing_again_completes_it(client, bucket, tmp_path):
    reader = S3Store(bucket, "p", client, tmp_path / "reader")
    # The very first publish dies after one of three files: readers find nothing at all.
    with pytest.raises(ArtifactStoreError, match="uploading"):
        S3Store(bucket, "p", DiesMidUpload(client, ok=1), tmp_path / "w1").publish_dir(writer(adapter_files(1)), SFT)
    assert len(keys(client, bucket)) == 1  # the upload really began
    assert not reader.exists(SFT)
    with pytest.raises(ArtifactNotFound, match="unfinished upload"):
        reader.fetch_dir(SFT)

    first = adapter_files(2)
    first_uri = reader.publish_dir(writer(first), SFT)
    second = adapter_files(3)
    with pytest.raises(ArtifactStoreError):
        S3Store(bucket, "p", DiesMidUpload(client, ok=2), tmp_path / "w2").publish_dir(writer(second), SFT)
    assert read_tree(reader.fetch_dir(SFT)) == first  # still the last complete publish

    second_uri = reader.publish_dir(writer(second), SFT)  # same content, same keys: the retry completes it
    assert read_tree(S3Store(bucket, "p", client, tmp_path / "fresh").fetch_dir(SFT)) == second
    assert read_tree(reader.fetch_dir(first_uri)) == first  # a recorded URI keeps reading its own version
    partial = f"s3://{bucket}/p/adapters/sft/versions/{'0' * 32}/"
    with pytest.raises(ArtifactNotFound, match="never published completely"):
        reader.fetch_dir(partial)
    assert second_uri != first_uri
    assert second_uri.removeprefix(f"s3://{bucket}/") + "MANIFEST.json" in keys(client, bucket)


def test_a_file_big_enough_for_multipart_round_trips(client, bucket, tmp_path):
    big = {"adapter_model.safetensors": os.urandom(9 << 20)}  # over boto3's 8 MiB multipart threshold
    uri = S3Store(bucket, "p", client, tmp_path / "w").publish_dir(writer(big), SFT)
    assert read_tree(S3Store(bucket, "p", client, tmp_path / "r").fetch_dir(uri)) == big


def test_a_missing_bucket_is_a_clear_error_for_writers_and_readers(client, tmp_path):
    store = S3Store("no-such-bucket-h", "p", client, tmp_path)
    for act in (
        lambda: store.publish_dir(writer(adapter_files(1)), SFT),
        lambda: store.fetch_dir(SFT),
        lambda: store.exists(SFT),
    ):
        with pytest.raises(
            ArtifactStoreError,
            match=r"bucket 'no-such-bucket-h' .* does not exist; create it "
            r"\(aws s3 mb s3://no-such-bucket-h\) or point "
            "SELFINSTRUCT_ARTIFACTS",
        ):
            act()


def test_a_file_changed_after_publishing_is_refused(client, bucket, tmp_path):
    uri = S3Store(bucket, "", client, tmp_path / "w").publish_dir(writer(adapter_files(1)), SFT)
    key = uri.removeprefix(f"s3://{bucket}/") + "adapter_model.safetensors"
    client.put_object(Bucket=bucket, Key=key, Body=b"tampered")
    with pytest.raises(ArtifactStoreError, match="differs from its manifest"):
        S3Store(bucket, "", client, tmp_path / "r").fetch_dir(SFT)
    assert not list((tmp_path / "r").rglob("adapter_model.safetensors"))  # nothing half-checked is cached


def test_an_unreachable_endpoint_names_the_fix(tmp_path):
    dead = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        config=boto3.session.Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(ArtifactStoreError, match="AWS_ENDPOINT_URL_S3"):
        S3Store("b", "p", dead, tmp_path).publish_bytes("artifacts/x.json", b"{}")


# --- Dagster resources ---------------------------------------------------------------------------------------------


def test_the_artifacts_resource_reads_its_location_and_endpoint_when_the_step_runs(
    monkeypatch, moto_url, client, bucket, tmp_path
):
    @dg.asset
    def rag_program(artifacts: ArtifactsResource) -> str:
        return artifacts.store().publish_bytes(program_path("", "rag_program"), b"{}")

    resources = {"artifacts": ArtifactsResource(cache_dir=str(tmp_path / "cache"))}  # made before the env is set
    monkeypatch.setenv("SELFINSTRUCT_ARTIFACTS", f"s3://{bucket}/team")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)  # boto3's own variable, read by S3Resource's client
    uri = dg.materialize([rag_program], resources=resources).output_for_node("rag_program")
    assert uri.startswith(f"s3://{bucket}/team/artifacts/rag_program.json/versions/")
    assert "team/artifacts/rag_program.json/LATEST.json" in keys(client, bucket)

    monkeypatch.delenv("SELFINSTRUCT_ARTIFACTS")  # the same resource, the next run: the home folder, as today
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(tmp_path / "home"))
    local = dg.materialize([rag_program], resources=resources).output_for_node("rag_program")
    assert local == str(tmp_path / "home" / "artifacts" / "rag_program.json")
    assert (tmp_path / "home" / "artifacts" / "rag_program.json").read_bytes() == b"{}"

    monkeypatch.setenv("SELFINSTRUCT_ARTIFACTS", "s3://")  # refused when the step runs, naming the variable
    with pytest.raises(SettingsError, match="SELFINSTRUCT_ARTIFACTS"):
        ArtifactsResource().store()


def test_inboxes_and_cuad_read_through_dagster_aws_clients_made_at_run_time(
    monkeypatch, moto_url, client, bucket, tmp_path
):
    from dagster_aws.s3 import S3Resource

    from selfinstruct.corpus.source import open_cuad_source

    resource = InboxResource(root=f"s3://{bucket}/inbox")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)  # set after the resource was made
    inbox = resource.get("feedback")
    inbox.write("batch-1.jsonl", b'{"event_id": "e1"}\n')
    assert [f.name for f in inbox.files()] == ["batch-1.jsonl"]
    assert keys(client, bucket) == ["inbox/feedback/batch-1.jsonl"]

    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as zf:
        zf.writestr("CUAD_v1/master_clauses.csv", "Filename\n")
    client.put_object(Bucket=bucket, Key="cuad/CUAD_v1.zip", Body=blob.getvalue())
    uri = f"s3://{bucket}/cuad/CUAD_v1.zip"
    # An explicitly configured S3Resource wins over the environment, here pointed at a dead port.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    archive = open_cuad_source(uri, tmp_path, s3_client=client_for(uri, S3Resource(endpoint_url=moto_url)))
    assert archive.names() == ["CUAD_v1/master_clauses.csv"]
    assert client_for(str(tmp_path)) is None  # a local source makes no client


def test_loading_the_resources_does_not_import_dagster_aws():
    code = (
        "import sys, resources.project, resources.s3; "
        "assert 'dagster_aws' not in sys.modules and 'botocore' not in sys.modules, 'imported at load'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
