"""Where CUAD comes from: a local zip or folder, an http(s) URL or an s3:// URI.

Dagster-free. `open_cuad_source(uri, cache_dir)` returns a `CuadArchive` that lists and
reads member files, whichever form the source takes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from selfinstruct.core import settings
from selfinstruct.core.artifacts import publish_file
from selfinstruct.core.hashing import file_sha256
from selfinstruct.core.redact import redact_text, redact_uri, split_userinfo
from selfinstruct.core.s3_uri import S3UriError, is_s3_uri, split_s3_uri
from selfinstruct.core.zips import DamagedZip, open_checked_zip

ZENODO_URL = "https://zenodo.org/records/4595826/files/CUAD_v1.zip?download=1"
_REPO_ROOT = Path(__file__).resolve().parents[2]


class CuadSourceError(RuntimeError):
    """The CUAD source cannot be read; the message names the source and the fix."""


# zipfile raises these for a password-protected member and for a compression method it does not know.
_UNSUPPORTED_ZIP = (RuntimeError, NotImplementedError)
_UNSUPPORTED_FIX = (
    "The archive is encrypted or uses a compression method Python cannot read: re-zip it without a password (deflate)"
)


def default_cuad_uri() -> str:
    """`../shared/cuad/CUAD_v1.zip` beside the checkout (or the working dir) if it exists, else Zenodo."""
    for base in (Path.cwd(), _REPO_ROOT):
        candidate = (base / ".." / "shared" / "cuad" / "CUAD_v1.zip").resolve()
        if candidate.exists():
            return str(candidate)
    return ZENODO_URL


def cuad_uri_from_env() -> str:
    return settings.get("SELFINSTRUCT_CUAD_URI") or default_cuad_uri()


@dataclass
class CuadArchive:
    """Members of a CUAD release, as paths relative to its root (zip or folder).

    `uri` is the source as given with its credentials and signatures redacted (what run metadata records),
    `location` the local file or folder actually read, and `sha256` the content hash of that file (None for a
    folder).
    """

    location: str
    _zip: zipfile.ZipFile | None = None
    _root: Path | None = None
    uri: str = ""
    sha256: str | None = None

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
        except _UNSUPPORTED_ZIP as exc:
            raise CuadSourceError(
                f"{self.location}: member {name!r}: {exc}. {_UNSUPPORTED_FIX}, or point "
                "SELFINSTRUCT_CUAD_URI at the official CUAD_v1.zip."
            ) from exc

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def open_cuad_source(uri: str, cache_dir: Path, s3_client=None) -> CuadArchive:
    """Open `uri` (path, folder, http(s) URL or s3:// URI); remote sources are cached in `cache_dir`.

    `s3_client` is a boto3 S3 client (default: `boto3.client("s3")`, made only when an s3:// URI is read).
    A URL's userinfo (https://USER:PASSWORD@host/...) is sent as HTTP Basic auth. Messages and records show the
    URI redacted (selfinstruct.core.redact): a password or a presigned URL's signature never persists.
    """
    try:
        return _open(uri, cache_dir, s3_client)
    except CuadSourceError as exc:
        raise CuadSourceError(redact_text(str(exc))) from exc.__cause__


def _open(uri: str, cache_dir: Path, s3_client=None) -> CuadArchive:
    sha = None
    if uri.startswith(("http://", "https://")):
        path, sha = _cached_download(uri, cache_dir, lambda tmp: _fetch_http(uri, tmp))
    elif is_s3_uri(uri):
        bucket, key = _s3_parts(uri)
        path, sha = _cached_download(uri, cache_dir, lambda tmp: _fetch_s3(uri, bucket, key, tmp, s3_client))
    else:
        path = Path(uri.removeprefix("file://")).expanduser()
    if not path.exists():
        raise CuadSourceError(
            f"CUAD source {uri!r} does not exist. Set SELFINSTRUCT_CUAD_URI to the path of "
            f"CUAD_v1.zip (or an extracted CUAD_v1 folder), or to {ZENODO_URL}."
        )
    if path.is_dir():
        return CuadArchive(location=str(path), _root=path, uri=redact_uri(uri))
    fix = f"download CUAD_v1.zip again from {ZENODO_URL} or set SELFINSTRUCT_CUAD_URI"
    try:
        zf = open_checked_zip(path)
    except DamagedZip as exc:
        raise CuadSourceError(
            f"{path} is {exc}. It is probably truncated or corrupt: {fix}."
            if exc.member is None
            else f"{path}: {exc}; the archive is corrupt. D{fix[1:]}."
        ) from exc
    except _UNSUPPORTED_ZIP as exc:
        raise CuadSourceError(f"{path}: {exc}. {_UNSUPPORTED_FIX}, or {fix}.") from exc
    return CuadArchive(location=str(path), _zip=zf, uri=redact_uri(uri), sha256=sha or file_sha256(path))


def _cached_download(uri: str, cache_dir: Path, fetch) -> tuple[Path, str]:
    """The download of `uri` in its own slot `downloads/<sha256(uri)>/`, with the content's sha256 beside it.

    The slot is keyed by the URI, not the file name: another source of the same name never reuses this
    one. A cached copy whose bytes no longer match the recorded hash is fetched again. `source.json` holds the
    URI redacted: the slot's name (a hash of the whole URI) is what ties it to the URI.
    """
    slot = cache_dir / "downloads" / hashlib.sha256(uri.encode()).hexdigest()[:32]
    name = PurePosixPath(urllib.parse.urlsplit(uri).path).name or "download"
    target, record = slot / name, slot / "source.json"
    if target.exists() and record.exists():
        try:
            recorded = json.loads(record.read_text())
        except (OSError, ValueError):
            recorded = {}
        if recorded.get("uri") == redact_uri(uri) and recorded.get("sha256") == file_sha256(target):
            return target, recorded["sha256"]
    publish_file(fetch, target)
    sha = file_sha256(target)
    publish_file(
        lambda tmp: tmp.write_text(json.dumps({"uri": redact_uri(uri), "sha256": sha, "bytes": target.stat().st_size})),
        record,
    )
    return target, sha


def _fetch_http(url: str, tmp: Path) -> None:
    bare, login = split_userinfo(url)
    request = urllib.request.Request(bare)
    if login is not None:  # urllib takes no userinfo in the URL: it would look the password up as a host name
        token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
        request.add_unredirected_header("Authorization", f"Basic {token}")
    try:
        with open(tmp, "wb") as out, urllib.request.urlopen(request, timeout=60) as resp:
            shutil.copyfileobj(resp, out)
    except urllib.error.HTTPError as exc:
        fix = (
            "check the user and password in SELFINSTRUCT_CUAD_URI (or that a presigned URL has not expired)"
            if exc.code in (401, 403)
            else "check the URL in SELFINSTRUCT_CUAD_URI"
        )
        raise CuadSourceError(f"CUAD source {url} answered HTTP {exc.code} {exc.reason}: {fix}.") from exc
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
        raise CuadSourceError(
            f"CUAD source {url} is unreachable ({exc}). Check the network, or download "
            "CUAD_v1.zip by hand and set SELFINSTRUCT_CUAD_URI to its local path."
        ) from exc


def _s3_parts(uri: str) -> tuple[str, str]:
    try:
        return split_s3_uri(
            uri, "CUAD source", form="s3://BUCKET/KEY, e.g. s3://my-bucket/cuad/CUAD_v1.zip", need_key=True
        )
    except S3UriError as exc:
        raise CuadSourceError(f"{exc}.") from None


def _fetch_s3(uri: str, bucket: str, key: str, tmp: Path, s3_client=None) -> None:
    import botocore.exceptions

    try:
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        s3_client.download_file(bucket, key, str(tmp))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise CuadSourceError(
            f"CUAD source {uri} cannot be fetched ({exc}). Check AWS credentials and the key, "
            "or set SELFINSTRUCT_CUAD_URI to a local CUAD_v1.zip."
        ) from exc
