"""Which executor runs a job's steps, chosen by name: `in_process` (default), `multiprocess` or `celery`.

    SELFINSTRUCT_EXECUTOR=celery SELFINSTRUCT_CELERY_BROKER=redis://127.0.0.1:6379/0 dagster dev ...

`celery` sends each step to Celery workers (`deploy/celery_worker.yaml` starts one) through a Redis or
RabbitMQ broker. The run's own process still claims the `selfinstruct_duckdb` pool slot before it
submits a step, so DuckDB writers stay one at a time however many workers there are. The broker URL
(it may carry a password) is read by Dagster from the environment when a run starts, never stored in
the job's definition.
"""

import dagster as dg

from selfinstruct.core import settings
from selfinstruct.core.services import check_broker

EXECUTOR_ENV = "SELFINSTRUCT_EXECUTOR"
BROKER_ENV = "SELFINSTRUCT_CELERY_BROKER"
BACKEND_ENV = "SELFINSTRUCT_CELERY_BACKEND"  # optional: defaults to the broker (right for Redis)
NAMES = ("in_process", "multiprocess", "celery")


def executor_for(name: str = "") -> dg.ExecutorDefinition:
    """The executor called `name`; empty means $SELFINSTRUCT_EXECUTOR, else in_process."""
    name = name or settings.get(EXECUTOR_ENV)
    if name == "in_process":
        # One process: torch loads once per run, and DuckDB steps are serialised by the pool anyway.
        return dg.in_process_executor
    if name == "multiprocess":
        return dg.multiprocess_executor
    if name == "celery":
        return _celery()
    raise ValueError(f"{EXECUTOR_ENV} must be one of {', '.join(NAMES)}, got {name!r}")


def _celery() -> dg.ExecutorDefinition:
    try:
        from dagster_celery import celery_executor
    except ImportError as exc:  # an optional dependency on a slim install
        raise RuntimeError("the celery executor needs dagster-celery: pip install 'dagster-celery==0.29.*'") from exc
    if not settings.get(BROKER_ENV):
        raise RuntimeError(
            f"the celery executor needs {BROKER_ENV} (e.g. redis://127.0.0.1:6379/0 or "
            "amqp://guest@127.0.0.1:5672//) in the environment of Dagster and of every worker"
        )
    # Checked when the definitions load: a broker that is down would otherwise hang or fail the run's first step.
    check_broker(settings.get(BROKER_ENV), BROKER_ENV)
    if settings.get(BACKEND_ENV):
        check_broker(settings.get(BACKEND_ENV), BACKEND_ENV)
    backend = BACKEND_ENV if settings.get(BACKEND_ENV) else BROKER_ENV
    return celery_executor.configured({"broker": {"env": BROKER_ENV}, "backend": {"env": backend}}, name="celery")
