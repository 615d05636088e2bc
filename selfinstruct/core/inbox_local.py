"""An inbox on local disk: list a folder's entries, read one without waiting on a FIFO, publish one by rename.

Dagster-free. `selfinstruct.core.inbox.Inbox` decides which names are wanted; this module says what a name on
disk is. A bad entry (a symlink loop, a dangling link, a FIFO, no permission) is listed like any file and its
read raises `InboxEntryError`; a folder that cannot be listed or written raises `InboxUnavailable`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from selfinstruct.core.artifacts import publish_bytes
from selfinstruct.core.inbox_types import TMP_SUFFIX, InboxEntryError, InboxFile, InboxUnavailable, InboxWriteError

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def _kind(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


class LocalFolder:
    """The files of one local folder; `location` is the folder as the inbox was given it."""

    def __init__(self, uri: str):
        self.folder = Path(uri)
        self.location = uri

    def files(self, wanted: Callable[[str], bool]) -> list[InboxFile]:
        """The entries whose names are `wanted` (unsorted); a missing folder gives []."""
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

    def read(self, name: str) -> bytes:
        path = self.folder / name
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
