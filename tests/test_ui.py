"""The Dagster UI in a real headless browser: every asset of the definitions shows on a lineage graph.

Starts `dagster-webserver` on loopback with throw-away homes, opens each asset group's lineage page
(`/locations/<location>/asset-groups/<group>`) in Debian's Chromium through Playwright, and waits for
each asset name of that group to be rendered. The per-group screenshots land in tmp_path, tiled into
ui_screenshot.png, which is copied to /tmp/ui_screenshot.png.
Needs Chromium at /usr/bin/chromium (`make chromium`); Playwright's own browser download is not used.
"""

import os
import shutil
import time
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright
from procs import REPO, free_port, start, stop, wait_http

from selfinstruct_assets.definitions import defs

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FIXED = {"cuad_contracts", "cuad_annotations", "cuad_rejects", "contract_chunks", "vector_index", "retrieval_eval"}
SERVER_START_S = 120
RENDER_TIMEOUT_MS = 60_000  # per group page, shared by its names
SCREENSHOT_COPY = Path("/tmp/ui_screenshot.png")
VIEWPORT = {"width": 3840, "height": 2600}
TILE = (1920, 1300)  # each group's screenshot at half size in the tiled picture


def expected_assets() -> dict[str, str]:
    """{asset name: group name} read from the definitions the workspace loads."""
    graph = defs().resolve_asset_graph()
    return {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}


@pytest.fixture
def webserver(tmp_path):
    """Base URL of a dagster-webserver for workspace.yaml, stopped on teardown."""
    port, log = free_port(), tmp_path / "webserver.log"
    env = dict(
        os.environ,
        DAGSTER_HOME=str(tmp_path / "dagster"),
        SELFINSTRUCT_HOME=str(tmp_path / "home"),
        HF_HUB_OFFLINE="1",
        DAGSTER_DISABLE_TELEMETRY="1",
    )
    (tmp_path / "dagster").mkdir()
    proc = start("dagster-webserver", ["-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)], env, log)
    try:
        wait_http(f"http://127.0.0.1:{port}/server_info", proc, log, SERVER_START_S)
        yield f"http://127.0.0.1:{port}"
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
    missing, shots = {}, []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            # A large viewport: the graph opens at 100 % zoom, so a big group would otherwise be partly off-screen.
            context = browser.new_context(viewport=VIEWPORT)
            # The loopback UI opens a "Join the Dagster community" dialog until this key is set.
            context.add_init_script("window.localStorage.setItem('communityNux', '1')")
            page = context.new_page()
            # One lineage graph per group: the global graph zooms into one group and leaves the rest off-screen.
            for group in groups:
                page.goto(f"{webserver}/locations/{location}/asset-groups/{group}", wait_until="domcontentloaded")
                # A deadline per page: with ten groups on a busy 2-core machine one shared deadline ran out on
                # the last pages while they were still rendering; a blank page still fails within a minute.
                deadline = time.monotonic() + RENDER_TIMEOUT_MS / 1000
                for name in sorted(a for a, g in assets.items() if g == group):
                    try:  # one deadline for the page's names
                        page.get_by_text(name, exact=True).filter(visible=True).first.wait_for(
                            state="visible", timeout=max(1000, (deadline - time.monotonic()) * 1000)
                        )
                    except PlaywrightTimeout:
                        missing.setdefault(group, []).append(name)
                shots.append(tmp_path / f"ui_{group}.png")
                page.screenshot(path=str(shots[-1]))
        finally:
            browser.close()
    grid = Image.new("RGB", (TILE[0] * min(2, len(shots)), TILE[1] * ((len(shots) + 1) // 2)), "white")
    for i, shot in enumerate(shots):
        with Image.open(shot) as im:
            grid.paste(im.convert("RGB").resize(TILE), (TILE[0] * (i % 2), TILE[1] * (i // 2)))
    grid.save(tmp_path / "ui_screenshot.png")
    shutil.copyfile(tmp_path / "ui_screenshot.png", SCREENSHOT_COPY)
    assert not missing, f"not shown on the group lineage pages: {missing} (screenshots {SCREENSHOT_COPY})"
