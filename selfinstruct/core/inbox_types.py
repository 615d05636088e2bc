"""What an inbox and its two stores (inbox_local, inbox_s3) share: the record of one file, the errors readers
catch, and the suffix of a file still being written.

Dagster-free.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class InboxFile:
    """One complete file of an inbox."""

    name: str  # file name inside the inbox: no folders
    size: int  # bytes
    modified: float  # POSIX seconds (S3: LastModified)
