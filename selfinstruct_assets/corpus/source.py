"""Where CUAD comes from: a local zip or folder, an http(s) URL or an s3:// URI.

Dagster-free. `open_cuad_source(uri, cache_dir)` returns a `CuadArchive` that lists and
reads member files, whichever form the source takes.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from selfinstruct_core.artifacts import publish_file
from selfinstruct_core.zips import DamagedZip, open_checked_zip

ZENODO_URL = "https://zenodo.org/records/4595826/files/CUAD_v1.zip?download=1"
_REPO_ROOT = Path(__file__).resolve().parents[2]


class CuadSourceError(RuntimeError):
    """The CUAD source cannot be read; the message names the source and the fix."""


def default_cuad_uri() -> str:
    """`../shared/cuad/CUAD_v1.zip` beside the checkout (or the working dir) if it exists, else Zenodo."""
    for base in (Path.cwd(), _REPO_ROOT):
        candidate = (base / ".." / "shared" / "cuad" / "CUAD_v1.zip").resolve()
        if candidate.exists():
            return str(candidate)
    return ZENODO_URL


def cuad_uri_from_env() -> str:
    return os.environ.get("SELFINSTRUCT_CUAD_URI") or default_cuad_uri()


@dataclass
class CuadArchive:
    """Members of a CUAD release, as paths relative to its root (zip or folder)."""

    location: str
    _zip: zipfile.ZipFile | None = None
    _root: Path | None = None

    def names(self) -> list[str]:
        if self._zip is not None:
            return [n for n in self._zip.namelist() if not n.endswith("/")]
        assert self._root is not None
        return sorted(str(p.relative_to(self._root)) for p in self._root.rglob("*") if p.is_file())

    def read(self, name: str) -> bytes:
        try:
            if self._zip is not None:
                return self._zip.read(name)
            assert self._root is not None
            return (self._root / name).read_bytes()
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
            raise CuadSourceError(
                f"{self.location}: member {name!r} cannot be read ({exc}). The archive looks "
                "truncated or corrupt: download it again or point SELFINSTRUCT_CUAD_URI at a good copy."
            ) from exc

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def open_cuad_source(uri: str, cache_dir: Path) -> CuadArchive:
    """Open `uri` (path, folder, http(s) URL or s3:// URI); remote sources are cached in `cache_dir`."""
    if uri.startswith(("http://", "https://")):
        path = _download_http(uri, cache_dir)
    elif uri.startswith("s3://"):
        path = _download_s3(uri, cache_dir)
    else:
        path = Path(uri.removeprefix("file://")).expanduser()
    if not path.exists():
        raise CuadSourceError(
            f"CUAD source {uri!r} does not exist. Set SELFINSTRUCT_CUAD_URI to the path of "
            f"CUAD_v1.zip (or an extracted CUAD_v1 folder), or to {ZENODO_URL}."
        )
    if path.is_dir():
        return CuadArchive(location=str(path), _root=path)
    try:
        zf = open_checked_zip(path)
    except DamagedZip as exc:
        fix = f"download CUAD_v1.zip again from {ZENODO_URL} or set SELFINSTRUCT_CUAD_URI."
        raise CuadSourceError(f"{path} is {exc}. It is probably truncated or corrupt: {fix}" if exc.member is None
                              else f"{path}: {exc}; the archive is corrupt. {fix.capitalize()}") from exc
    return CuadArchive(location=str(path), _zip=zf)


def _download_http(url: str, cache_dir: Path) -> Path:
    target = cache_dir / "downloads" / "CUAD_v1.zip"
    if target.exists():
        return target

    def fetch(tmp: Path) -> None:
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            shutil.copyfileobj(resp, out)

    try:
        return publish_file(fetch, target)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise CuadSourceError(
            f"CUAD source {url} is unreachable ({exc}). Check the network, or download "
            "CUAD_v1.zip by hand and set SELFINSTRUCT_CUAD_URI to its local path."
        ) from exc


def _download_s3(uri: str, cache_dir: Path) -> Path:
    import boto3
    import botocore.exceptions

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    target = cache_dir / "downloads" / Path(key).name
    if target.exists():
        return target
    try:
        return publish_file(lambda tmp: boto3.client("s3").download_file(bucket, key, str(tmp)), target)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise CuadSourceError(
            f"CUAD source {uri} cannot be fetched ({exc}). Check AWS credentials and the key, "
            "or set SELFINSTRUCT_CUAD_URI to a local CUAD_v1.zip."
        ) from exc
