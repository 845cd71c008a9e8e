"""Common fixtures: the official samples, and a small synthetic world built once per session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "official_samples"  # real records of the MiniGPT-5 release formats (see its README.md)


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(f"official samples not found at {SAMPLES}: they ship with the repository")
    return SAMPLES


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A level-1 small world built once (a few seconds)."""
    from mg5bench.data.world import WorldConfig, build_world

    root = tmp_path_factory.mktemp("world") / "w"
    build_world(WorldConfig(size="small", level=1), root, progress=False)
    return root


@pytest.fixture(scope="session")
def small_world_l2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mg5bench.data.world import WorldConfig, build_world

    root = tmp_path_factory.mktemp("world2") / "w"
    build_world(WorldConfig(size="small", level=2), root, progress=False)
    return root


@pytest.fixture(scope="session")
def small_world_l3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A level-3 small world (4,000 CC3M-like train images; about 4 s)."""
    from mg5bench.data.world import WorldConfig, build_world

    root = tmp_path_factory.mktemp("world3") / "w"
    build_world(WorldConfig(size="small", level=3), root, progress=False)
    return root


@pytest.fixture()
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the user cache (platformdirs honours XDG_CACHE_HOME) at a temp folder."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Chromium (playwright) for the real-browser tests; skips, naming the setup command, where chromium
    or playwright is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium on this machine: run 'bash scripts/setup_browser_test.sh' (apt chromium + playwright)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: pip install -e '.[e2e]' (or run "
        "scripts/setup_browser_test.sh)"
    )  # fmt: skip
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
