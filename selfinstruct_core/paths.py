"""Where the project keeps its state, resolved at each call (never at import): SELFINSTRUCT_HOME.

Dagster-free, so command-line tools and Dagster-free modules can find the home folder and the DuckDB file.
"""

import os
from pathlib import Path


def project_home() -> Path:
    return Path(os.environ.get("SELFINSTRUCT_HOME") or Path.cwd() / ".selfinstruct").resolve()


def duckdb_path() -> str:
    return str(project_home() / "selfinstruct.duckdb")
