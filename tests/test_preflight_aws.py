"""An S3 artifact store (SELFINSTRUCT_ARTIFACTS=s3://...) and the Titan embedder (SELFINSTRUCT_EMBEDDER=titan) that
cannot be used fail when the run or command starts, in one sentence naming the variable, the address (no secrets)
and the fix: a missing bucket (moto's server), an endpoint that refuses or hangs (loopback sockets), no credentials,
no region. Before, an S3 store was first asked after the step's work (an adapter trained, then the upload failed),
a hung endpoint held `selfinstruct promote` for minutes, and Titan failed at its first chunk with boto3's error.
"""

import socket
import time
import uuid

import boto3
import dagster as dg
import pytest
from moto.server import ThreadedMotoServer

from resources.embedders import TitanEmbedder
from resources.project import EmbedderResource
from resources.s3 import ArtifactsResource
from selfinstruct.core.artifact_store import ArtifactStoreError
from selfinstruct.core.services import ServiceUnavailable
from selfinstruct_assets.cli import main

SECRET = "hunter2-secret-key"


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(monkeypatch, tmp_path):
    """Keys moto accepts and nothing from the machine (profiles, instance metadata)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(tmp_path / "home"))
    return monkeypatch


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers (a hung S3 endpoint)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


def one_sentence(message: str, variable: str, *parts: str) -> None:
    assert message.startswith(f"{variable}: ") and "\n" not in message and "Traceback" not in message, message
    for part in parts:
        assert part in message, message
    assert SECRET not in message


def store_error(aws, endpoint: str, location: str) -> str:
    aws.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    aws.setenv("SELFINSTRUCT_ARTIFACTS", location)
    with pytest.raises(ServiceUnavailable) as failed:
        ArtifactsResource().store()
    assert isinstance(failed.value, ArtifactStoreError)  # callers that catch the store's errors still do
    return str(failed.value)


# ------------------------------------------------------------------------------------------------ S3 artifact store


def test_a_missing_bucket_is_named_when_the_store_is_opened(aws, moto_url):
    message = store_error(aws, moto_url, "s3://no-such-bucket-a/team")
    one_sentence(
        message,
        "SELFINSTRUCT_ARTIFACTS",
        "bucket 'no-such-bucket-a' of the artifact store s3://no-such-bucket-a/team",
        moto_url,
        "create it (aws s3 mb s3://no-such-bucket-a)",
    )
    bucket = f"ok-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_url).create_bucket(Bucket=bucket)
    aws.setenv("SELFINSTRUCT_ARTIFACTS", f"s3://{bucket}/team")
    assert ArtifactsResource().store().uri("x") == f"s3://{bucket}/team/x"  # an existing bucket passes


def test_an_endpoint_that_refuses_or_hangs_is_named_within_seconds_not_credentials(aws, closed_port, silent_port):
    refused = store_error(aws, f"http://127.0.0.1:{closed_port}", "s3://team-bucket/team")
    one_sentence(
        refused, "SELFINSTRUCT_ARTIFACTS", "s3://team-bucket/team", "refuses connections", "AWS_ENDPOINT_URL_S3"
    )
    assert "credentials" not in refused
    t0 = time.monotonic()
    hung = store_error(aws, f"http://127.0.0.1:{silent_port}", "s3://team-bucket/team")
    assert time.monotonic() - t0 < 20  # boto3 alone waits 60 s per try, with retries
    one_sentence(hung, "SELFINSTRUCT_ARTIFACTS", f"127.0.0.1:{silent_port}", "does not answer HTTP", "MinIO")


def test_no_credentials_are_named(aws, moto_url):
    aws.delenv("AWS_ACCESS_KEY_ID")
    aws.delenv("AWS_SECRET_ACCESS_KEY")
    message = store_error(aws, moto_url, "s3://some-bucket/team")
    one_sentence(message, "SELFINSTRUCT_ARTIFACTS", "no AWS credentials were found", "AWS_PROFILE", "local folder")


def test_a_run_fails_before_its_first_step_when_the_store_cannot_be_used(aws, moto_url, tmp_path):
    ran = tmp_path / "first-step-ran"

    @dg.asset
    def training_rows() -> int:  # stands for the hour of work before an adapter is published
        ran.write_text("yes")
        return 1

    @dg.asset
    def adapter(training_rows: int, artifacts: ArtifactsResource) -> str:
        return artifacts.store().publish_bytes("artifacts/x.json", b"{}")

    aws.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    aws.setenv("SELFINSTRUCT_ARTIFACTS", "s3://no-such-bucket-r/team")
    result = dg.materialize(
        [training_rows, adapter], resources={"artifacts": ArtifactsResource()}, raise_on_error=False
    )
    assert not result.success
    assert not ran.exists()  # the run stopped when its resources were set up
    failures = [e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
    text = " ".join(str(e.event_specific_data) for e in failures)
    assert "SELFINSTRUCT_ARTIFACTS: bucket 'no-such-bucket-r'" in text and "aws s3 mb" in text


def test_selfinstruct_promote_says_it_in_one_sentence_at_once(aws, silent_port, capsys):
    aws.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{silent_port}")
    aws.setenv("SELFINSTRUCT_ARTIFACTS", "s3://team-bucket/team")
    t0 = time.monotonic()
    assert main(["promote", "--list"]) == 2
    assert time.monotonic() - t0 < 20  # before: more than 150 s, silent
    err = capsys.readouterr().err.strip()
    assert err.startswith("selfinstruct: ") and "\n" not in err
    one_sentence(err.removeprefix("selfinstruct: "), "SELFINSTRUCT_ARTIFACTS", "does not answer HTTP")


# ------------------------------------------------------------------------------------------------ Titan embedder


def test_titan_without_region_or_credentials_is_named_when_made(aws):
    aws.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ServiceUnavailable) as failed:
        TitanEmbedder()
    one_sentence(str(failed.value), "SELFINSTRUCT_EMBEDDER=titan", "needs a region", "AWS_REGION", "MiniLM")
    aws.delenv("AWS_ACCESS_KEY_ID")
    aws.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ServiceUnavailable) as failed:
        EmbedderResource(backend="titan", aws_region="eu-west-1").get()
    one_sentence(
        str(failed.value), "SELFINSTRUCT_EMBEDDER=titan", "Bedrock in eu-west-1", "no AWS credentials", "AWS_PROFILE"
    )


def test_a_run_with_titan_and_no_credentials_fails_before_its_first_step(aws, tmp_path):
    aws.delenv("AWS_ACCESS_KEY_ID")
    aws.delenv("AWS_SECRET_ACCESS_KEY")
    ran = tmp_path / "first-step-ran"

    @dg.asset
    def contract_chunks() -> int:
        ran.write_text("yes")
        return 1

    @dg.asset
    def vector_index(contract_chunks: int, embedder: EmbedderResource) -> int:
        return len(embedder.get().embed(["a clause"]))

    result = dg.materialize(
        [contract_chunks, vector_index], resources={"embedder": EmbedderResource(backend="titan")}, raise_on_error=False
    )
    assert not result.success and not ran.exists()
    text = " ".join(
        str(e.event_specific_data) for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"
    )
    assert "SELFINSTRUCT_EMBEDDER=titan: Bedrock in us-east-1: no AWS credentials were found" in text
