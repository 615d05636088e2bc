"""Every configured outside service that is missing, refuses or does not answer fails at the start, in one
sentence naming the variable, the address without secrets, and the fix (PostgreSQL, Redis and RabbitMQ: the
real servers on loopback that `make services` starts; the others: loopback sockets that refuse or stay silent)."""

import os
import socket
import subprocess
import sys
import threading
import uuid

import pytest
from procs import REPO
from services import PG_ADMIN, require_redis, require_tcp

from selfinstruct.core.inbox import Inbox
from selfinstruct.core.inbox_types import InboxUnavailable
from selfinstruct.core.services import ServiceUnavailable, check_broker, check_http, check_postgres


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers (a hung server)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


def _one_sentence(message: str, variable: str, *parts: str) -> None:
    assert message.startswith(f"{variable}: ") and "\n" not in message and "Traceback" not in message
    for part in parts:
        assert part in message, message
    assert "hunter2" not in message


def test_postgres_missing_database_role_password_or_closed_port_are_named_with_the_fix(closed_port):
    require_tcp("PostgreSQL", "127.0.0.1", 5432)
    host = PG_ADMIN.split("@", 1)[1].split("/", 1)[0]
    missing_db = f"nodb_{uuid.uuid4().hex[:8]}"
    cases = [
        (f"postgresql+psycopg2://postgres:hunter2@{host}/{missing_db}", f"has no database '{missing_db}'", "createdb"),
        (f"postgresql+psycopg2://norole_x:hunter2@{host}/postgres", "has no role 'norole_x'", "createuser"),
        (f"postgresql+psycopg2://u:hunter2@127.0.0.1:{closed_port}/db", "refuses connections", "make services"),
    ]
    for url, problem, fix in cases:
        with pytest.raises(ServiceUnavailable) as failed:
            check_postgres(url)
        _one_sentence(str(failed.value), "SELFINSTRUCT_PG_URL", problem, fix, ":***@")
    check_postgres(PG_ADMIN)  # the server itself is fine


def test_the_instance_command_stops_at_once_on_a_postgres_it_cannot_use(tmp_path, closed_port):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "SELFINSTRUCT_HOME": str(tmp_path)}
    env["SELFINSTRUCT_PG_URL"] = f"postgresql+psycopg2://u:hunter2@127.0.0.1:{closed_port}/dagster"
    done = subprocess.run(
        [sys.executable, "-m", "selfinstruct_assets.instance", "--postgres"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") <= 2 and "Traceback" not in done.stderr  # was a 200-line traceback
    _one_sentence(done.stderr.strip().removeprefix("selfinstruct: "), "SELFINSTRUCT_PG_URL", "refuses connections")


def test_a_celery_broker_that_is_down_or_refuses_stops_the_definitions_from_loading(monkeypatch, closed_port):
    from selfinstruct_assets.executors import executor_for

    monkeypatch.setenv("SELFINSTRUCT_CELERY_BROKER", f"redis://:hunter2@127.0.0.1:{closed_port}/0")
    with pytest.raises(ServiceUnavailable) as failed:
        executor_for("celery")
    _one_sentence(str(failed.value), "SELFINSTRUCT_CELERY_BROKER", "Redis", "refuses connections", "start Redis")
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    with pytest.raises(ServiceUnavailable) as failed:
        check_broker("amqp://guest:hunter2@127.0.0.1:5672//", "SELFINSTRUCT_CELERY_BROKER", timeout_s=5)
    _one_sentence(str(failed.value), "SELFINSTRUCT_CELERY_BROKER", "RabbitMQ", "refused", "amqp://guest:***@")
    require_redis()
    check_broker("redis://127.0.0.1:6379/0")  # a broker that works passes


def test_an_openai_compatible_endpoint_that_refuses_or_hangs_fails_when_the_lm_is_built(
    tmp_path, closed_port, silent_port
):
    from resources.llm import LLMResource, LMSpec

    llm = LLMResource(
        home=str(tmp_path), generator=LMSpec(backend="openai", model="m", base_url=f"http://127.0.0.1:{closed_port}/v1")
    )
    with pytest.raises(ServiceUnavailable) as failed:
        llm.lm("generator")
    _one_sentence(str(failed.value), "LMSpec.base_url", f"127.0.0.1:{closed_port}", "refuses connections", "vLLM")
    with pytest.raises(ServiceUnavailable) as failed:
        check_http(f"http://127.0.0.1:{silent_port}/v1", "LMSpec.base_url", "the endpoint", timeout_s=1)
    _one_sentence(str(failed.value), "LMSpec.base_url", "does not answer HTTP")


def test_bedrock_without_credentials_or_region_is_named_when_the_lm_is_built(tmp_path, monkeypatch):
    from resources.llm import LLMResource, LMSpec

    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    spec = dict(backend="bedrock", model="anthropic.claude-3-haiku-20240307-v1:0")
    with pytest.raises(ServiceUnavailable, match="LMSpec.region: Bedrock needs a region"):
        LLMResource(home=str(tmp_path), generator=LMSpec(**spec)).lm("generator")
    with pytest.raises(ServiceUnavailable, match="no AWS credentials were found; set AWS_PROFILE"):
        LLMResource(home=str(tmp_path), generator=LMSpec(region="us-east-1", **spec)).lm("generator")


def test_an_s3_inbox_whose_endpoint_is_down_says_so_not_credentials(closed_port, monkeypatch):
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{closed_port}",
        region_name="us-east-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="hunter2",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(InboxUnavailable) as failed:
        Inbox("s3://bucket/inbox/feedback/", s3_client=client).files()
    message = str(failed.value)
    assert "the S3 endpoint cannot be reached" in message and "AWS_ENDPOINT_URL" in message
    assert "set AWS credentials" not in message and "hunter2" not in message


def test_a_hung_http_service_is_cut_at_the_timeout(silent_port):
    finished = threading.Event()

    def probe():
        with pytest.raises(ServiceUnavailable):
            check_http(f"http://127.0.0.1:{silent_port}", "SELFINSTRUCT_CHROMA_URL", "Chroma", timeout_s=1)
        finished.set()

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(10)
    assert finished.is_set()


def test_cli_feedback_add_to_an_s3_inbox_without_its_bucket_is_one_sentence(tmp_path, monkeypatch, capsys):
    import duckdb
    from moto import mock_aws

    from selfinstruct_assets.cli import main

    monkeypatch.setenv("SELFINSTRUCT_HOME", str(tmp_path))
    monkeypatch.setenv("SELFINSTRUCT_INBOX", "s3://no-such-bucket/in")
    for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with duckdb.connect(str(tmp_path / "selfinstruct.duckdb")) as conn:
        conn.execute("create table cuad_contracts as select 'c-train' as contract_id, 'train' as split, 'a' as sha256")
    with mock_aws():
        code = main(
            ["feedback", "add", "--question", "Who?", "--answer", "Acme", "--contract-id", "c-train", "--score", "1"]
        )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("selfinstruct: bucket 'no-such-bucket' of inbox s3://no-such-bucket/in/feedback/")
    assert "create it or point SELFINSTRUCT_INBOX" in err


def test_a_chroma_server_that_hangs_or_refuses_is_named_instead_of_waiting_for_ever(silent_port, closed_port):
    from resources.chroma_store import ChromaServerError, make_client

    for port, problem in ((silent_port, "does not answer HTTP"), (closed_port, "refuses connections")):
        outcome = {}

        def connect(port=port, outcome=outcome):
            try:
                make_client("http", host="127.0.0.1", port=port)
            except ChromaServerError as exc:
                outcome["error"] = str(exc)

        worker = threading.Thread(target=connect, daemon=True)
        worker.start()
        worker.join(30)  # before: a server that accepted and never answered held the step for ever
        assert "error" in outcome, "make_client is still waiting"
        assert problem in outcome["error"] and f"127.0.0.1:{port}" in outcome["error"]
        assert "chroma run" in outcome["error"] and "SELFINSTRUCT_CHROMA_URL" in outcome["error"]
