"""An inbox under an S3 prefix: list the prefix's own keys, read one, put one; S3's errors as the inbox's.

Dagster-free. The client is made when first used (only S3 inboxes import boto3). Keys further below the prefix
belong to someone else. A missing bucket raises `InboxBucketMissing`, refused access or an unreachable endpoint
`InboxUnavailable` naming the fix.
"""

from __future__ import annotations

from collections.abc import Callable

from selfinstruct.core.inbox_types import InboxBucketMissing, InboxFile, InboxUnavailable
from selfinstruct.core.redact import redact_text
from selfinstruct.core.s3_uri import split_s3_uri

_REFUSED = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "403")


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, prefix = split_s3_uri(uri, "inbox URI", form="s3://BUCKET/PREFIX/")
    prefix = prefix.rstrip("/")
    return bucket, prefix + "/" if prefix else ""


class S3Prefix:
    """The objects directly under `s3://bucket/prefix/`; `location` is that URI."""

    def __init__(self, uri: str, s3_client=None):
        self.bucket, self.prefix = _split_s3(uri)
        self.location = f"s3://{self.bucket}/{self.prefix}"
        self._client = s3_client

    def _s3(self):
        if self._client is None:
            import boto3  # only S3 inboxes pay for importing boto3, and only when first used

            # A session of its own: boto3's default session caches the credentials it first found, so an inbox
            # would otherwise use credentials the environment no longer has (and never name the missing ones).
            self._client = boto3.session.Session().client("s3")
        return self._client

    def _unavailable(self, exc: Exception) -> InboxUnavailable:
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

    def _missing(self, exc: Exception, name: str = "") -> Exception:
        """FileNotFoundError for a missing bucket or key, InboxUnavailable for refused access, else the error."""
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in _REFUSED:
            return self._unavailable(exc)
        if code == "NoSuchBucket":
            return InboxBucketMissing(
                f"bucket {self.bucket!r} of inbox {self.location} does not exist; create it "
                "or point SELFINSTRUCT_INBOX at another location"
            )
        if code in ("NoSuchKey", "404"):
            return FileNotFoundError(f"{self.location}{name} is gone (taken by another reader?)")
        return exc

    def files(self, wanted: Callable[[str], bool]) -> list[InboxFile]:
        """The objects whose names are `wanted` (unsorted); an empty prefix gives []."""
        from botocore.exceptions import BotoCoreError, ClientError

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
            raise self._missing(exc) from exc
        except BotoCoreError as exc:  # no credentials, no endpoint: nothing in this inbox can be read
            raise self._unavailable(exc) from exc
        return found

    def read(self, name: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self._s3().get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        except ClientError as exc:
            raise self._missing(exc, name) from exc
        except BotoCoreError as exc:
            raise self._unavailable(exc) from exc

    def write(self, name: str, data: bytes) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:  # one put_object is atomic: readers see the old object, or all of the new one
            self._s3().put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)
        except ClientError as exc:
            raise self._missing(exc, name) from exc
        except BotoCoreError as exc:
            raise self._unavailable(exc) from exc
        return self.location + name
