"""The one s3:// URI parser (selfinstruct.core.s3_uri) and the messages its callers give for a bad URI."""

import pytest

from selfinstruct.core.s3_uri import S3UriError, is_s3_uri, split_s3_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/key.zip", ("bucket", "key.zip")),
        ("s3://bucket/a/b/", ("bucket", "a/b/")),
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
    ],
)
def test_bucket_and_key(uri, expected):
    assert split_s3_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "kwargs", "message"),
    [
        ("https://x/y", {}, "S3 URI 'https://x/y' is not of the form s3://BUCKET/KEY"),
        ("S3://b/k", {}, "is not of the form"),  # the scheme is lower-case
        ("s3://", {"what": "inbox URI"}, "inbox URI 's3://' names no bucket; write it as s3://BUCKET/KEY"),
        ("s3:///k", {"form": "s3://BUCKET/PREFIX"}, "'s3:///k' names no bucket; write it as s3://BUCKET/PREFIX"),
        ("s3://b", {"need_key": True}, "'s3://b' names no object key"),
        ("s3://b/dir/", {"need_key": True}, "'s3://b/dir/' names no object key"),
    ],
)
def test_a_bad_uri_is_named(uri, kwargs, message):
    with pytest.raises(S3UriError) as err:
        split_s3_uri(uri, **kwargs)
    assert message in str(err.value) and isinstance(err.value, ValueError)


def test_detection_and_a_bucketless_split_on_request():
    assert is_s3_uri("s3://b/k") and not is_s3_uri("/local/s3://b") and not is_s3_uri(None)
    assert split_s3_uri("s3:///k", need_bucket=False) == ("", "k")


def test_callers_name_the_uri_in_their_own_errors(tmp_path):
    from selfinstruct.core.artifact_store import ArtifactStoreError, open_store
    from selfinstruct.corpus.source import CuadSourceError, open_cuad_source
    from training import s3_files

    with pytest.raises(ArtifactStoreError, match="artifact location 's3:///p' names no bucket"):
        open_store("s3:///p", s3_client=object(), cache_dir=tmp_path)
    with pytest.raises(CuadSourceError, match=r"CUAD source 's3://b' names no object key; write it as s3://BUCKET/KEY"):
        open_cuad_source("s3://b", tmp_path)
    with pytest.raises(ValueError, match="S3 URI 's3://' names no bucket"):
        s3_files.read_json(object(), "s3://")
