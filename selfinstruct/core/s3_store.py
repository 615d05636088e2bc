"""Artifacts under an S3 prefix, published as immutable versions behind a pointer (see `artifact_store`).

    store = S3Store("my-bucket", "selfinstruct", s3_client, cache_dir=home / "cache" / "artifacts")
    uri = store.publish_dir(build, "adapters/sft")   # s3://my-bucket/selfinstruct/adapters/sft/versions/<v>/
    store.fetch_dir("adapters/sft")                  # newest complete publish, downloaded and checked once

Key layout of an artifact `name` under the prefix:
    <name>/versions/<v>/<files...>   uploaded first; `<v>` hashes the file list (content-addressed)
    <name>/versions/<v>/MANIFEST.json  each file's sha256 and size, put once every file is up
    <name>/LATEST.json               the same manifest, put last: the pointer readers start from
Why not write-then-copy to the final key: S3 has no rename, and a copy of many files is as non-atomic as the
upload. One put_object is applied whole, so the pointer flips from one complete version to the next.
Downloads land in `cache_dir/<bucket>/<key of the version>/`, published there by local rename; a version never
changes, so a cached one is reused without asking S3 again.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from botocore.exceptions import BotoCoreError, ClientError

from selfinstruct.core.artifact_store import MANIFEST, POINTER, ArtifactNotFound, ArtifactStoreError, artifact_name
from selfinstruct.core.artifacts import publish_dir as _publish_local_dir
from selfinstruct.core.hashing import file_sha256
from selfinstruct.core.s3_uri import is_s3_uri, split_s3_uri
from selfinstruct.core.services import ServiceUnavailable, check_s3

_VERSION_KEY = re.compile(r"^(?P<base>.+)/versions/(?P<version>[0-9a-f]{32})(?:/(?P<file>[^/]+))?/?$")


class S3StoreUnavailable(ArtifactStoreError, ServiceUnavailable):
    """The store's bucket is missing, refuses the credentials, or its endpoint cannot be reached (at the start)."""


def version_of(files: dict) -> str:
    """The content address of a file list {relative path: {"sha256", "bytes"}}."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:32]


def build_manifest(name: str, kind: str, folder: Path) -> dict:
    files = {
        p.relative_to(folder).as_posix(): {"sha256": file_sha256(p), "bytes": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
    return {
        "name": name,
        "kind": kind,
        "version": version_of(files),
        "files": files,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class S3Store:
    """Artifacts under `s3://bucket/prefix`; `client` is a boto3 S3 client (e.g. from dagster-aws's S3Resource)."""

    def __init__(self, bucket: str, prefix: str, client, cache_dir: Path):
        self.bucket, self.prefix, self.client = bucket, prefix.strip("/"), client
        self.cache_dir = Path(cache_dir)
        self.location = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._bucket_checked = False

    def __repr__(self) -> str:
        return f"S3Store({self.location!r})"

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def uri(self, name) -> str:
        return f"s3://{self.bucket}/{self._key(artifact_name(name))}"

    # --- errors -------------------------------------------------------------------------------------------------

    def _no_bucket(self) -> ArtifactStoreError:
        return ArtifactStoreError(
            f"bucket {self.bucket!r} of {self.location} does not exist; create it (aws s3 mb s3://{self.bucket}) "
            "or point SELFINSTRUCT_ARTIFACTS at another s3://BUCKET/PREFIX or a local folder"
        )

    def _call(self, what: str, fn, *args, missing: str | None = None, **kwargs):
        """`fn(*args, **kwargs)` with S3's errors turned into ours: a missing bucket, a missing key, the rest."""
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "NoSuchBucket":
                raise self._no_bucket() from exc
            if code in ("NoSuchKey", "404") and missing is not None:
                raise ArtifactNotFound(missing) from exc
            raise ArtifactStoreError(f"{what} failed on {self.location}: {exc}") from exc
        except BotoCoreError as exc:  # unreachable endpoint, no credentials, failed multipart upload
            raise ArtifactStoreError(
                f"{what} failed on {self.location}: {exc}. Check the endpoint "
                "(AWS_ENDPOINT_URL_S3) and the AWS credentials"
            ) from exc

    def check(self, variable: str = "SELFINSTRUCT_ARTIFACTS") -> None:
        """Preflight, once: the bucket exists and may be used (services.check_s3); else S3StoreUnavailable,
        one sentence naming `variable`, the location, the endpoint and the fix."""
        if self._bucket_checked:
            return
        try:
            check_s3(self.client, self.bucket, self.location, variable, "the artifact store")
        except ServiceUnavailable as exc:
            raise S3StoreUnavailable(str(exc)) from None
        self._bucket_checked = True

    def _check_bucket(self) -> None:
        # Asked once before uploading, so a missing bucket is named up front rather than as a failed multipart.
        self.check()

    # --- publishing ---------------------------------------------------------------------------------------------

    def _staging(self) -> tempfile.TemporaryDirectory:
        self.cache_dir.mkdir(parents=True, exist_ok=True)  # beside the cache: adapters are too big for a small /tmp
        return tempfile.TemporaryDirectory(prefix=".publish-", dir=self.cache_dir)

    def publish_dir(self, build, name, *, replace: bool = True) -> str:
        """Upload what `build(tmp)` writes as a new version of `name`; returns that version's URI.

        `replace` is accepted for the local store's sake: S3 versions never overwrite one another.
        """
        name = artifact_name(name)
        with self._staging() as tmp:
            build(Path(tmp))
            return self._upload(name, "dir", Path(tmp))

    def publish_file(self, write, name) -> str:
        """Upload the file `write(tmp_path)` makes (tmp_path keeps the name's suffix) as a new version of `name`."""
        name = artifact_name(name)
        base = PurePosixPath(name).name
        with self._staging() as tmp:
            write(Path(tmp) / base)
            return self._upload(name, "file", Path(tmp)) + base

    def publish_bytes(self, name, data: bytes) -> str:
        return self.publish_file(lambda path: path.write_bytes(data), name)

    def put_dir(self, folder: Path, name) -> str:
        """Upload the finished local `folder` as a new version of `name` (no staging copy: it is read only)."""
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"{folder} is not a folder to publish as {name}")
        return self._upload(artifact_name(name), "dir", Path(folder))

    def put_file(self, path: Path, name) -> str:
        """Upload the finished local file `path` as a new version of `name`."""
        return self.publish_file(lambda tmp: shutil.copyfile(path, tmp), name)

    def _upload(self, name: str, kind: str, folder: Path) -> str:
        self._check_bucket()
        manifest = build_manifest(name, kind, folder)
        if kind == "file" and len(manifest["files"]) != 1:
            raise ArtifactStoreError(f"publishing the file {name} wrote {len(manifest['files'])} files, not one")
        base = self._key(name, "versions", manifest["version"])
        for rel in manifest["files"]:  # upload_file switches to multipart for big files; S3 shows it only whole
            self._call(
                f"uploading {rel} of {name}", self.client.upload_file, str(folder / rel), self.bucket, f"{base}/{rel}"
            )
        body = json.dumps(manifest, indent=1).encode()
        for key in (f"{base}/{MANIFEST}", self._key(name, POINTER)):  # the pointer last: readers start there
            self._call(
                f"publishing {name}",
                self.client.put_object,
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
            )
        return f"s3://{self.bucket}/{base}/"

    # --- reading ------------------------------------------------------------------------------------------------

    def _resolve(self, ref) -> tuple[dict, str]:
        """The manifest `ref` (a name, an s3:// URI of a name or of one version) points at, and its version's key."""
        ref = str(ref)
        if is_s3_uri(ref):
            bucket, key = split_s3_uri(ref, need_bucket=False)  # another bucket, even none, is refused just below
            if bucket != self.bucket:
                raise ArtifactStoreError(f"{ref} is outside {self.location}; read it with a store of that bucket")
            if match := _VERSION_KEY.match(key):
                base = f"{match['base']}/versions/{match['version']}"
                manifest = self._get_json(
                    f"{base}/{MANIFEST}",
                    f"{ref} has no {MANIFEST}: it was never published completely (or has expired); publish it again",
                )
                return self._checked(manifest, ref, match["version"]), base
            pointer = f"{key.rstrip('/')}/{POINTER}"
        else:
            pointer = self._key(artifact_name(ref), POINTER)
        uri = f"s3://{self.bucket}/{pointer.removesuffix('/' + POINTER)}"
        manifest = self._get_json(
            pointer,
            f"no complete publish of {uri} ({POINTER} is missing; files without it "
            "are an unfinished upload and are ignored); materialize its asset first",
        )
        base = f"{pointer.removesuffix(POINTER)}versions/{manifest.get('version')}"
        return self._checked(manifest, uri, manifest.get("version")), base

    def _get_json(self, key: str, missing: str) -> dict:
        body = self._call(f"reading {key}", self.client.get_object, Bucket=self.bucket, Key=key, missing=missing)
        try:
            return json.loads(body["Body"].read())
        except ValueError as exc:
            raise ArtifactStoreError(f"s3://{self.bucket}/{key} is not a manifest ({exc}); publish again") from exc

    @staticmethod
    def _checked(manifest: dict, where: str, version: str | None) -> dict:
        files = manifest.get("files")
        if not isinstance(files, dict) or version_of(files) != version or manifest.get("version") != version:
            raise ArtifactStoreError(
                f"the manifest of {where} does not match its version {version}; it was "
                "edited by hand or damaged: publish the artifact again"
            )
        return manifest

    def fetch_dir(self, ref) -> Path:
        """A local folder with exactly the files of the version `ref` resolves to (cached, checked by sha256)."""
        return self._download(*self._resolve(ref))

    def _download(self, manifest: dict, base: str) -> Path:
        final = self.cache_dir / self.bucket / base
        if final.is_dir():  # a cached version was checked before its rename, and versions never change
            return final

        def download(tmp: Path) -> None:
            for rel, info in manifest["files"].items():
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                self._call(
                    f"downloading {rel}",
                    self.client.download_file,
                    self.bucket,
                    f"{base}/{rel}",
                    str(target),
                    missing=f"s3://{self.bucket}/{base}/{rel} is listed in its manifest but "
                    "gone (a lifecycle rule?); publish the artifact again",
                )
                if file_sha256(target) != info["sha256"]:
                    raise ArtifactStoreError(
                        f"s3://{self.bucket}/{base}/{rel} differs from its manifest: it was "
                        "changed after publishing; publish the artifact again"
                    )

        return _publish_local_dir(download, final, replace=False)

    def fetch_file(self, ref) -> Path:
        manifest, base = self._resolve(ref)
        if manifest.get("kind") != "file":
            raise ArtifactStoreError(f"{ref} is a folder artifact; read it with fetch_dir")
        return self._download(manifest, base) / next(iter(manifest["files"]))

    def read_bytes(self, ref) -> bytes:
        return self.fetch_file(ref).read_bytes()

    def exists(self, ref) -> bool:
        try:
            self._resolve(ref)
        except ArtifactNotFound:
            return False
        return True
