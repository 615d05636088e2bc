"""With SELFINSTRUCT_ARTIFACTS=s3://..., the RAG programs are published to S3 (a real moto server on loopback) and
the assets that read them get exactly the recorded version back."""

import json
import uuid

import boto3
import dagster as dg
import pytest
from fakes import FakeLLMResource
from moto.server import ThreadedMotoServer

from resources.project import EmbedderResource
from selfinstruct_assets.definitions import ALL_CHECKS, ASSETS, default_resources
from selfinstruct_assets.locations import recorded_uri, required_path


@pytest.fixture
def s3_artifacts(monkeypatch):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": url,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"art-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=url)
    client.create_bucket(Bucket=bucket)
    monkeypatch.setenv("SELFINSTRUCT_ARTIFACTS", f"s3://{bucket}/team")
    yield client, bucket
    server.stop()


def test_rag_programs_live_on_s3_and_consumers_read_the_recorded_version(small_cuad, home, s3_artifacts):
    client, bucket = s3_artifacts
    resources = {**default_resources(), "embedder": EmbedderResource(backend="hashing"), "llm": FakeLLMResource()}
    config = {
        "ops": {
            "cuad_corpus": {"config": {"uri": str(small_cuad)}},
            "synthetic_qa": {"config": {"n_chunks": 4}},
            "optimized_rag_program": {"config": {"n_train_questions": 3}},
        }
    }
    names = [
        "cuad_contracts",
        "cuad_annotations",
        "cuad_rejects",
        "contract_chunks",
        "vector_index",
        "seed_qa",
        "synthetic_qa",
        "synthetic_qa_rejects",
        "rag_program",
        "optimized_rag_program",
    ]
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            ASSETS + ALL_CHECKS,
            resources=resources,
            run_config=config,
            instance=instance,
            selection=dg.AssetSelection.assets(*names),
        )
        assert result.success
        uri = recorded_uri(instance, "optimized_rag_program")
        assert uri.startswith(f"s3://{bucket}/team/artifacts/optimized_rag_program.json/versions/")
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
        assert any(k.endswith("optimized_rag_program.json/LATEST.json") for k in keys)
        # The consumer's copy is the published version, byte for byte, read back from S3.
        body = client.get_object(Bucket=bucket, Key=uri.removeprefix(f"s3://{bucket}/"))["Body"].read()
        local = required_path(instance, "optimized_rag_program")
        assert local.read_bytes() == body
        assert "generate" in json.loads(body)
        # The held-out check on the compiled demos read the program through the same path.
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks["optimized_demos_held_out"]


def test_an_adapter_and_its_rows_are_published_to_s3_and_read_back_by_consumers(home, tiny, s3_artifacts):
    import polars as pl
    from safetensors.torch import load_file

    from resources.project import BaseModelResource, ProjectHome
    from resources.s3 import ArtifactsResource
    from resources.training_launcher import TrainingLauncher
    from selfinstruct_assets.finetune.adapter_assets import sft_adapter
    from selfinstruct_assets.locations import trained_adapters

    client, bucket = s3_artifacts

    @dg.asset(name="sft_dataset")
    def sft_dataset() -> pl.DataFrame:
        prompt = json.dumps([{"role": "user", "content": "Which law governs the Agreement?"}])
        return pl.DataFrame({"prompt_json": [prompt] * 4, "answer": ["The laws of New York."] * 4})

    settings = {"max_steps": 2, "batch_size": 2, "grad_accum": 1, "max_length": 96, "lora_r": 4}
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [sft_dataset, sft_adapter],
            instance=instance,
            resources={
                "home": ProjectHome(path=str(home)),
                "base_model": BaseModelResource(path=str(tiny)),
                "training": TrainingLauncher(),
                "artifacts": ArtifactsResource(),
            },
            run_config={"ops": {"sft_adapter": {"config": settings}}},
        )
        assert result.success
        uri = recorded_uri(instance, "sft_adapter", "adapter_path")
        assert uri.startswith(f"s3://{bucket}/team/adapters/sft/versions/")
        assert recorded_uri(instance, "sft_adapter", "dataset_path").startswith(f"s3://{bucket}/team/datasets/")
        fetched = trained_adapters(instance)["sft"]
        assert not str(fetched).startswith(str(home / "adapters"))  # a download of the S3 version
        local = load_file(home / "adapters" / "sft" / "adapter_model.safetensors")
        remote = load_file(fetched / "adapter_model.safetensors")
        assert local.keys() == remote.keys() and all((local[k] == remote[k]).all() for k in local)
