"""Inboxes: folders of complete files where other systems drop work, on local disk or under an S3 prefix.

    inbox = inbox_for("feedback")         # $SELFINSTRUCT_INBOX/feedback, else $SELFINSTRUCT_HOME/inbox/feedback
    for f in inbox.files():               # complete *.jsonl files, sorted by name
        handle(f.name, inbox.read(f.name))
    inbox.write("batch-0001.jsonl", data) # local: NAME.tmp, fsync, rename; S3: one put_object

    Inbox("s3://my-bucket/selfinstruct/inbox/queries/").files()

Dagster-free. A file is complete when its name ends with one of the inbox's suffixes and does not start
with '.' (and, on disk, it is a regular file). Writers publish `NAME.tmp` and rename it to `NAME`, so a
reader never sees half a file; `.tmp` suffixes are refused for that reason. Sub-folders (on S3: keys with a
further '/' below the prefix) belong to someone else and are neither listed nor read.

One bad entry never stops a reader: a symlink loop, a dangling link, a FIFO or a file that cannot be opened is
listed like any file, and reading it raises `InboxEntryError` with the reason, which readers turn into a reject
or a logged skip. An inbox that cannot be listed at all (S3 without credentials) raises `InboxUnavailable`
naming the inbox and the fix.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from selfinstruct.core import settings
from selfinstruct.core.artifacts import publish_bytes
from selfinstruct.core.redact import redact_text
from selfinstruct.core.s3_uri import is_s3_uri, split_s3_uri

KINDS = {"feedback": (".jsonl",), "queries": (".jsonl",), "contracts": (".txt", ".zip")}
TMP_SUFFIX = ".tmp"


class InboxEntryError(OSError):
    """One inbox entry that cannot be read (not a regular file, a broken link, no permission); the message says
    which and why. Readers reject that entry and go on with the others."""


class InboxUnavailable(RuntimeError):
    """The inbox as a whole cannot be listed or written (S3 without credentials or access); the message names
    the inbox and the fix."""


class InboxWriteError(InboxUnavailable, OSError):
    """The inbox's disk refused a write (full, read-only, no permission); nothing was written. `errno` is the
    disk's error number."""


class InboxBucketMissing(InboxUnavailable, FileNotFoundError):
    """The S3 bucket of the inbox does not exist."""


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def _kind(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


@dataclass(frozen=True)
class InboxFile:
    """One complete file of an inbox."""

    name: str  # file name inside the inbox: no folders
    size: int  # bytes
    modified: float  # POSIX seconds (S3: LastModified)


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, prefix = split_s3_uri(uri, "inbox URI", form="s3://BUCKET/PREFIX/")
    prefix = prefix.rstrip("/")
    return bucket, prefix + "/" if prefix else ""


class Inbox:
    """A local folder or an `s3://bucket/prefix/` holding complete files; see the module docstring."""

    def __init__(self, uri: str, suffixes: tuple[str, ...] = (".jsonl",), s3_client=None):
        uri = str(uri)
        if not uri:
            raise ValueError("inbox location is empty; pass a folder path or s3://BUCKET/PREFIX/")
        # A bare string would be split into characters by tuple(); it is surely meant as one suffix.
        self.suffixes = (suffixes,) if isinstance(suffixes, str) else tuple(suffixes)
        if not self.suffixes or any(not s or s.endswith(TMP_SUFFIX) for s in self.suffixes):
            raise ValueError(
                f"inbox suffixes {self.suffixes!r} must be non-empty and none may end in "
                f"{TMP_SUFFIX!r} (files being written end so); pass e.g. ('.jsonl',)"
            )
        self._client = s3_client
        self.bucket: str | None
        self.prefix: str | None
        self.folder: Path | None
        if is_s3_uri(uri):
            self.bucket, self.prefix = _split_s3(uri)
            self.folder = None
            self.location = f"s3://{self.bucket}/{self.prefix}"
        else:
            self.bucket = self.prefix = None
            self.folder = Path(uri)
            self.location = uri

    def __repr__(self) -> str:
        return f"Inbox({self.location!r}, suffixes={self.suffixes!r})"

    def is_complete(self, name: str) -> bool:
        """Whether `name` is one a reader takes: the right suffix, not hidden, no folder part."""
        return name.endswith(self.suffixes) and not name.startswith(".") and "/" not in name and "\\" not in name

    def _check_name(self, name: str) -> None:
        # Reading or writing only complete names keeps `.tmp` files and other folders out of reach.
        if not self.is_complete(name):
            raise ValueError(
                f"{name!r} is not a complete file name of inbox {self.location}: it must end with "
                f"one of {', '.join(self.suffixes)}, not start with '.', and hold no '/'"
            )

    def _s3(self):
        if self._client is None:
            import boto3  # only S3 inboxes pay for importing boto3, and only when first used

            # A session of its own: boto3's default session caches the credentials it first found, so an inbox
            # would otherwise use credentials the environment no longer has (and never name the missing ones).
            self._client = boto3.session.Session().client("s3")
        return self._client

    def _s3_unavailable(self, exc: Exception) -> InboxUnavailable:
        from botocore.exceptions import (
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
            return InboxUnavailable(
                f"inbox {self.location}: the S3 endpoint cannot be reached ({redact_text(str(exc))}); check the "
                "network, AWS_ENDPOINT_URL and AWS_REGION (a local S3 such as MinIO must be running), or point "
                "SELFINSTRUCT_INBOX at a local folder"
            )
        why = (
            "no AWS credentials were found"
            if isinstance(exc, NoCredentialsError)
            else f"S3 refused or failed ({redact_text(str(exc))})"
        )
        return InboxUnavailable(
            f"inbox {self.location}: {why}; set AWS credentials (AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an instance role) with access to "
            f"bucket {self.bucket!r}, or point SELFINSTRUCT_INBOX at a local folder"
        )

    def _s3_missing(self, exc: Exception, name: str = "") -> Exception:
        """FileNotFoundError for a missing bucket or key, InboxUnavailable for refused access, else the error."""
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in (
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "InvalidToken",
            "403",
        ):
            return self._s3_unavailable(exc)
        if code == "NoSuchBucket":
            return InboxBucketMissing(
                f"bucket {self.bucket!r} of inbox {self.location} does not exist; create it "
                "or point SELFINSTRUCT_INBOX at another location"
            )
        if code in ("NoSuchKey", "404"):
            return FileNotFoundError(f"{self.location}{name} is gone (taken by another reader?)")
        return exc

    def files(self) -> list[InboxFile]:
        """The complete files, sorted by name; a missing local folder or an empty prefix gives []."""
        found = self._s3_files() if self.folder is None else self._local_files()
        return sorted(found, key=lambda f: f.name)

    def is_other(self, name: str) -> bool:
        """Whether `name` is a published file of a type this inbox does not take (a `.pdf` among `.txt`s):
        not hidden, not a `.tmp` being written, no folder part."""
        return (
            bool(name)
            and not self.is_complete(name)
            and not name.startswith(".")
            and not name.endswith(TMP_SUFFIX)
            and "/" not in name
            and "\\" not in name
        )

    def others(self) -> list[InboxFile]:
        """The files of other types, sorted by name: readers report each by name instead of ignoring it."""
        found = self._s3_files(self.is_other) if self.folder is None else self._local_files(self.is_other)
        return sorted(found, key=lambda f: f.name)

    def _local_files(self, wanted=None) -> list[InboxFile]:
        wanted = wanted or self.is_complete
        assert self.folder is not None  # a local inbox
        if not self.folder.is_dir():
            return []
        try:
            entries = list(os.scandir(self.folder))
        except OSError as exc:
            raise InboxUnavailable(
                f"inbox {self.location} cannot be listed ({exc.strerror}); check the folder's "
                "permissions or point SELFINSTRUCT_INBOX elsewhere"
            ) from exc
        found = []
        for entry in entries:
            if not wanted(entry.name):
                continue
            try:
                info = entry.stat()  # follows a symlink: what a reader would open
            except FileNotFoundError:
                if not entry.is_symlink():
                    continue  # taken by a consumer between listing and stat
                info = None  # a dangling link: listed, so its read() says so
            except OSError:
                info = None  # a symlink loop or no permission: listed, so its read() says why
            if info is not None and stat.S_ISDIR(info.st_mode):
                continue  # a folder, even one named like a file, belongs to someone else
            if info is None:
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
            found.append(InboxFile(entry.name, info.st_size, info.st_mtime))
        return found

    def _s3_files(self, wanted=None) -> list[InboxFile]:
        from botocore.exceptions import BotoCoreError, ClientError

        wanted = wanted or self.is_complete
        assert self.prefix is not None  # an S3 inbox
        # Delimiter "/" puts deeper keys in CommonPrefixes, so Contents holds only this folder's own files.
        pages = (
            self._s3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix, Delimiter="/")
        )
        found = []
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(self.prefix) :]
                    if wanted(name):
                        found.append(InboxFile(name, obj["Size"], obj["LastModified"].timestamp()))
        except ClientError as exc:
            raise self._s3_missing(exc) from exc
        except BotoCoreError as exc:  # no credentials, no endpoint: nothing in this inbox can be read
            raise self._s3_unavailable(exc) from exc
        return found

    def read(self, name: str) -> bytes:
        """The bytes of one complete file; FileNotFoundError if it vanished since it was listed, InboxEntryError
        if this entry cannot be read (the others still can), InboxUnavailable if the whole inbox cannot."""
        self._check_name(name)
        if self.folder is not None:
            return self._read_local(self.folder / name)
        from botocore.exceptions import BotoCoreError, ClientError

        assert self.prefix is not None  # an S3 inbox
        try:
            return self._s3().get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        except ClientError as exc:
            raise self._s3_missing(exc, name) from exc
        except BotoCoreError as exc:
            raise self._s3_unavailable(exc) from exc

    @staticmethod
    def _read_local(path: Path) -> bytes:
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it without reading.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            if os.path.islink(path):
                raise InboxEntryError(
                    f"{path} is a symlink to {os.readlink(path)!r}, which does not exist; "
                    "replace the link with the file itself"
                ) from None
            raise  # vanished between listing and reading: nothing to report
        except OSError as exc:
            raise InboxEntryError(
                f"{path} cannot be opened: {exc.strerror}; fix its permissions or replace it with a plain file"
            ) from exc
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise InboxEntryError(
                    f"{path} is {_kind(mode)}, not a regular file; writers publish files by rename, so remove it"
                )
            try:
                return f.read()
            except OSError as exc:
                raise InboxEntryError(f"{path} cannot be read: {exc.strerror}") from exc

    def write(self, name: str, data: bytes) -> str:
        """Publish `data` whole as `name` (replacing a file of that name); returns where it was written."""
        self._check_name(name)
        if self.folder is None:
            from botocore.exceptions import BotoCoreError, ClientError

            assert self.prefix is not None  # an S3 inbox
            try:  # one put_object is atomic: readers see the old object, or all of the new one
                self._s3().put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)
            except ClientError as exc:
                raise self._s3_missing(exc, name) from exc
            except BotoCoreError as exc:
                raise self._s3_unavailable(exc) from exc
            return self.location + name
        # NAME.tmp is the inboxes' protocol for a file being written (readers refuse the suffix).
        try:
            path = publish_bytes(self.folder / name, data, tmp_name=name + TMP_SUFFIX)
        except OSError as exc:  # a full disk, a read-only or foreign folder: the whole inbox, not this file
            fixes: dict[int | None, str] = {
                errno.ENOSPC: f"free space on that disk (df -h {self.folder})",
                errno.EDQUOT: f"free space within your disk quota (df -h {self.folder})",
                errno.EROFS: "mount it writable",
            }
            fix = fixes.get(exc.errno, "check that the folder is writable by this user")
            refused = InboxWriteError(
                f"inbox {self.location}: cannot write {name}: {exc.strerror or exc}; nothing was written (no "
                f"partial file is left). {fix[0].upper() + fix[1:]}, or point SELFINSTRUCT_INBOX at another folder"
            )
            refused.errno = exc.errno
            raise refused from exc
        return str(path)


def as_inbox(inbox_or_folder: Inbox | str | os.PathLike, suffixes: tuple[str, ...] = (".jsonl",)) -> Inbox:
    """An Inbox as it is; a folder path or s3:// URI wrapped as `Inbox(str(folder), suffixes)`."""
    if isinstance(inbox_or_folder, Inbox):
        return inbox_or_folder
    if not isinstance(inbox_or_folder, (str, os.PathLike)):
        raise TypeError(f"expected an Inbox, a folder path or an s3:// URI, got {type(inbox_or_folder).__name__}")
    return Inbox(str(inbox_or_folder), suffixes)


def inbox_root() -> str:
    """`SELFINSTRUCT_INBOX` (a folder or s3:// URI), else `<SELFINSTRUCT_HOME>/inbox`; read at each call."""
    root = settings.get("SELFINSTRUCT_INBOX")  # SettingsError for s3:// without a bucket, http://, ...
    if root:
        return root
    from selfinstruct.core.paths import project_home

    return str(project_home() / "inbox")


def inbox_for(kind: str, root: str | None = None, suffixes: tuple[str, ...] | None = None, s3_client=None) -> Inbox:
    """The inbox `root/kind` (root: `inbox_root()` when empty) with the suffixes that kind's writers use."""
    if kind not in KINDS:
        raise ValueError(f"unknown inbox kind {kind!r}; expected one of {', '.join(KINDS)}")
    base = str(root or inbox_root()).rstrip("/")
    return Inbox(f"{base}/{kind}", KINDS[kind] if suffixes is None else suffixes, s3_client)
