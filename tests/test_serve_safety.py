"""`selfinstruct serve` is safe by default: a bearer token on every route, limits on what a request may send, the
token never logged, and no binding beyond loopback without a token.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_serve_safety.py

The world and the helpers are tests/serve_world.py's.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_serve import OPENER, QUESTIONS, call  # noqa: E402
from serve_world import TOKEN, fresh_world, tiny_world  # noqa: E402, F401 (fixtures)

from selfinstruct.serving.app import serve_in_thread  # noqa: E402

pytestmark = pytest.mark.slow  # loads the tiny model and starts uvicorn (the binding test only checks the CLI)


def test_safe_by_default(fresh, caplog):
    contract = sorted(fresh.contracts)[0]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with serve_in_thread(fresh.app(fresh.service(), token=TOKEN)) as url:
        for method, path in (("GET", "/v1/models"), ("POST", "/review/rate"), ("POST", "/v1/feedback")):
            status, body = call(method, f"{url}{path}", {} if method == "POST" else None)
            assert status == 401 and "bearer token" in body["error"]["message"]
        with OPENER.open(f"{url}/review", timeout=30) as page:  # a browser is sent to the sign-in form
            assert page.geturl().endswith("/review/login") and b'name="token"' in page.read()
        assert call("GET", f"{url}/v1/models", headers={"Authorization": "Bearer wrong-token-0000000000"})[0] == 401
        assert call("POST", f"{url}/v1/answers", {"question": "Q?", "contract_id": contract})[0] == 401
        assert call("GET", f"{url}/v1/models", headers=auth)[0] == 200
        ok = call("POST", f"{url}/v1/answers", {"question": QUESTIONS[0], "contract_id": contract}, auth)
        assert ok[0] == 200
        cases = [
            ({"question": "x" * 4001, "contract_id": contract}, 413, "at most 4000"),
            ({"question": "Who?", "contract_id": "no-such-contract"}, 404, "unknown contract_id 'no-such-contract'"),
            ({"question": "Who?", "contract_id": contract, "model": "ffffff999999"}, 404, "unknown model"),
            ({"question": "Who?", "contract_id": contract, "path": "/etc/passwd"}, 422, "path"),
            ({"question": "y" * 70_000, "contract_id": contract}, 413, "request body is over 64000 bytes"),
        ]
        for body, status, message in cases:
            got = call("POST", f"{url}/v1/answers", body, auth)
            assert got[0] == status and message in got[1]["error"]["message"], (body.keys(), got)
    everything = "".join(fresh.queries.read(f.name).decode() for f in fresh.queries.files())
    assert ok[1]["request_id"] in everything and TOKEN not in everything and TOKEN not in caplog.text


def test_binding_beyond_loopback_needs_the_token(monkeypatch, capsys):
    from selfinstruct_assets.cli import main
    from selfinstruct_assets.cli.serve import check_bind

    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", TOKEN)
    with pytest.raises(ValueError, match="SELFINSTRUCT_SERVE_TOKEN"):
        check_bind("0.0.0.0", None)
    monkeypatch.delenv("SELFINSTRUCT_SERVE_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "set SELFINSTRUCT_SERVE_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("SELFINSTRUCT_SERVE_TOKEN", "short-secret")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "at least 16" in err and "short-secret" not in err
