"""The Dagster instance settings the project needs, written into DAGSTER_HOME when missing.

    python -m selfinstruct_assets.instance      # make ui / make demo run this

DuckDB allows one writing process, so every step that touches the DuckDB file joins one concurrency
pool (`selfinstruct_duckdb`) and the instance lets one such step run at a time across all runs.
"""

import os
import sys
from pathlib import Path

from resources.paths import project_home

INSTANCE_YAML = """\
# Written by selfinstruct: steps that touch the DuckDB file (pool selfinstruct_duckdb) run one at a time.
concurrency:
  pools:
    default_limit: 1
    granularity: op
telemetry:
  enabled: false
"""


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or project_home() / "dagster").resolve()


def ensure_instance_yaml(home: Path | None = None) -> Path:
    """`<DAGSTER_HOME>/dagster.yaml` with the pool limit; an existing file is the user's and left alone."""
    home = Path(home) if home else dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(INSTANCE_YAML)
        tmp.replace(path)
    elif "default_limit" not in path.read_text():
        print(f"note: {path} sets no concurrency pool limit; DuckDB writers may wait on each other's locks",
              file=sys.stderr)
    return path


if __name__ == "__main__":
    print(ensure_instance_yaml())
