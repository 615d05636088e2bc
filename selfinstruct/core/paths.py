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


def relocated(path: Path, home: Path) -> Path:
    """`path` as recorded, or where it is now when the home moved (copied to another folder or machine).

    Producers record absolute paths. When `path` is gone, its longest trailing part that exists under `home`
    (e.g. `models/answer_judge` of `/old/home/models/answer_judge`) is taken; when none does, `path` is returned
    unchanged, so the caller's own "not found" names what was recorded.
    """
    if path.exists() or not path.is_absolute():
        return path
    parts = path.parts[1:]
    for i in range(len(parts)):  # the longest trailing part first: the most specific match
        moved = home.joinpath(*parts[i:])
        if moved.exists():
            return moved
    return path
