"""Shared fixtures: the ../shared data folder, a private cache dir, small scenarios."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A private cache per test session: tests never read or pollute the user's cache.
_CACHE = tempfile.mkdtemp(prefix="twin-test-cache-")
os.environ.setdefault("TWIN_CACHE_DIR", _CACHE)
os.environ["TWIN_OFFLINE"] = (os.environ.get("TWIN_TEST_ONLINE", "") and "0") or "1"


def _shared_dir() -> Path | None:
    for cand in [*(Path(p).parent for p in os.environ.get("TWIN_MAPS_PATH", "").split(os.pathsep) if p),
                 ROOT.parent / "shared"]:
        if (cand / "maps").is_dir():
            return cand.resolve()
    return None


SHARED = _shared_dir()
if SHARED is not None and not os.environ.get("TWIN_MAPS_PATH"):
    os.environ["TWIN_MAPS_PATH"] = str(SHARED / "maps")


def need_shared() -> Path:
    """The ../shared folder; skip without it, but fail in CI (CI=true), where it must exist."""
    if SHARED is None:
        if os.environ.get("CI"):
            pytest.fail("../shared is missing in CI: tests that need real data must not skip there")
        pytest.skip("../shared (real maps and benchmarks) is not beside the project")
    return SHARED


@pytest.fixture(scope="session")
def shared() -> Path:
    return need_shared()
