"""One way to show a URI without its secrets: the form the project records (run metadata, source.json) and prints.

    redact_uri("https://AKIA:pw@h/x.zip?X-Amz-Signature=ab&v=2")  # 'https://AKIA:***@h/x.zip?X-Amz-Signature=***&v=2'
    redact_text(str(exc))                                          # every URI inside a message, redacted

Dagster-free. Redacted: a password in the userinfo (a user name alone is masked too: it is often a token, as in
https://TOKEN@host), and the values of query parameters that carry credentials or signatures (AWS presigned
URLs' X-Amz-Signature/Credential/Security-Token, Azure SAS `sig`, `token`, `access_token`, `api_key`, `password`,
...). Everything else stays, so a reader can still tell which host, bucket and file it was.
"""

from __future__ import annotations

import re
import urllib.parse

MASK = "***"

# Query keys (case-insensitive) whose values are secrets, by whole name or by a part of it.
_SECRET_KEYS = {
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "awsaccesskeyid",
    "x-goog-signature",
    "x-goog-credential",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "key",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "auth",
    "authorization",
    "code",
}
_SECRET_PARTS = ("signature", "credential", "token", "secret", "password", "passwd", "apikey", "api_key", "api-key")

# A URI inside free text: scheme://, then anything up to a space, a quote or a closing bracket.
_URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>()\[\]{}]+")


def _secret_key(key: str) -> bool:
    k = key.strip().lower()
    return k in _SECRET_KEYS or any(part in k for part in _SECRET_PARTS)


def _redact_query(query: str) -> str:
    if not query:
        return query
    parts = []
    for piece in query.split("&"):
        key, eq, _value = piece.partition("=")
        parts.append(f"{key}={MASK}" if eq and _secret_key(urllib.parse.unquote_plus(key)) else piece)
    return "&".join(parts)


def redact_uri(uri: str) -> str:
    """`uri` with its userinfo password (or bare user token) and secret query values replaced by ***."""
    text = str(uri)
    if "://" not in text and "?" not in text:
        return text  # a local path
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:  # an unbalanced [ in the host: keep the scheme, hide the rest but the path's end
        return _URI_IN_TEXT.sub(lambda m: m.group(0).split("://", 1)[0] + "://" + MASK, text)
    # The secrets are replaced where they stand, the rest kept as written (urlunsplit would turn 's3:///x' into
    # 's3:/x' and 'S3://' into 's3://', and a message about a bad value must show the value the user wrote).
    rest, hash_, fragment = text.partition("#")  # urlsplit's own order: the fragment, then the query
    base, qmark, query = rest.partition("?")
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        base = base.replace(f"//{netloc}", f"//{user}:{MASK}@{host}" if colon and user else f"//{MASK}@{host}", 1)
    return base + qmark + _redact_query(query) + hash_ + fragment


def redact_text(text: str) -> str:
    """`text` (an error message, a log line) with every URI in it redacted."""
    return _URI_IN_TEXT.sub(lambda m: redact_uri(m.group(0)), str(text))


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """(`url` without its userinfo, (user, password) or None): for clients that take credentials apart."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    bare = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, (urllib.parse.unquote(user), urllib.parse.unquote(password))
