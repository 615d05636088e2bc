"""The CUAD download cache is keyed by the source URI, and the source reported is what was read."""

import hashlib
import http.server
import threading
from functools import partial

import pytest
from conftest import subset_archive

from selfinstruct.corpus.source import CuadSourceError, open_cuad_source


@pytest.fixture
def served(tmp_path):
    """Serve tmp_path/www over http on a free local port; yields the base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _contracts(archive) -> set[str]:
    try:
        return {n for n in archive.names() if n.endswith(".txt") and "full_contract_txt" in n}
    finally:
        archive.close()


def test_another_uri_of_the_same_name_is_not_served_from_the_cache(cuad_members, served, tmp_path):
    www, base = served
    (www / "a").mkdir()
    (www / "b").mkdir()
    subset_archive(cuad_members, www / "a" / "CUAD_v1.zip", 2, start=0)
    subset_archive(cuad_members, www / "b" / "CUAD_v1.zip", 3, start=10)
    cache = tmp_path / "cache"
    first = open_cuad_source(f"{base}/a/CUAD_v1.zip", cache)
    assert first.uri == f"{base}/a/CUAD_v1.zip"
    assert first.sha256 == hashlib.sha256((www / "a" / "CUAD_v1.zip").read_bytes()).hexdigest()
    a = _contracts(first)
    second = open_cuad_source(f"{base}/b/CUAD_v1.zip", cache)
    assert second.sha256 == hashlib.sha256((www / "b" / "CUAD_v1.zip").read_bytes()).hexdigest()
    b = _contracts(second)
    assert len(a) == 2 and len(b) == 3 and not a & b
    # the same URI again is served from its own slot, without the network
    (www / "a" / "CUAD_v1.zip").unlink()
    assert _contracts(open_cuad_source(f"{base}/a/CUAD_v1.zip", cache)) == a


def test_unreachable_new_uri_fails_instead_of_reusing_another_download(cuad_members, served, tmp_path):
    www, base = served
    subset_archive(cuad_members, www / "CUAD_v1.zip", 2)
    cache = tmp_path / "cache"
    open_cuad_source(f"{base}/CUAD_v1.zip", cache).close()
    with pytest.raises(CuadSourceError, match=r"http://127.0.0.1:9/CUAD_v1.zip is unreachable"):
        open_cuad_source("http://127.0.0.1:9/CUAD_v1.zip", cache)


def test_a_cached_download_that_changed_on_disk_is_fetched_again(cuad_members, served, tmp_path):
    www, base = served
    subset_archive(cuad_members, www / "CUAD_v1.zip", 2)
    cache = tmp_path / "cache"
    archive = open_cuad_source(f"{base}/CUAD_v1.zip", cache)
    archive.close()
    cached = archive.location
    with open(cached, "r+b") as f:  # damage the cached copy behind the cache's back
        f.seek(100)
        f.write(b"\x00" * 64)
    again = open_cuad_source(f"{base}/CUAD_v1.zip", cache)
    assert again.sha256 == hashlib.sha256((www / "CUAD_v1.zip").read_bytes()).hexdigest()
    assert len(_contracts(again)) == 2


def test_local_source_reports_its_path_and_content_hash(cuad_members, tmp_path):
    path = subset_archive(cuad_members, tmp_path / "CUAD_v1.zip", 2)
    archive = open_cuad_source(str(path), tmp_path / "cache")
    archive.close()
    assert archive.uri == str(path) and archive.location == str(path)
    assert archive.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("uri", ["s3://", "s3:///CUAD_v1.zip", "s3://bucket", "s3://bucket/"])
def test_s3_uri_without_bucket_or_key_is_refused(uri, tmp_path):
    with pytest.raises(CuadSourceError, match=r"s3://BUCKET/KEY"):
        open_cuad_source(uri, tmp_path)


def test_s3_source_is_cached_per_uri(cuad_members, tmp_path):
    boto3 = pytest.importorskip("boto3")
    from moto import mock_aws

    a = subset_archive(cuad_members, tmp_path / "a.zip", 2)
    b = subset_archive(cuad_members, tmp_path / "b.zip", 3, start=10)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="one")
        s3.create_bucket(Bucket="two")
        s3.upload_file(str(a), "one", "cuad/CUAD_v1.zip")
        s3.upload_file(str(b), "two", "cuad/CUAD_v1.zip")
        cache = tmp_path / "cache"
        first = open_cuad_source("s3://one/cuad/CUAD_v1.zip", cache, s3_client=s3)
        second = open_cuad_source("s3://two/cuad/CUAD_v1.zip", cache, s3_client=s3)
        assert len(_contracts(first)) == 2 and len(_contracts(second)) == 3
        assert second.sha256 == hashlib.sha256(b.read_bytes()).hexdigest()
        with pytest.raises(CuadSourceError, match="s3://one/missing.zip cannot be fetched"):
            open_cuad_source("s3://one/missing.zip", cache, s3_client=s3)
