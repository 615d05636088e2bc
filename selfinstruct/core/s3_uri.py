"""The one reading of an s3:// URI: `s3://BUCKET/KEY` -> ("BUCKET", "KEY").

    bucket, key = split_s3_uri("s3://my-bucket/cuad/CUAD_v1.zip", "CUAD source", need_key=True)
    bucket, prefix = split_s3_uri(location, "artifact location", form="s3://BUCKET/PREFIX")   # prefix may be ""

Dagster-free. The artifact store, the S3 store, inboxes, the CUAD source, the settings check and the trainers'
S3 staging all read URIs through it; an error names what the URI was for, the URI and the form expected.
"""

from __future__ import annotations

S3_SCHEME = "s3://"


class S3UriError(ValueError):
    """Not a usable s3:// URI; the message names it and the form to write."""


def is_s3_uri(value: object) -> bool:
    """Whether `value` is a string that starts with s3:// (the scheme is lower-case, as boto3 and the CLI write it)."""
    return isinstance(value, str) and value.startswith(S3_SCHEME)


def split_s3_uri(
    uri: str, what: str = "S3 URI", *, form: str = "s3://BUCKET/KEY", need_bucket: bool = True, need_key: bool = False
) -> tuple[str, str]:
    """(bucket, key) of `uri`: the key is everything after the bucket's slash ('' for s3://BUCKET, a trailing
    slash kept). `S3UriError` naming `what` and `uri` when it is no s3:// URI, names no bucket (unless
    `need_bucket` is False) or, with `need_key`, names no object (no key, or one ending in '/')."""
    if not is_s3_uri(uri):
        raise S3UriError(f"{what} {uri!r} is not of the form {form}")
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    if need_bucket and not bucket:
        raise S3UriError(f"{what} {uri!r} names no bucket; write it as {form}")
    if need_key and (not key or key.endswith("/")):
        raise S3UriError(f"{what} {uri!r} names no object key; write it as {form}")
    return bucket, key
