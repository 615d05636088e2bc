"""The Dagster UI in a real headless browser: every asset of the definitions shows on a lineage graph.

Starts `dagster-webserver` on loopback with throw-away homes, opens each asset group's lineage page
(`/locations/<location>/asset-groups/<group>`) in Debian's Chromium through Playwright, and waits for
each asset name of that group to be rendered. The per-group screenshots land in tmp_path, tiled into
ui_screenshot.png, which is copied to /tmp/ui_screenshot.png.
Needs Chromium at /usr/bin/chromium (`make chromium`); Playwright's own browser download is not used.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import TimeoutError as PlaywrightTimeout, sync_playwright

from selfinstruct_assets.definitions import defs

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FIXED = {"cuad_contracts", "cuad_annotations", "cuad_rejects", "contract_chunks", "vector_index", "retrieval_eval"}
SERVER_START_S = 120
RENDER_TIMEOUT_MS = 90_000  # shared by all names and pages
SCREENSHOT_COPY = Path("/tmp/ui_screenshot.png")
# Direct opener: a proxy from the environment must not sit between the test and the loopback server.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def expected_assets() -> dict[str, str]:
    """{asset name: group name} read from the definitions the workspace loads."""
    graph = defs().resolve_asset_graph()
    return {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(log: Path, n: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:]) if log.exists() else "(no log)"


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (webserver + code server), SIGKILL it if it lingers."""
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


@pytest.fixture
def webserver(tmp_path):
    """Base URL of a dagster-webserver for workspace.yaml, stopped on teardown."""
    port, log = free_port(), tmp_path / "webserver.log"
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "dagster"), SELFINSTRUCT_HOME=str(tmp_path / "home"),
               HF_HUB_OFFLINE="1", DAGSTER_DISABLE_TELEMETRY="1")
    (tmp_path / "dagster").mkdir()
    script = Path(sys.executable).parent / "dagster-webserver"
    cmd = [str(script), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + SERVER_START_S
        while True:
            try:
                with OPENER.open(f"{base}/server_info", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"dagster-webserver exited with {proc.returncode}:\n{log_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"dagster-webserver gave no /server_info within {SERVER_START_S} s:\n{log_tail(log)}")
            time.sleep(0.5)
        yield base
    finally:
        stop(proc)


@pytest.mark.slow
def test_lineage_graphs_show_every_asset(webserver, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (installs Debian's chromium)")
    from PIL import Image  # pillow comes with matplotlib

    assets = expected_assets()
    assert FIXED <= set(assets), f"definitions lack {sorted(FIXED - set(assets))}"
    groups = sorted(set(assets.values()))
    location = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"][0]["python_module"]["location_name"]
    missing, shots, deadline = {}, [], time.monotonic() + RENDER_TIMEOUT_MS / 1000
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            # The loopback UI opens a "Join the Dagster community" dialog until this key is set.
            context.add_init_script("window.localStorage.setItem('communityNux', '1')")
            page = context.new_page()
            # One lineage graph per group: the global graph zooms into one group and leaves the rest off-screen.
            for group in groups:
                page.goto(f"{webserver}/locations/{location}/asset-groups/{group}", wait_until="domcontentloaded")
                for name in sorted(a for a, g in assets.items() if g == group):
                    try:  # one deadline for all names, so a blank UI fails in ~90 s
                        page.get_by_text(name, exact=True).filter(visible=True).first.wait_for(
                            state="visible", timeout=max(1000, (deadline - time.monotonic()) * 1000))
                    except PlaywrightTimeout:
                        missing.setdefault(group, []).append(name)
                shots.append(tmp_path / f"ui_{group}.png")
                page.screenshot(path=str(shots[-1]))
        finally:
            browser.close()
    grid = Image.new("RGB", (1600 * min(2, len(shots)), 1000 * ((len(shots) + 1) // 2)), "white")
    for i, shot in enumerate(shots):
        with Image.open(shot) as im:
            grid.paste(im.convert("RGB"), (1600 * (i % 2), 1000 * (i // 2)))
    grid.save(tmp_path / "ui_screenshot.png")
    shutil.copyfile(tmp_path / "ui_screenshot.png", SCREENSHOT_COPY)
    assert not missing, f"not shown on the group lineage pages: {missing} (screenshots {SCREENSHOT_COPY})"
