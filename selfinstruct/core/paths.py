"""Where the project keeps its state, resolved at each call (never at import): SELFINSTRUCT_HOME.

Dagster-free, so command-line tools and Dagster-free modules can find the home folder and the DuckDB file.
"""

from pathlib import Path

from selfinstruct.core import settings


def project_home() -> Path:
    """SELFINSTRUCT_HOME, else ./.selfinstruct; a `SettingsError` naming the variable unless it is a folder
    the project can write, or create (it is not created here)."""
    home = settings.get("SELFINSTRUCT_HOME") or (Path.cwd() / ".selfinstruct").resolve()
    return settings.check_writable_dir(home, "SELFINSTRUCT_HOME")


def duckdb_path() -> str:
    return str(project_home() / "selfinstruct.duckdb")
