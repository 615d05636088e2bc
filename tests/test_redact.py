"""Secrets never persist: every URI the project records or prints goes through one redaction."""

import base64
import http.server
import json
import threading

import pytest
from conftest import subset_archive

from selfinstruct.core.redact import redact_text, redact_uri, split_userinfo
from selfinstruct.corpus.source import CuadSourceError, open_cuad_source

PRESIGNED = (
    "https://my-bucket.s3.eu-west-1.amazonaws.com/cuad/CUAD_v1.zip?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z"
    "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLE"
    "&X-Amz-Signature=0123456789abcdef"
)
SECRETS = ("AKIAEXAMPLE", "FQoGZXIvYXdzEXAMPLE", "0123456789abcdef", "hunter2", "tok-123", "s3cr3t")


@pytest.mark.parametrize(
    "uri, shown",
    [
        (PRESIGNED, "X-Amz-Signature=***"),
        ("https://alice:hunter2@example.org/CUAD_v1.zip", "https://alice:***@example.org/CUAD_v1.zip"),
        ("https://tok-123@example.org/x.zip", "https://***@example.org/x.zip"),
        ("postgresql+psycopg2://dagster:hunter2@db:5432/dagster", "postgresql+psycopg2://dagster:***@db:5432/dagster"),
        ("redis://:hunter2@127.0.0.1:6379/0", "redis://***@127.0.0.1:6379/0"),
        ("https://acct.blob.core.windows.net/c/x.zip?sv=2022&sig=s3cr3t&se=2026", "sig=***&se=2026"),
        ("https://h/x?token=tok-123&api_key=s3cr3t&page=2", "https://h/x?token=***&api_key=***&page=2"),
        ("s3://my-bucket/cuad/CUAD_v1.zip", "s3://my-bucket/cuad/CUAD_v1.zip"),
        ("/data/cuad/CUAD_v1.zip", "/data/cuad/CUAD_v1.zip"),
    ],
)
def test_credentials_and_signatures_are_redacted_and_the_rest_kept(uri, shown):
    redacted = redact_uri(uri)
    assert shown in redacted
    assert not any(secret in redacted for secret in SECRETS)


def test_every_uri_inside_a_message_is_redacted():
    message = f"CUAD source {PRESIGNED} is unreachable (<urlopen error https://alice:hunter2@h/x>)"
    shown = redact_text(message)
    assert shown.startswith("CUAD source https://my-bucket.s3.eu-west-1.amazonaws.com/cuad/CUAD_v1.zip?")
    assert not any(secret in shown for secret in SECRETS)


def test_userinfo_is_taken_apart_for_the_client():
    assert split_userinfo("https://al%40ice:pa%3Ass@h:8/x.zip") == ("https://h:8/x.zip", ("al@ice", "pa:ss"))
    assert split_userinfo("https://h/x.zip") == ("https://h/x.zip", None)


@pytest.fixture
def served_with_auth(tmp_path):
    """Serve tmp_path/www over http, answering 401 unless Basic auth is alice:hunter2."""
    www = tmp_path / "www"
    www.mkdir()
    want = "Basic " + base64.b64encode(b"alice:hunter2").decode()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(www), **kw)

        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.headers.get("Authorization") != want:
                self.send_response(401)
                self.end_headers()
                return
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield www, f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_url_with_userinfo_is_fetched_with_basic_auth_and_recorded_without_the_password(
    cuad_members, served_with_auth, tmp_path
):
    www, host = served_with_auth
    subset_archive(cuad_members, www / "CUAD_v1.zip", 2)
    cache = tmp_path / "cache"
    archive = open_cuad_source(f"http://alice:hunter2@{host}/CUAD_v1.zip?token=tok-123", cache)
    archive.close()
    assert archive.uri == f"http://alice:***@{host}/CUAD_v1.zip?token=***"
    (record,) = cache.glob("downloads/*/source.json")
    assert json.loads(record.read_text())["uri"] == archive.uri
    assert not any(s in p.read_text(errors="replace") for p in cache.rglob("*.json") for s in SECRETS)
    # the same URI again comes from the cache slot (keyed by the whole URI), without the network
    (www / "CUAD_v1.zip").unlink()
    open_cuad_source(f"http://alice:hunter2@{host}/CUAD_v1.zip?token=tok-123", cache).close()


def test_a_refused_or_unreachable_url_fails_without_printing_its_secrets(served_with_auth, tmp_path):
    _, host = served_with_auth
    for uri in (f"http://alice:wrong-hunter2@{host}/CUAD_v1.zip", "http://alice:hunter2@no-such-host.invalid/x.zip"):
        with pytest.raises(CuadSourceError) as failed:
            open_cuad_source(uri, tmp_path / "cache")
        assert "hunter2" not in str(failed.value) and "alice:***@" in str(failed.value)
        assert "SELFINSTRUCT_CUAD_URI" in str(failed.value)
        if "wrong" in uri:
            assert "answered HTTP 401" in str(failed.value) and "check the user and password" in str(failed.value)
