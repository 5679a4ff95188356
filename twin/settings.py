"""Process-wide settings: cache and map directories, threads, logging.

Per-run parameters live in :mod:`twin.scenario`; this module holds only what belongs to the
machine or the process. Every value can be set by an environment variable:

``TWIN_CACHE_DIR``
    Where compiled road networks and downloaded maps are cached
    (default: the user cache dir, e.g. ``~/.cache/citytwin``).
``TWIN_MAPS_PATH``
    Extra directories searched for map files, separated by ``os.pathsep``
    (searched after the project's ``maps/`` folder).
``TWIN_OFFLINE``
    ``1`` forbids any download (as if no network were reachable).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["cache_dir", "maps_search_path", "offline", "project_root"]


def project_root() -> Path | None:
    """The source checkout holding ``twin/`` (``None`` when installed from a wheel)."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").exists() else None


def cache_dir() -> Path:
    """Directory for caches (created on first use)."""
    env = os.environ.get("TWIN_CACHE_DIR")
    path = Path(env) if env else Path(platformdirs.user_cache_dir("citytwin"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def maps_search_path() -> list[Path]:
    """Directories searched for map files, in order: ``./maps``, the project's ``maps/``,
    then each entry of ``TWIN_MAPS_PATH``."""
    dirs: list[Path] = [Path.cwd() / "maps"]
    root = project_root()
    if root is not None:
        dirs.append(root / "maps")
    env = os.environ.get("TWIN_MAPS_PATH", "")
    dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    seen: set[Path] = set()
    out = []
    for d in dirs:
        r = d.resolve()
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


def offline() -> bool:
    """True when downloads are forbidden by ``TWIN_OFFLINE=1``."""
    return os.environ.get("TWIN_OFFLINE", "") not in ("", "0", "false", "no")
