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

The stores live beside it: a folder on disk is `inbox_local.LocalFolder`, an S3 prefix `inbox_s3.S3Prefix`; the
file record and the errors (`InboxEntryError`, `InboxUnavailable`, ...) live in `inbox_types`.
"""

from __future__ import annotations

import os
from pathlib import Path

from selfinstruct.core import settings
from selfinstruct.core.inbox_local import LocalFolder
from selfinstruct.core.inbox_s3 import S3Prefix
from selfinstruct.core.inbox_types import TMP_SUFFIX, InboxFile
from selfinstruct.core.s3_uri import is_s3_uri

KINDS = {"feedback": (".jsonl",), "queries": (".jsonl",), "contracts": (".txt", ".zip")}


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
        self.bucket: str | None
        self.prefix: str | None
        self.folder: Path | None
        self._store: LocalFolder | S3Prefix
        if is_s3_uri(uri):
            self._store = S3Prefix(uri, s3_client)
            self.bucket, self.prefix = self._store.bucket, self._store.prefix
            self.folder = None
        else:
            self._store = LocalFolder(uri)
            self.bucket = self.prefix = None
            self.folder = self._store.folder
        self.location = self._store.location

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

    def files(self) -> list[InboxFile]:
        """The complete files, sorted by name; a missing local folder or an empty prefix gives []."""
        return sorted(self._store.files(self.is_complete), key=lambda f: f.name)

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
        return sorted(self._store.files(self.is_other), key=lambda f: f.name)

    def read(self, name: str) -> bytes:
        """The bytes of one complete file; FileNotFoundError if it vanished since it was listed, InboxEntryError
        if this entry cannot be read (the others still can), InboxUnavailable if the whole inbox cannot."""
        self._check_name(name)
        return self._store.read(name)

    def write(self, name: str, data: bytes) -> str:
        """Publish `data` whole as `name` (replacing a file of that name); returns where it was written."""
        self._check_name(name)
        return self._store.write(name, data)


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
