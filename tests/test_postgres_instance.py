"""The Dagster instance on a real PostgreSQL server (loopback), in a database created for the test and dropped.

A corpus job runs in the test's process on that instance; then the daemon runs against the PostgreSQL instance that `instance.py --postgres` writes: a contract dropped in
the inbox makes `new_contracts_sensor` tick (schedule storage), add a partition and request a run, which
the daemon launches (run storage) and which materialises the contract (event log); the test then
queries the run back and reads the same rows with SQL.
"""

import os
import subprocess
import sys
import time
from pathlib import PurePosixPath

import dagster as dg
import psycopg2
import pytest
from conftest import subset_archive, txt_name_for
from procs import REPO, log_tail, start, stop
from services import fresh_pg_database

from selfinstruct.corpus.cuad import contract_id_for
from selfinstruct_assets.definitions import ASSETS, default_resources
from selfinstruct_assets.instance import PG_URL_ENV

DEADLINE_S = 120


@pytest.fixture
def pg_env(tmp_path, monkeypatch):
    with fresh_pg_database() as url:
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; dagster-postgres needs psycopg2
        url = url.replace("postgresql://", "postgresql+psycopg2://", 1)
        env = {
            "SELFINSTRUCT_HOME": str(tmp_path / "home"),
            "DAGSTER_HOME": str(tmp_path / "dagster"),
            PG_URL_ENV: url,
            "SELFINSTRUCT_EMBEDDER": "hashing",
            "HF_HUB_OFFLINE": "1",
            "DAGSTER_DISABLE_TELEMETRY": "1",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        made = subprocess.run(
            [sys.executable, "-m", "selfinstruct_assets.instance", "--postgres"],
            cwd=REPO,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        assert made.returncode == 0, made.stderr
        yield {**os.environ, **env}


def wait_for_run(instance, cid, log) -> dg.DagsterRun:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        runs = instance.get_runs(
            filters=dg.RunsFilter(job_name="contract_refresh_job", tags={"dagster/partition": cid})
        )
        if runs and runs[0].is_finished:
            return runs[0]
        time.sleep(1)
    raise AssertionError(f"no finished contract_refresh_job for {cid} within {DEADLINE_S} s:\n{log_tail(log)}")


@pytest.mark.slow
def test_daemon_sensor_tick_run_and_query_on_postgres(cuad_members, pg_env, tmp_path):
    yaml = (tmp_path / "dagster" / "dagster.yaml").read_text()
    assert "postgres_url" in yaml and pg_env[PG_URL_ENV] not in yaml  # the URL stays in the environment
    member = txt_name_for(cuad_members["rows"][30][0], cuad_members["texts"])
    inbox = tmp_path / "home" / "inbox" / "contracts"
    inbox.mkdir(parents=True)
    (inbox / PurePosixPath(member).name).write_bytes(cuad_members["texts"][member])
    cid = contract_id_for(PurePosixPath(member).name)
    with dg.DagsterInstance.get() as instance:  # a job run in this process: the corpus the sensor reads
        corpus = dg.materialize(
            ASSETS,
            instance=instance,
            resources=default_resources(),
            selection=dg.AssetSelection.assets("cuad_contracts", "cuad_annotations", "cuad_rejects"),
            run_config={
                "ops": {"cuad_corpus": {"config": {"uri": str(subset_archive(cuad_members, tmp_path / "cuad.zip", 2))}}}
            },
        )
        assert corpus.success and instance.get_run_by_id(corpus.run_id).status == dg.DagsterRunStatus.SUCCESS

    daemon = start("dagster-daemon", ["run", "-w", "workspace.yaml"], pg_env, tmp_path / "daemon.log")
    try:
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            run = wait_for_run(instance, cid, tmp_path / "daemon.log")
            assert run.status == dg.DagsterRunStatus.SUCCESS, log_tail(tmp_path / "daemon.log")
            assert cid in instance.get_dynamic_partitions("added_contracts")
            sensor_ticks = [t for t in instance.all_instigator_state() if t.name == "new_contracts_sensor"]
            [state] = sensor_ticks
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
            assert any(run.run_id in t.run_ids for t in ticks)
            done = {
                e.dagster_event.asset_key.to_user_string()
                for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
            }
            assert done == {"added_contracts", "added_contract_chunks", "added_contract_index"}
    finally:
        stop(daemon)
    with (
        psycopg2.connect(pg_env[PG_URL_ENV].replace("+psycopg2", "")) as conn,
        conn.cursor() as cur,
    ):  # the rows are in PostgreSQL
        cur.execute("select status from runs where run_id = %s", (run.run_id,))
        assert cur.fetchone() == ("SUCCESS",)
        cur.execute(
            "select count(*) from job_ticks where %s = any(string_to_array(tick_body, '\"')) or tick_body like %s",
            (run.run_id, f"%{run.run_id}%"),
        )
        assert cur.fetchone()[0] >= 1
