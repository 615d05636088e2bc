"""Every `SELFINSTRUCT_*` environment variable the project reads, validated in one place.

    from selfinstruct.core import settings
    settings.get("SELFINSTRUCT_FEEDBACK_MAX_WAIT_S")   # 3600.0 when unset; SettingsError when 'nan'

Dagster-free. Values are read from the environment at each call, never at import. An empty or unset
variable means its default (`None` where the caller works the default out, e.g. the inbox under the home).
A value that cannot be used raises `SettingsError`, whose message names the variable, the bad value (redacted
by `redact.redact_text`, as every URI the project prints) and an example of a good one.
`python -m selfinstruct.core.settings` prints the table below as Markdown.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from selfinstruct.core.redact import redact_text, redact_uri
from selfinstruct.core.s3_uri import is_s3_uri, split_s3_uri


class SettingsError(ValueError):
    """An environment variable holds a value the project cannot use; the message says which and the fix."""


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], object]  # raw (stripped, non-empty) text -> value; ValueError(reason) when unusable
    default: object  # the value when unset or empty
    default_text: str  # the default as the table shows it
    example: str
    help: str
    secret: bool = False  # a URL that may carry a password: masked in messages even without its scheme
    hidden: bool = False  # a token: never shown in messages at all


def _integer(lo: int, hi: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("is not a whole number") from None
        if value < lo or (hi is not None and value > hi):
            raise ValueError(f"is out of range (must be >= {lo}" + (f" and <= {hi})" if hi is not None else ")"))
        return value

    return parse


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("is not a number of seconds") from None
    if not math.isfinite(value):
        raise ValueError("is not a finite number of seconds")
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError(f"is not one of {', '.join(options)}")
        return raw

    return parse


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# S3 bucket names: 3-63 lower-case letters, digits, dots and hyphens, starting and ending alphanumeric.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _local_path(raw: str) -> str:
    if "\x00" in raw:
        raise ValueError("contains a NUL character")
    return raw


def _s3(raw: str, need_key: bool) -> str:
    if not is_s3_uri(raw):
        raise ValueError("is not of the form s3://BUCKET/...")
    bucket, key = split_s3_uri(raw, need_bucket=False)  # a bucket is checked against S3's naming rules here
    if not _BUCKET.match(bucket):
        raise ValueError(f"names no valid S3 bucket ({bucket!r})")
    if need_key and (not key or key.endswith("/")):
        raise ValueError("names no object key")
    return raw


def _home(raw: str) -> Path:
    try:
        return Path(_local_path(raw)).expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unknown ~user
        raise ValueError(f"cannot be resolved as a path ({exc})") from None


def _folder_or_s3(what: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        scheme = _SCHEME.match(raw)
        if scheme and scheme.group(1).lower() == "s3":
            return _s3(raw, need_key=False)
        if scheme and raw[scheme.end() :].startswith("//"):
            raise ValueError(f"uses {scheme.group(1)}://, but {what} is a local folder or s3://BUCKET/PREFIX")
        return _local_path(raw)

    return parse


def _cuad_uri(raw: str) -> str:
    scheme = _SCHEME.match(raw)
    name = scheme.group(1).lower() if scheme else ""
    if name == "s3":
        return _s3(raw, need_key=True)
    if name in ("http", "https"):
        return _url(raw, ("http", "https"))
    if scheme and raw[scheme.end() :].startswith("//") and name != "file":
        raise ValueError(f"uses {name}://, but CUAD comes from a local path, http(s):// or s3://")
    return _local_path(raw)


def _url(raw: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in schemes:
        raise ValueError(f"must start with {' or '.join(s + '://' for s in schemes)}")
    if not parts.hostname and parts.scheme.lower() not in ("memory", "filesystem"):
        raise ValueError("names no host")
    return raw


def _token(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError(f"is {len(raw)} characters long; a bearer token needs at least 16")
    return raw


_BROKERS = ("redis", "rediss", "amqp", "amqps", "pyamqp", "sqs")
_POSTGRES = ("postgresql", "postgres", "postgresql+psycopg2")

SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting(
            "SELFINSTRUCT_HOME",
            _home,
            None,
            "./.selfinstruct",
            "/srv/selfinstruct",
            "folder with the Dagster instance, the DuckDB file, Chroma data, models, caches, adapters and inboxes; "
            "must be a folder the project can create and write",
        ),
        Setting(
            "SELFINSTRUCT_CUAD_URI",
            _cuad_uri,
            None,
            "../shared/cuad/CUAD_v1.zip if present, else Zenodo",
            "s3://my-bucket/cuad/CUAD_v1.zip",
            "where CUAD comes from: a zip, an extracted CUAD_v1 folder, an http(s):// URL or s3://BUCKET/KEY",
        ),
        Setting(
            "SELFINSTRUCT_INBOX",
            _folder_or_s3("an inbox"),
            None,
            "$SELFINSTRUCT_HOME/inbox",
            "s3://my-bucket/selfinstruct/inbox",
            "where feedback, production queries and new contracts arrive: a folder or s3://BUCKET/PREFIX",
        ),
        Setting(
            "SELFINSTRUCT_ARTIFACTS",
            _folder_or_s3("the artifact store"),
            None,
            "$SELFINSTRUCT_HOME",
            "s3://my-bucket/selfinstruct",
            "where adapters and compiled programs are published: a folder or s3://BUCKET/PREFIX",
        ),
        Setting(
            "SELFINSTRUCT_BASE_MODEL",
            _local_path,
            "",
            "the packaged SmolLM2",
            "/models/SmolLM2-135M-Instruct",
            "a local model folder used by every local LM role and as the base of every adapter",
        ),
        Setting(
            "SELFINSTRUCT_EMBEDDER",
            _choice("minilm", "titan", "hashing"),
            "minilm",
            "minilm",
            "hashing",
            "text embedder: minilm, titan (Bedrock) or hashing (fast, for smoke runs)",
        ),
        Setting(
            "SELFINSTRUCT_FEEDBACK_MIN_ROWS",
            _integer(1),
            20,
            "20",
            "20",
            "new valid feedback rows that trigger a refresh (a whole number >= 1)",
        ),
        Setting(
            "SELFINSTRUCT_FEEDBACK_MAX_WAIT_S",
            _seconds,
            3600.0,
            "3600",
            "3600",
            "... or the age in seconds of the oldest waiting row that does (finite, >= 0)",
        ),
        Setting(
            "SELFINSTRUCT_DRIFT_COOLDOWN_S",
            _seconds,
            21600.0,
            "21600",
            "21600",
            "least seconds between two drift-triggered regenerations (finite, >= 0)",
        ),
        Setting(
            "SELFINSTRUCT_CHROMA_URL",
            lambda raw: _url(raw, ("http", "https")),
            "",
            "embedded Chroma",
            "http://127.0.0.1:8000",
            "a Chroma server that replaces the embedded index",
        ),
        Setting(
            "SELFINSTRUCT_EXECUTOR",
            _choice("in_process", "multiprocess", "celery"),
            "in_process",
            "in_process",
            "celery",
            "which executor runs a job's steps",
        ),
        Setting(
            "SELFINSTRUCT_CELERY_BROKER",
            lambda raw: _url(raw, _BROKERS),
            "",
            "none",
            "redis://127.0.0.1:6379/0",
            "the Celery broker when SELFINSTRUCT_EXECUTOR=celery",
            secret=True,
        ),
        Setting(
            "SELFINSTRUCT_CELERY_BACKEND",
            lambda raw: _url(raw, _BROKERS),
            "",
            "the broker",
            "redis://127.0.0.1:6379/1",
            "the Celery result backend",
            secret=True,
        ),
        Setting(
            "SELFINSTRUCT_PG_URL",
            lambda raw: _url(raw, _POSTGRES),
            "",
            "none",
            "postgresql+psycopg2://user:password@db:5432/dagster",
            "PostgreSQL for Dagster's runs, events and schedules (instance --postgres)",
            secret=True,
        ),
        Setting(
            "SELFINSTRUCT_SERVE_TOKEN",
            _token,
            "",
            "none (loopback only)",
            "$(openssl rand -hex 16)",
            "bearer token `selfinstruct serve` requires on every route; required when it binds an address other "
            "than 127.0.0.1 (at least 16 characters)",
            hidden=True,
        ),
    ]
}


def _shown(raw: str, secret: bool, hidden: bool = False) -> str:
    """The value as a message shows it: redacted as every URI the project prints (redact.redact_text: a userinfo
    password or token, signed query values); a secret URL written without its scheme too; a token not at all."""
    if hidden:
        return "(hidden)"
    if secret and "://" not in raw:  # 'user:password@host/db' is no URI to the redactor until it has a scheme
        shown = redact_uri("x://" + raw).removeprefix("x://")
    else:
        shown = redact_text(raw)
    return repr(shown if len(shown) <= 200 else shown[:200] + "...")


def get(name: str, environ: Mapping[str, str] | None = None):
    """The validated value of `name` in `environ` (default: os.environ, read now); its default when unset."""
    setting = SETTINGS[name]
    raw = (os.environ if environ is None else environ).get(name, "")
    raw = raw.strip()
    if not raw:
        return setting.default
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise SettingsError(
            f"{name}={_shown(raw, setting.secret, setting.hidden)} {exc}; set it like "
            f"{name}={setting.example} ({setting.help}), or unset it for the default "
            f"({setting.default_text})."
        ) from None


def check_writable_dir(path: Path, name: str) -> Path:
    """`path` if it is a folder the project can write, or one it can create; else SettingsError naming `name`."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise SettingsError(
            f"{name}={str(path)!r} cannot be used: {probe} is a file, not a folder; "
            f"set {name} to a folder, e.g. {name}={SETTINGS[name].example}."
        )
    try:
        # A real write, not os.access: the superuser passes access() on folders it still cannot write.
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        what = "is not writable" if probe == path else f"cannot be created: {probe} is not writable"
        raise SettingsError(
            f"{name}={str(path)!r} {what} ({exc.strerror or exc}); set {name} to a folder "
            f"you can write, e.g. {name}={SETTINGS[name].example}."
        ) from None
    return path


def markdown_table() -> str:
    rows = ["| variable | default | example | what it is |", "|---|---|---|---|"]
    rows += [f"| `{s.name}` | {s.default_text} | `{s.example}` | {s.help} |" for s in SETTINGS.values()]
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
