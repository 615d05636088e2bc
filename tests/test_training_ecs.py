"""sft_adapter with TrainingLauncher(backend="ecs") against moto on loopback, the training child run locally.

What is real: dagster-aws's PipesECSClient and CloudWatch message reader, every boto3 call (S3 uploads of rows,
config and base model; ECS RunTask, DescribeTasks waiter; CloudWatch Logs reads), and `python -m training sft
--config s3://...` reading its inputs from S3 and writing the adapter there. What is stood in: moto answers
AWS, and a thread plays the ECS agent, running the task's command and environment as a local process and
copying its output into the task's CloudWatch stream as the awslogs driver would. No GPU, container image or
IAM role is involved.
"""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

import boto3
import dagster as dg
import polars as pl
import pytest
from moto.server import ThreadedMotoServer

from resources.project import BaseModelResource, ProjectHome
from resources.s3 import ArtifactsResource
from resources.training_launcher import PROJECT_ROOT, TrainingLauncher
from selfinstruct_assets.finetune.adapter_assets import sft_adapter
from training import s3_files

BUCKET, CLUSTER, FAMILY, GROUP, PREFIX = "team-bucket", "gpu", "selfinstruct-train", "/selfinstruct/train", "train"
SETTINGS = {"max_steps": 2, "batch_size": 2, "grad_accum": 1, "max_length": 96, "lora_r": 4}


@pytest.fixture
def aws(monkeypatch):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    # moto moves a task towards STOPPED on each DescribeTasks; here it stops when the fake agent says so.
    transition = {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}}
    request = urllib.request.Request(
        f"{endpoint}/moto-api/state-manager/set-transition", method="POST", data=json.dumps(transition).encode()
    )
    urllib.request.urlopen(request).read()
    yield endpoint
    server.stop()


def make_cluster():
    ecs, ec2 = boto3.client("ecs"), boto3.client("ec2")
    ecs.create_cluster(clusterName=CLUSTER)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="g5.xlarge")["Instances"][0]
    ecs.register_container_instance(
        cluster=CLUSTER, instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"]})
    )
    container = {
        "name": "trainer",
        "image": "selfinstruct:latest",
        "essential": True,
        "memory": 2048,
        "cpu": 1024,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": GROUP, "awslogs-stream-prefix": PREFIX, "awslogs-region": "us-east-1"},
        },
    }
    ecs.register_task_definition(
        family=FAMILY, requiresCompatibilities=["EC2"], networkMode="bridge", containerDefinitions=[container]
    )
    boto3.client("logs").create_log_group(logGroupName=GROUP)


def fake_agent(seen: dict) -> threading.Thread:
    """Run the one task RunTask starts as a local process, ship its output to CloudWatch, then stop the task."""
    ecs, logs = boto3.client("ecs"), boto3.client("logs")

    def agent():
        deadline = time.monotonic() + 300
        while not (arns := ecs.list_tasks(cluster=CLUSTER)["taskArns"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        [task] = ecs.describe_tasks(cluster=CLUSTER, tasks=arns, include=["TAGS"])["tasks"]
        [override] = task["overrides"]["containerOverrides"]
        seen.update(
            command=override["command"],
            env={e["name"]: e["value"] for e in override["environment"]},
            tags={t["key"]: t["value"] for t in task.get("tags", [])},
        )
        # The image's `python` is this interpreter here; awslogs ships stdout and stderr to one stream.
        command = [sys.executable if part == "python" else part for part in override["command"]]
        proc = subprocess.run(
            command,
            env={**os.environ, **seen["env"]},
            cwd=PROJECT_ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
        seen.update(returncode=proc.returncode, output=proc.stdout)
        stream = f"{PREFIX}/trainer/{task['taskArn'].split('/')[-1]}"
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=GROUP,
            logStreamName=stream,
            logEvents=[{"timestamp": now, "message": line} for line in proc.stdout.splitlines() if line.strip()],
        )
        ecs.stop_task(cluster=CLUSTER, task=task["taskArn"], reason="Essential container in task exited")

    thread = threading.Thread(target=agent, daemon=True)
    thread.start()
    return thread


def test_ecs_launcher_runs_the_same_command_on_s3(aws, home, tiny):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3_files.upload_dir(s3, tiny, f"s3://{BUCKET}/models/tiny")
    make_cluster()
    seen: dict = {}
    agent = fake_agent(seen)

    @dg.asset(name="sft_dataset")
    def sft_dataset() -> pl.DataFrame:
        prompt = json.dumps([{"role": "user", "content": "Which law governs the Agreement?"}])
        return pl.DataFrame({"prompt_json": [prompt] * 4, "answer": ["The laws of New York."] * 4})

    launcher = TrainingLauncher(
        backend="ecs",
        cluster=CLUSTER,
        task_definition=FAMILY,
        poll_seconds=1,
        s3_prefix=f"s3://{BUCKET}/selfinstruct",
        base_model_uri=f"s3://{BUCKET}/models/tiny",
    )
    # The local base model path must not reach the node: it reads the model from S3.
    result = dg.materialize(
        [sft_dataset, sft_adapter],
        raise_on_error=False,
        resources={
            "home": ProjectHome(path=str(home)),
            "training": launcher,
            "base_model": BaseModelResource(path=str(tiny)),
            "artifacts": ArtifactsResource(location=str(home)),
        },
        run_config={"ops": {"sft_adapter": {"config": SETTINGS}}},
    )
    agent.join(timeout=60)
    assert seen.get("returncode") == 0, seen.get("output", "")[-3000:]
    assert result.success

    run = f"s3://{BUCKET}/selfinstruct/runs/{result.run_id}/sft"
    assert seen["command"] == ["python", "-m", "training", "sft", "--config", f"{run}/config.json"]
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"} <= set(seen["env"])
    assert result.run_id in seen["tags"].values()  # the Pipes client tags the task with the run
    config = s3_files.read_json(s3, f"{run}/config.json")
    assert config["dataset"] == f"{run}/rows.jsonl" and config["out_dir"] == f"{run}/adapter"
    assert config["base_model"] == f"s3://{BUCKET}/models/tiny" and config["settings"]["max_steps"] == 2

    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"selfinstruct/runs/{result.run_id}/sft/adapter/")
    assert {o["Key"].rsplit("/", 1)[1] for o in listed["Contents"]} == {
        "adapter_config.json",
        "adapter_model.safetensors",
        "training_metrics.json",
    }
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["sft_adapter"]]
    md = {k: v.value for k, v in event.materialization.metadata.items()}
    out = home / "adapters" / "sft"
    assert md["adapter_uri"] == f"{run}/adapter" and md["adapter_path"] == str(out) and md["steps"] == 2
    assert (out / "adapter_model.safetensors").read_bytes() == s3.get_object(
        Bucket=BUCKET, Key=f"selfinstruct/runs/{result.run_id}/sft/adapter/adapter_model.safetensors"
    )["Body"].read()
    assert "AWS ECS Task URL" in md
