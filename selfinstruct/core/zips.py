"""Opening a zip archive with every member's CRC checked first, so a damaged file fails once, up front."""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path


class DamagedZip(ValueError):
    """The archive cannot be read (`member` None) or `member` fails its CRC check; the message says which."""

    def __init__(self, message: str, member: str | None = None):
        super().__init__(message)
        self.member = member


def open_checked_zip(source: Path | bytes) -> zipfile.ZipFile:
    """The open archive at `source` (a path or the bytes of a zip); DamagedZip when any member is unreadable."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
        bad = zf.testzip()
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise DamagedZip(f"not a readable zip archive ({exc})") from exc
    if bad is not None:
        zf.close()
        raise DamagedZip(f"member {bad!r} fails its CRC check", member=bad)
    return zf
