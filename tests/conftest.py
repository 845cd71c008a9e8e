"""Common fixtures: the official samples, and a small synthetic world built once per session."""

from __future__ import annotations

from pathlib import Path

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


@pytest.fixture()
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the user cache (platformdirs honours XDG_CACHE_HOME) at a temp folder."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache
