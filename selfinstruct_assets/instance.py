"""The Dagster instance settings the project needs, written into DAGSTER_HOME when missing.

    python -m selfinstruct_assets.instance               # SQLite under DAGSTER_HOME (make ui / make demo)
    python -m selfinstruct_assets.instance --postgres    # runs, events and schedules in PostgreSQL

DuckDB allows one writing process, so every step that touches the DuckDB file joins one concurrency
pool (`selfinstruct_duckdb`) and the instance lets one such step run at a time across all runs.

The PostgreSQL form names no server and no password: Dagster reads the URL from `SELFINSTRUCT_PG_URL`
(`postgresql://user:password@host:5432/db`) whenever the instance is opened, so the secret lives only
in the environment of the processes that need it (webserver, daemon, run and step workers).
"""

import argparse
import os
import sys
from pathlib import Path

from selfinstruct.core import settings
from selfinstruct.core.paths import project_home
from selfinstruct.core.services import ServiceUnavailable, check_postgres

PG_URL_ENV = "SELFINSTRUCT_PG_URL"

_POOL = """\
concurrency:
  pools:
    default_limit: 1
    granularity: op
telemetry:
  enabled: false
"""

INSTANCE_YAML = (
    "# Written by selfinstruct: steps that touch the DuckDB file (pool selfinstruct_duckdb) run one at a time.\n"
    + _POOL
)

# `storage: postgres` puts run, event-log and schedule storage in one database; tables are created on
# first use. Each process that opens the instance needs SELFINSTRUCT_PG_URL in its environment.
POSTGRES_YAML = f"""\
# Written by selfinstruct: Dagster's runs, event log and schedules in PostgreSQL (URL from ${PG_URL_ENV});
# steps that touch the DuckDB file (pool selfinstruct_duckdb) run one at a time across every run.
storage:
  postgres:
    postgres_url:
      env: {PG_URL_ENV}
{_POOL}"""


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or project_home() / "dagster").resolve()


def ensure_instance_yaml(home: Path | None = None, storage: str = "sqlite") -> Path:
    """`<DAGSTER_HOME>/dagster.yaml` with the pool limit; an existing file is the user's and left alone.

    `storage` is `sqlite` (files under DAGSTER_HOME, the default) or `postgres` (URL from the environment).
    """
    if storage not in ("sqlite", "postgres"):
        raise ValueError(f"storage must be 'sqlite' or 'postgres', got {storage!r}")
    home = Path(home) if home else dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(POSTGRES_YAML if storage == "postgres" else INSTANCE_YAML)
        tmp.replace(path)
    elif "default_limit" not in path.read_text():
        print(
            f"note: {path} sets no concurrency pool limit; DuckDB writers may wait on each other's locks",
            file=sys.stderr,
        )
    if storage == "postgres" and not settings.get(PG_URL_ENV):
        print(
            f"note: set {PG_URL_ENV}=postgresql://USER:PASSWORD@HOST:5432/DB before starting Dagster", file=sys.stderr
        )
    return path


def init_pools() -> None:
    """Create the pool's slots once, before runs race to: on first use, two runs starting together each
    found the pool missing and each got a slot (seen with the Celery executor on SQLite)."""
    import dagster as dg

    from selfinstruct_assets.constants import DUCKDB_POOL

    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)


def uses_postgres(home: Path | None = None) -> bool:
    """Whether the instance's dagster.yaml keeps its storage in PostgreSQL (through SELFINSTRUCT_PG_URL)."""
    path = (Path(home) if home else dagster_home()) / "dagster.yaml"
    return path.is_file() and "postgres" in path.read_text()


def check_instance(home: Path | None = None) -> None:
    """Preflight of the instance's storage: PostgreSQL, when dagster.yaml uses it, must accept SELFINSTRUCT_PG_URL
    (ServiceUnavailable or SettingsError naming the fix); SQLite needs nothing."""
    if not uses_postgres(home):
        return
    url = settings.get(PG_URL_ENV)
    if not url:
        raise ServiceUnavailable(
            f"{PG_URL_ENV} is not set, but {dagster_home() if home is None else home}/dagster.yaml keeps Dagster's "
            f"runs in PostgreSQL; set {PG_URL_ENV}=postgresql+psycopg2://USER:PASSWORD@HOST:5432/DB"
        )
    check_postgres(url, PG_URL_ENV)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help=f"storage in PostgreSQL (URL from ${PG_URL_ENV})")
    args = parser.parse_args(argv)
    print(ensure_instance_yaml(storage="postgres" if args.postgres else "sqlite"))
    try:
        check_instance()
    except (ServiceUnavailable, settings.SettingsError) as exc:
        print(f"selfinstruct: {exc}", file=sys.stderr)
        return 2
    init_pools()
    return 0


if __name__ == "__main__":
    sys.exit(main())
