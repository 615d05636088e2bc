"""Real Dagster processes for tests: a free loopback port, start in a new process group, stop by group."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Direct opener: a proxy from the environment must not sit between the test and the loopback server.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(log: Path, n: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:]) if log.exists() else "(no log)"


def start(script: str, args: list[str], env: dict, log: Path) -> subprocess.Popen:
    """`.venv/bin/<script> args...` in the repo, in its own process group (dagster ignores signals otherwise)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / script), *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group (server + code server + run workers), SIGKILL it if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    """Return once `url` answers 200; AssertionError with the log's tail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with OPENER.open(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer within {timeout_s:.0f} s:\n{log_tail(log)}")
        time.sleep(0.5)
