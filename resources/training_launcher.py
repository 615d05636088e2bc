"""Where `python -m training` runs for the adapter assets: a local subprocess (default) or an ECS task.

    TrainingLauncher()                                             # this interpreter, -m training KIND --config FILE
    TrainingLauncher(backend="ecs", cluster="gpu", task_definition="selfinstruct-train",
                     s3_prefix="s3://bucket/selfinstruct", base_model_uri="s3://bucket/models/smollm2")

Both run the same command through Dagster Pipes: the child logs each training step, reports the adapter's
metrics as the asset's materialisation and exits, which frees its memory. A child that raises fails the step
with its own error; one killed by a signal (SIGKILL is what the kernel's out-of-memory killer sends) fails it
naming the signal. Training publishes by rename, so neither leaves an adapter behind.
"""

from __future__ import annotations

import re
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

import training
from selfinstruct.core.artifacts import publish_dir
from selfinstruct.core.memory import release_memory
from selfinstruct.core.s3_uri import is_s3_uri
from training import s3_files
from training.job import TrainingJob

PROJECT_ROOT = Path(training.__file__).resolve().parents[1]  # where `-m training` imports from
CLOSED_WITH_ERROR = "[pipes] external process pipes closed with exception"
BACKENDS = ("subprocess", "ecs")


def exit_code_of(error: Exception) -> int | None:
    """The child's exit status in PipesSubprocessClient's "failed with code N" (negative: killed by signal -N)."""
    match = re.search(r"failed with code (-?\d+)", str(error))
    return int(match.group(1)) if match else None


def describe_failure(kind: str, out_dir: Path, error: Exception, child_error: str | None) -> str:
    """The step's failure message: the child's own error, else the signal or exit code, and what was published."""
    code = exit_code_of(error)
    state = "keeps the previous adapter" if Path(out_dir).exists() else "does not exist"
    nothing = f"Nothing was published: {out_dir} {state}."
    if child_error:
        return f"{kind} training failed in the child process: {child_error.strip().rstrip('.')}. {nothing}"
    if code is not None and (code < 0 or code in (137, 128 + signal.SIGTERM)):
        number = -code if code < 0 else code - 128  # a container reports a signal as 128 + its number
        name = signal.Signals(number).name
        oom = (
            (" (the kernel's out-of-memory killer sends SIGKILL: give it more memory or lower batch_size / max_length)")
            if number == signal.SIGKILL
            else ""
        )
        return f"{kind} training was killed by {name}, exit code {code}{oom}. {nothing}"
    if code is not None:
        return f"{kind} training exited with code {code}; its output is in the step's logs. {nothing}"
    return f"{kind} training failed: {error}. {nothing}"


def child_error(context: dg.AssetExecutionContext) -> str | None:
    """The exception the child reported through Pipes for this step (Pipes records it as an engine event)."""
    step = context.get_step_execution_context().step.key
    for entry in reversed(context.instance.all_logs(context.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        if entry.step_key == step and CLOSED_WITH_ERROR in (entry.message or "") and data and data.error:
            return data.error.message
    return None


@contextmanager
def step_failure(context: dg.AssetExecutionContext, job: TrainingJob):
    try:
        yield
    except dg.Failure:
        raise
    except Exception as error:  # the Pipes client's own errors only say "failed with code N"
        raise dg.Failure(description=describe_failure(job.kind, job.out_dir, error, child_error(context))) from error


def reported_metadata(invocation) -> dict:
    """The child's materialisation metadata plus what the client adds (e.g. the ECS task's URL)."""
    return {**invocation.get_materialize_result().metadata, **invocation.metadata}


class TrainingLauncher(dg.ConfigurableResource):
    """Runs `python -m training KIND --config ...` through Dagster Pipes: `subprocess` here, or `ecs` on a GPU node."""

    backend: str = "subprocess"
    python: str = ""  # subprocess: the interpreter; empty = the one running Dagster
    cluster: str = ""  # ecs: cluster name or ARN
    task_definition: str = ""  # ecs: family[:revision] whose container has the project and a GPU
    container_name: str = "trainer"  # ecs: the container the command runs in
    launch_type: str = "EC2"  # ecs: GPUs are on EC2 container instances; Fargate has none
    subnets: str = ""  # ecs: comma-separated, for task definitions in awsvpc network mode
    security_groups: str = ""  # ecs: comma-separated, with `subnets`
    s3_prefix: str = ""  # ecs: s3://bucket/prefix for each run's rows, config and adapter
    base_model_uri: str = ""  # ecs: the base model on S3 (s3://...) or a folder inside the image
    poll_seconds: float = 6.0  # ecs: how often the task's state is read

    def train(self, context: dg.AssetExecutionContext, job: TrainingJob) -> dict:
        """Run `job` and return the metadata the child reported, with `adapter_path` a local folder."""
        if self.backend == "subprocess":
            return self._subprocess(context, job)
        if self.backend == "ecs":
            return self._ecs(context, job)
        raise dg.Failure(f"TrainingLauncher backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")

    def _subprocess(self, context: dg.AssetExecutionContext, job: TrainingJob) -> dict:
        command = job.command(str(job.write_config()), self.python or sys.executable)
        # The child and this process share the machine while it trains: models cached here reload when next asked.
        before, after = release_memory()
        if before is not None:
            context.log.info(
                f"before {job.kind} training this process released memory: RSS {before:.2f} -> {after:.2f} GiB"
            )
        with step_failure(context, job):
            invocation = dg.PipesSubprocessClient(cwd=str(PROJECT_ROOT)).run(context=context, command=command)
        return reported_metadata(invocation)

    def run_task_params(self, command: list[str]) -> dict:
        """The ECS RunTask request (the Pipes client adds its environment and tags)."""
        params = {
            "cluster": self.cluster,
            "taskDefinition": self.task_definition,
            "launchType": self.launch_type,
            "count": 1,
            "overrides": {"containerOverrides": [{"name": self.container_name, "command": command}]},
        }
        if self.subnets:
            params["networkConfiguration"] = {
                "awsvpcConfiguration": {
                    "subnets": _names(self.subnets),
                    "securityGroups": _names(self.security_groups),
                    "assignPublicIp": "DISABLED",
                }
            }
        return params

    def stage_on_s3(self, s3, job: TrainingJob, run_id: str) -> str:
        """Upload the rows (and a start adapter) and the config naming them; returns the config's URI."""
        if not (is_s3_uri(self.s3_prefix) and self.base_model_uri and self.cluster and self.task_definition):
            raise dg.Failure(
                "TrainingLauncher(backend='ecs') needs cluster, task_definition, s3_prefix (s3://...) "
                "and base_model_uri (the base model on S3 or inside the image)"
            )
        base = f"{self.s3_prefix.rstrip('/')}/runs/{run_id}/{job.kind}"
        where = {
            "base_model": self.base_model_uri,
            "out_dir": f"{base}/adapter",
            "dataset": s3_files.upload_file(s3, job.dataset, f"{base}/rows.jsonl"),
        }
        if job.start_adapter:
            s3_files.upload_dir(s3, job.start_adapter, f"{base}/start_adapter")
            where["start_adapter"] = f"{base}/start_adapter"
        return s3_files.put_json(s3, f"{base}/config.json", job.config(**where))

    def _ecs(self, context: dg.AssetExecutionContext, job: TrainingJob) -> dict:
        import boto3
        from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesECSClient
        from dagster_aws.pipes.clients.utils import WaiterConfig

        s3 = s3_files.client()
        config_uri = self.stage_on_s3(s3, job, context.run_id)
        client = PipesECSClient(
            client=boto3.client("ecs"), message_reader=PipesCloudWatchMessageReader(client=boto3.client("logs"))
        )
        with step_failure(context, job):
            invocation = client.run(
                context=context,
                run_task_params=self.run_task_params(job.command(config_uri)),
                waiter_config=WaiterConfig(Delay=int(max(1, self.poll_seconds)), MaxAttempts=1_000_000),
            )
        metadata = reported_metadata(invocation)
        uri = metadata["adapter_path"].value
        # Benchmark and serving read adapters from local disk: bring it home, published whole as training does.
        publish_dir(lambda tmp: s3_files.download(s3, uri, tmp), job.out_dir)
        return {**metadata, "adapter_uri": uri, "adapter_path": str(job.out_dir)}


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
