"""Where each artifact lives under a root folder, and one way to publish a file or a folder whole.

    final = publish_dir(lambda tmp: model.save_pretrained(tmp), adapter_dir(home, "sft"))
    publish_bytes(program_path(home, "rag_program"), data)

Publishing builds beside the destination (same folder, so the rename never crosses a file system), syncs the
bytes to disk, then renames: a reader sees the old artifact or the new one, and a killed run leaves at most a
`.tmp-*` sibling, never a half-written artifact under the real name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

ADAPTER_METHODS = ("sft", "dpo", "orpo", "grpo")  # the LoRA trainers, in the order they run
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")  # what makes a folder a loadable adapter


def adapter_dir(root: Path, method: str) -> Path:
    """Where training publishes the adapter of `method` (overwritten by each run)."""
    return Path(root) / "adapters" / method


def program_path(root: Path, name: str) -> Path:
    """A compiled DSPy program saved as JSON (`rag_program`, `optimized_rag_program`)."""
    return Path(root) / "artifacts" / f"{name}.json"


def serving_root(root: Path) -> Path:
    """The folder of served snapshots, `current.json` and `history.jsonl`."""
    return Path(root) / "serving"


def serving_snapshot(serving: Path, adapter_id: str) -> Path:
    """The immutable copy of a promoted adapter inside a serving root."""
    return Path(serving) / "adapters" / adapter_id


def dataset_path(root: Path, name: str) -> Path:
    """A JSON Lines dataset handed to `python -m training` outside Dagster."""
    return Path(root) / "datasets" / f"{name}.jsonl"


def missing_adapter_files(folder: Path) -> list[str]:
    """The files an adapter needs that `folder` lacks (empty when it is complete)."""
    return [name for name in ADAPTER_FILES if not (Path(folder) / name).is_file()]


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            _fsync_path(path)
    _fsync_path(folder)


def publish_dir(build: Callable[[Path], object], final: Path, *, replace: bool = True) -> Path:
    """Run `build(tmp)` in a temp folder beside `final`, sync it, and rename it to `final`.

    replace=True: an existing `final` is renamed aside first and deleted only once the new one is in place.
    replace=False: for content-addressed folders (same name, same content) an existing `final` is kept and
    the new build dropped. A failing `build` leaves `final` as it was and no temp folder behind.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    old = None
    try:
        build(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only; a published folder reads like any other
        _fsync_tree(tmp)
        if replace and final.exists():
            old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
            os.rename(final, old)
        try:
            os.rename(tmp, final)
        except OSError:
            if old is not None and not final.exists():
                os.rename(old, final)
                old = None
            if replace or not final.exists():
                raise  # with replace=False, a folder another run published first is as good as ours
        _fsync_path(final.parent)  # the rename itself survives a crash only once the folder is synced
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and final.exists():
            shutil.rmtree(old, ignore_errors=True)
    return final


def publish_file(write: Callable[[Path], object], final: Path, *, tmp_name: str | None = None) -> Path:
    """Run `write(tmp_path)` on a temp file beside `final`, sync it, and rename it over `final`.

    `tmp_name` fixes the temp file's name where a protocol names it (the inboxes' NAME.tmp, which readers skip);
    by default it is a hidden `.tmp-*` sibling that keeps `final`'s suffix.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if tmp_name is not None:
        tmp = final.parent / tmp_name
        tmp.write_bytes(b"")
    else:
        # The temp file keeps the suffix: writers such as DSPy's save() pick the format from it.
        fd, name = tempfile.mkstemp(prefix=f".tmp-{final.stem}-", suffix=final.suffix, dir=final.parent)
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
    try:
        write(tmp)
        _fsync_path(tmp)
        os.replace(tmp, final)
        _fsync_path(final.parent)  # the rename itself survives a crash only once the folder is synced
    finally:
        tmp.unlink(missing_ok=True)
    return final


def publish_bytes(final: Path, data: bytes, *, tmp_name: str | None = None) -> Path:
    """Publish `data` whole as `final` (replacing a file of that name)."""
    return publish_file(lambda tmp: tmp.write_bytes(data), final, tmp_name=tmp_name)
