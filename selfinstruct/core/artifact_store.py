"""Where artifacts are published and read back: a local folder (`LocalStore`) or an S3 prefix (`S3Store`).

    store = open_store(os.environ.get("SELFINSTRUCT_ARTIFACTS") or home, s3_client=..., cache_dir=home / "cache")
    uri = store.publish_dir(lambda tmp: model.save_pretrained(tmp), adapter_dir("", "sft"))  # record `uri`
    folder = store.fetch_dir(uri)            # a local folder holding exactly what was published
    store.publish_bytes(program_path("", "rag_program"), data); store.read_bytes(uri_or_name)

Dagster-free. Names are the relative locations of `selfinstruct.core.artifacts` called with an empty root
(`adapters/sft`, `artifacts/rag_program.json`), so the layout is defined once for disk and S3. A reader is
handed a name (the newest complete publish) or the URI a publish returned (exactly that publish).

Local: the folder layout and publish-by-rename of `artifacts.py`, unchanged; a URI is the path.

S3 (`s3_store.S3Store`) has no rename: a publish uploads an immutable, content-addressed version, then puts
a manifest and last a pointer, each in one put_object; readers start from a manifest, so an upload killed
half-way is never read, and a reader sees the previous complete version or the new one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Protocol

from selfinstruct.core.artifacts import publish_dir as _publish_local_dir
from selfinstruct.core.artifacts import publish_file as _publish_local_file
from selfinstruct.core.s3_uri import S3UriError, is_s3_uri, split_s3_uri

POINTER, MANIFEST = "LATEST.json", "MANIFEST.json"  # S3 key names of the pointer and of a version's manifest


class ArtifactStoreError(RuntimeError):
    """The store cannot be used or an artifact is damaged; the message names the location and the fix."""


class ArtifactNotFound(FileNotFoundError):
    """No complete publish of this artifact exists (an unfinished S3 upload counts as none)."""


class ArtifactStore(Protocol):
    location: str  # the root folder or s3://bucket/prefix, for messages and metadata

    def uri(self, name: str | os.PathLike) -> str: ...
    def publish_dir(self, build: Callable[[Path], object], name: str | os.PathLike, *, replace: bool = True) -> str: ...
    def publish_file(self, write: Callable[[Path], object], name: str | os.PathLike) -> str: ...
    def publish_bytes(self, name: str | os.PathLike, data: bytes) -> str: ...
    def put_dir(self, folder: Path, name: str | os.PathLike) -> str: ...
    def put_file(self, path: Path, name: str | os.PathLike) -> str: ...
    def fetch_dir(self, ref: str | os.PathLike) -> Path: ...
    def fetch_file(self, ref: str | os.PathLike) -> Path: ...
    def read_bytes(self, ref: str | os.PathLike) -> bytes: ...
    def exists(self, ref: str | os.PathLike) -> bool: ...


def artifact_name(name: str | os.PathLike) -> str:
    """`name` as a relative POSIX path; absolute names, `..`, and S3's own key names are refused."""
    path = PurePosixPath(Path(name).as_posix())
    if (
        not path.parts
        or path.is_absolute()
        or ".." in path.parts
        or path.name in (POINTER, MANIFEST)
        or "versions" in path.parts
    ):
        raise ValueError(
            f"artifact name {str(name)!r} must be a relative path such as 'adapters/sft' without "
            f"'..', a 'versions' folder or the names {POINTER}/{MANIFEST}"
        )
    return path.as_posix()


def open_store(location: str | os.PathLike, s3_client=None, cache_dir: Path | None = None) -> ArtifactStore:
    """`S3Store` for `s3://bucket/prefix` (needs `s3_client` and `cache_dir`), else `LocalStore(location)`."""
    location = str(location)
    if not is_s3_uri(location):
        return LocalStore(Path(location))
    try:
        bucket, prefix = split_s3_uri(location, "artifact location", form="s3://BUCKET/PREFIX")
    except S3UriError as exc:
        raise ArtifactStoreError(str(exc)) from None
    if s3_client is None or cache_dir is None:
        raise ValueError("an s3:// artifact location needs an S3 client and a local cache folder")
    from selfinstruct.core.s3_store import S3Store  # botocore is imported only where S3 is used

    return S3Store(bucket, prefix, s3_client, Path(cache_dir))


class LocalStore:
    """Artifacts under a local folder, published by atomic rename (`artifacts.publish_dir`/`publish_file`)."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.location = str(self.root)

    def uri(self, name) -> str:
        return str(self.root / artifact_name(name))

    def _path(self, ref) -> Path:
        if is_s3_uri(str(ref)):
            raise ArtifactStoreError(
                f"{ref} is on S3 but the artifact store is the folder {self.location}; "
                "set SELFINSTRUCT_ARTIFACTS to that bucket's s3://BUCKET/PREFIX"
            )
        ref = Path(ref)
        return ref if ref.is_absolute() else self.root / artifact_name(ref)

    def publish_dir(self, build, name, *, replace: bool = True) -> str:
        return str(_publish_local_dir(build, self.root / artifact_name(name), replace=replace))

    def publish_file(self, write, name) -> str:
        return str(_publish_local_file(write, self.root / artifact_name(name)))

    def publish_bytes(self, name, data: bytes) -> str:
        return self.publish_file(lambda tmp: tmp.write_bytes(data), name)

    def put_dir(self, folder: Path, name) -> str:
        """Publish a copy of the finished `folder` as `name`; a folder already at `name` is left as it is."""
        final = self.root / artifact_name(name)
        if Path(folder).resolve() == final:  # e.g. trained straight into its place, by rename
            return str(final)
        return self.publish_dir(lambda tmp: shutil.copytree(folder, tmp, dirs_exist_ok=True), name)

    def put_file(self, path: Path, name) -> str:
        """Publish a copy of the finished file `path` as `name`; a file already at `name` is left as it is."""
        final = self.root / artifact_name(name)
        if Path(path).resolve() == final:
            return str(final)
        return self.publish_file(lambda tmp: shutil.copyfile(path, tmp), name)

    def fetch_dir(self, ref) -> Path:
        path = self._path(ref)
        if not path.is_dir():
            raise ArtifactNotFound(f"no artifact folder {path}; materialize the asset that publishes it first")
        return path

    def fetch_file(self, ref) -> Path:
        path = self._path(ref)
        if not path.is_file():
            raise ArtifactNotFound(f"no artifact file {path}; materialize the asset that publishes it first")
        return path

    def read_bytes(self, ref) -> bytes:
        return self.fetch_file(ref).read_bytes()

    def exists(self, ref) -> bool:
        return self._path(ref).exists()
