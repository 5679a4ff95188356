"""Run a scenario and write its run folder atomically, without ever losing the user's data.

Run folder contents:

``scenario.resolved.yaml``  the scenario with every default spelled out
``kpis.json``               run-level KPIs (deterministic)
``trips.parquet``           one row per trip
``links.parquet``           hourly volume and mean speed per link (rows with traffic)
``links.gpkg``              daily link results with geometry, for GIS tools (QGIS, geopandas)
``events.parquet``          depart / enter_link / leave_link / arrive / aborted events of the last day
``iterations.parquet``      KPIs and relative gap of every simulated day (equilibrium convergence)
``timeseries.parquet``      Mesa DataCollector model variables per model step (last day)
``report.html``             a self-contained report: KPIs, maps, charts (see :mod:`twin.report`)
``network.json``            summary of the road network used
``manifest.json``           versions, seed, wall times per phase, files (not deterministic); written last
``run.log``                 the log of the run

Every file except ``manifest.json``, ``run.log`` and ``report.html`` (which shows the wall time) is
byte-identical for the same scenario and seed; ``links.gpkg`` too (its GeoPackage timestamps are
fixed to :data:`GPKG_DATE`).

Safety rules
------------

*Atomic.* Everything is written into a hidden temporary folder beside the target
(``.NAME.partial-XXXX``) and renamed to the target only when the run has succeeded, so a failed or
interrupted run never leaves a folder that looks complete. ``manifest.json`` is written last, after
``report.html``, and lists only the files that exist: a folder with a manifest is a complete run.

*Nothing of the user's is replaced.* Without ``overwrite`` an existing target (even an empty folder
or a dangling link) is :class:`~twin._errors.OutputExistsError`, checked before any work. With
``overwrite=True`` only a citytwin run folder is replaced: a directory (not a link) holding a
``manifest.json`` that parses as JSON and has ``citytwin_version``. Refused with
:class:`~twin._errors.OutputError`, before any work and with nothing deleted: a regular file, FIFO,
device, socket or link; a folder without a citytwin manifest; the current working folder or any
parent of it; the home folder or any parent of it; ``/``. The new run is renamed in only after
the old run folder, checked again to be the same folder (device and inode) with its manifest, has
been moved aside into ``.NAME.old-XXXX``; the old one is deleted after the new one is in place.

*The check and the rename agree.* The final rename uses ``renameat2(RENAME_NOREPLACE)`` (Linux,
through ctypes; see :func:`twin._fs.rename_noreplace`), which never replaces anything, not even an
empty folder. A target that did not exist when the run started but exists at its end (someone
created it) makes the run fail with :class:`~twin._errors.OutputExistsError`: that folder and its
contents are left untouched and the temporary folder is removed. The same holds when an old run
folder being replaced was swapped for something else meanwhile. Only where ``renameat2`` is missing
(non-Linux, old libc, filesystems without ``RENAME_NOREPLACE``) is the final step a check followed
by a rename, racy in the short window between them.

*Write errors are one line.* An :class:`OSError` while creating the parent or the temporary folder
or writing any output (no space, read-only filesystem, permission, too long a name, a parent that
is a file, ...) is an :class:`~twin._errors.OutputError` naming the path, the file and the reason,
e.g. ``runs/x: cannot write trips.parquet: No space left on device (the run was not saved)``; no
folder presented as complete is left. The parent and the temporary folder are created before any
simulation work, so a read-only filesystem or a special one (``/proc``, ``/sys``, ``/dev``) fails
at once. An :class:`OSError` while writing the report fails the run; any other exception from the
report (a bug in rendering) is a warning in ``run.log`` and the run is saved without
``report.html``.

*Stale folders are recognised.* Each temporary folder holds ``.owner.json`` (citytwin version, pid,
host, start time) from right after its creation until just before the final rename (it is never
in the run folder nor in the manifest). At the start of each run, every ``.*.partial-*`` and
``.*.old-*`` folder in the target's parent whose owner file names this host and a process that is
no longer running is removed (``removed stale partial folder ...`` in ``run.log``); a stale
``.NAME.old-*`` folder whose ``NAME`` is missing (its run was killed between moving the old run
aside and renaming the new one in) is first renamed back to ``NAME``. A folder without an owner
file, or of a process still alive or on another host, is never removed; it is only reported in
the log.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import platform
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from twin import __version__
from twin._errors import OutputError, OutputExistsError
from twin._fs import file_kind, os_reason, rename_noreplace, special_filesystem
from twin._tables import write_table
from twin.scenario import Scenario, dump_scenario

__all__ = ["RunResult", "run_scenario", "check_target", "default_out_dir", "write_table", "write_links_gpkg",
           "GPKG_DATE"]

log = logging.getLogger("twin")

#: The timestamp written into ``links.gpkg`` (``gpkg_contents.last_change``) so that identical
#: runs give identical bytes.
GPKG_DATE = "2000-01-01T00:00:00.000Z"

OWNER_FILE = ".owner.json"
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-[A-Za-z0-9_]+$")
_NOT_SAVED = "(the run was not saved)"


@dataclass
class RunResult:
    """What :func:`run_scenario` returns."""

    out_dir: Path
    kpis: dict[str, Any]
    wall_s: float
    phase_time_s: dict[str, float] = field(default_factory=dict)
    network_summary: dict[str, Any] = field(default_factory=dict)


def default_out_dir(scenario: Scenario) -> Path:
    """``runs/NAME`` (``runs/NAME-seedN`` when the seed was overridden is up to the caller)."""
    return Path("runs") / scenario.name


# --------------------------------------------------------------------------- links.gpkg

_gdal_lock = threading.Lock()


@contextmanager
def _fixed_gpkg_date(engine: str) -> Iterator[None]:
    """GDAL's ``OGR_CURRENT_DATE`` set to :data:`GPKG_DATE` while writing (restored after)."""
    with _gdal_lock:
        if engine == "pyogrio":
            import pyogrio

            old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
            pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_DATE})
            try:
                yield
            finally:
                pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})
        else:
            import fiona

            with fiona.Env(OGR_CURRENT_DATE=GPKG_DATE):
                yield


def _pin_gpkg_dates(path: Path) -> None:
    """Set the GeoPackage timestamps to :data:`GPKG_DATE` if the writer did not (old GDAL)."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        n = con.execute("SELECT count(*) FROM gpkg_contents WHERE last_change != ?", (GPKG_DATE,)).fetchone()[0]
        if n:
            con.execute("UPDATE gpkg_contents SET last_change = ?", (GPKG_DATE,))
            con.commit()
            con.execute("VACUUM")
    finally:
        con.close()


def _drive_capacity_factor(model: Any) -> float:
    """The factor on ``capacity_vph`` that the simulated vehicles drive on (sample share x flow factor)."""
    sc = getattr(model, "scenario", None)
    flow = float(sc.simulation.flow_capacity_factor) if sc is not None else 1.0
    return float(getattr(model, "sample_share", 1.0)) * flow


def write_links_gpkg(model: Any, path: Path) -> None:
    """Daily link results (volume, peak hour, speeds, volume/capacity) as a GeoPackage layer.

    Each link is its street's polyline (``RoadNetwork.link_geom_*``: the OSM shape, from the tail
    node to the head node), WGS84.

    Deterministic (identical input gives identical bytes: the GeoPackage timestamps are
    :data:`GPKG_DATE`) and atomic (written to a hidden temporary name beside ``path``, then renamed).
    """
    import geopandas as gpd
    from shapely import linestrings

    net = model.network
    cols = model.links_columns()
    L = net.n_links
    vol = np.bincount(cols["link_id"], weights=cols["volume_veh"], minlength=L)
    tt = np.bincount(cols["link_id"], weights=cols["volume_veh"] * cols["mean_travel_time_s"], minlength=L)
    peak_vol = np.zeros(L)
    peak_hour = np.full(L, -1)
    # per link its largest hourly volume (> 0) and the first row's hour with it (vectorised)
    link_id, v = np.asarray(cols["link_id"], np.int64), np.asarray(cols["volume_veh"])
    if link_id.size:
        order = np.lexsort((np.arange(link_id.size), -v.astype(np.float64), link_id))
        top = order[np.r_[True, link_id[order][1:] != link_id[order][:-1]]]
        top = top[v[top] > 0]
        peak_vol[link_id[top]] = v[top]
        peak_hour[link_id[top]] = np.asarray(cols["hour"])[top]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_speed = np.where(tt > 0, net.link_length_m * vol / tt, net.link_speed_mps)
    ptr = getattr(net, "link_geom_indptr", None)
    if ptr is not None and L:  # the street shapes: one vectorised call over the flat polyline arrays
        geometry = linestrings(np.column_stack([net.link_geom_lon, net.link_geom_lat]),
                               indices=np.repeat(np.arange(L), np.diff(ptr)))
    else:  # straight chords between the end nodes
        geometry = linestrings(np.stack([np.column_stack([net.node_lon[net.link_tail], net.node_lat[net.link_tail]]),
                                         np.column_stack([net.node_lon[net.link_head], net.node_lat[net.link_head]])],
                                        axis=1))
    gdf = gpd.GeoDataFrame({
        "link_id": np.arange(L), "u_osmid": net.node_osmid[net.link_tail], "v_osmid": net.node_osmid[net.link_head],
        "osm_way_id": net.link_osmid, "length_m": net.link_length_m, "lanes": net.link_lanes,
        "capacity_vph": net.link_capacity_vph, "freeflow_speed_mps": net.link_speed_mps,
        "volume_day_veh": vol.astype(np.int64), "peak_hour": peak_hour, "peak_volume_veh": peak_vol.astype(np.int64),
        # volumes are the simulated sample's, against the capacity the sample drives on
        "peak_vc_ratio": peak_vol / (net.link_capacity_vph * _drive_capacity_factor(model)),
        "mean_speed_mps": mean_speed,
    }, geometry=geometry, crs="EPSG:4326")
    try:
        import pyogrio  # noqa: F401

        engine = "pyogrio"
    except ImportError:  # pragma: no cover - geopandas < 1 with fiona only
        engine = "fiona"
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.gpkg")
    try:
        with _fixed_gpkg_date(engine):
            gdf.to_file(tmp, layer="links", driver="GPKG", engine=engine)
        _pin_gpkg_dates(tmp)
        os.replace(tmp, path)
    except BaseException:
        for p in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-journal", "-wal", "-shm"))):
            try:
                p.unlink()
            except OSError:
                pass
        raise


# --------------------------------------------------------------------------- run log

class _RunLogHandler(logging.FileHandler):
    """A file handler that records its write errors instead of printing a traceback to stderr."""

    failed: BaseException | None = None

    def handleError(self, record: logging.LogRecord) -> None:  # logging's name
        if self.failed is None:
            self.failed = sys.exc_info()[1]

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:
            if self.failed is None:
                self.failed = exc


@contextmanager
def _run_log(path: Path, out: Path) -> Iterator[_RunLogHandler]:
    with _writing(out, "run.log", path.parent):
        handler = _RunLogHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        handler.close()
        log.setLevel(old)


# --------------------------------------------------------------------------- errors

def _disk_reason(folder: Path, exc: BaseException) -> str:
    """Why a GDAL write failed: its messages rarely say ("no such table"), the filesystem does."""
    try:
        st = os.statvfs(folder)
        if st.f_flag & os.ST_RDONLY:
            return os.strerror(errno.EROFS)
        if st.f_bavail * st.f_frsize < 256 * 1024:
            return os.strerror(errno.ENOSPC)
    except (OSError, AttributeError):
        pass
    return os_reason(exc)


@contextmanager
def _writing(out: Path, name: str, folder: Path | None = None) -> Iterator[None]:
    """Turn an OSError (and a GDAL writer error) while writing ``name`` into one-line OutputError."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"{out}: cannot write {name}: {os_reason(exc)} {_NOT_SAVED}") from exc
    except RuntimeError as exc:
        if not type(exc).__module__.startswith(("pyogrio", "fiona")):
            raise
        reason = _disk_reason(folder, exc) if folder is not None else os_reason(exc)
        raise OutputError(f"{out}: cannot write {name}: {reason} {_NOT_SAVED}") from exc


# --------------------------------------------------------------------------- target checks

def _is_run_folder(path: Path) -> bool:
    """A folder holding a ``manifest.json`` written by citytwin (a JSON object with its version)."""
    mf = path / "manifest.json"
    try:
        st = os.lstat(mf)
        if not stat.S_ISREG(st.st_mode) or st.st_size > 10_000_000:
            return False
        data = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "citytwin_version" in data


_kind_of = file_kind


def _check_existing(out: Path, work: Path, overwrite: bool) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the run folder at ``work`` (``out`` made absolute) that ``overwrite``
    will replace, ``None`` if the target does not exist; refuses everything else (module docs)."""
    try:
        st = os.lstat(work)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError(f"{out}: cannot use it as the output folder: {os_reason(exc)}") from exc
    if not overwrite:
        if not stat.S_ISDIR(st.st_mode):
            raise OutputExistsError(f"{out}: exists and is {_kind_of(st.st_mode)}, not a run folder; "
                                    "choose another --out")
        raise OutputExistsError(f"{out}: output folder exists; pass --overwrite to replace it "
                                "or --out to choose another")
    refuse = "--overwrite replaces only a run folder written by citytwin; nothing was deleted"
    res = Path(os.path.realpath(work))
    cwd = Path(os.path.realpath(os.getcwd()))
    home = Path(os.path.realpath(os.path.expanduser("~")))
    if res == Path(res.anchor):
        raise OutputError(f"{out}: is the root folder /; {refuse}")
    if res == cwd:
        raise OutputError(f"{out}: is the current working folder; {refuse}")
    if res in cwd.parents:
        raise OutputError(f"{out}: is a parent of the current working folder; {refuse}")
    if res == home:
        raise OutputError(f"{out}: is the home folder; {refuse}")
    if res in home.parents:
        raise OutputError(f"{out}: is a parent of the home folder; {refuse}")
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{out}: is {_kind_of(st.st_mode)}, not a run folder; {refuse}")
    if not _is_run_folder(work):
        raise OutputError(f"{out}: is not a citytwin run folder (no manifest.json written by citytwin); {refuse}; "
                          "remove it yourself or choose another --out")
    return (st.st_dev, st.st_ino)


def _check_filesystem(out: Path) -> None:
    fs = special_filesystem(out)
    if fs is not None:
        raise OutputError(f"{out}: cannot write a run folder on the special filesystem {fs}; choose another --out")


def _make_parents(out: Path, work: Path) -> list[Path]:
    """Create the target's parent folders; the ones created (deepest first), for removal on failure."""
    parent = work.parent
    missing: list[Path] = []
    p = parent
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    if not missing and not parent.is_dir():
        raise OutputError(f"{out}: cannot create the run folder: {parent} is not a folder "
                          f"({os.strerror(errno.ENOTDIR)})")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = os.strerror(errno.ENOTDIR) if isinstance(exc, FileExistsError) else os_reason(exc)
        _remove_created(missing)
        raise OutputError(f"{out}: cannot create the folder {parent}: {reason}") from exc
    return missing


def _remove_created(created: list[Path]) -> None:
    for p in created:
        try:
            p.rmdir()
        except OSError:
            pass


# --------------------------------------------------------------------------- owner files, stale folders

def _owner(kind: str, target: str) -> dict[str, Any]:
    return {"citytwin_version": __version__, "kind": kind, "target": target, "pid": os.getpid(),
            "host": platform.node(), "started": datetime.now(UTC).isoformat(timespec="seconds")}


def _write_owner(folder: Path, kind: str, target: str) -> None:
    (folder / OWNER_FILE).write_text(json.dumps(_owner(kind, target)) + "\n", encoding="utf-8")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid we can check: assume alive, keep the folder
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, owned by someone else
        return True
    return True


def _clean_stale(parent: Path) -> list[tuple[int, str]]:
    """Remove the temporary folders of dead citytwin runs in ``parent``; ``(level, message)`` notes."""
    notes: list[tuple[int, str]] = []
    try:
        entries = sorted(os.scandir(parent), key=lambda e: e.name)
    except OSError:
        return notes
    host = platform.node()
    for e in entries:
        m = _TEMP_RE.match(e.name)
        if m is None:
            continue
        try:
            if not e.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        folder = Path(e.path)
        try:
            owner = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            notes.append((logging.WARNING, (f"kept partial folder {folder}: it has no {OWNER_FILE} (not citytwin's, "
                                            "or a run still starting); remove it yourself if nothing uses it")))
            continue
        except (OSError, ValueError) as exc:
            notes.append((logging.WARNING, f"kept partial folder {folder}: unreadable {OWNER_FILE} ({os_reason(exc)})"))
            continue
        if not isinstance(owner, dict) or "citytwin_version" not in owner or not isinstance(owner.get("pid"), int):
            notes.append((logging.WARNING, f"kept partial folder {folder}: {OWNER_FILE} is not citytwin's"))
            continue
        if owner.get("host") != host:
            notes.append((logging.INFO, f"kept partial folder {folder}: owned by host {owner.get('host')!r}"))
            continue
        if _pid_alive(owner["pid"]):
            continue  # a run in progress (or a reused pid): never touched
        who = f"pid {owner['pid']} on {host}, started {owner.get('started', '?')}, is not running"
        inner = folder / "run"
        if m["kind"] == "old" and inner.is_dir() and not inner.is_symlink() and not os.path.lexists(parent / m["name"]):
            try:  # killed between moving the old run aside and renaming the new one in: put it back
                rename_noreplace(inner, parent / m["name"])
                notes.append((logging.WARNING, (f"restored run folder {parent / m['name']} from stale folder {folder} "
                                                f"({who})")))
            except OSError as exc:
                notes.append((logging.WARNING, (f"kept stale folder {folder}: cannot restore {parent / m['name']} "
                                                f"({os_reason(exc)})")))
                continue
        shutil.rmtree(folder, ignore_errors=True)
        if os.path.lexists(folder):
            notes.append((logging.WARNING, f"could not remove stale partial folder {folder} ({who})"))
        else:
            notes.append((logging.INFO, f"removed stale partial folder {folder} ({who})"))
    return notes


# --------------------------------------------------------------------------- the final rename

def _appeared(out: Path) -> OutputExistsError:
    return OutputExistsError(f"{out}: appeared during the run (created by someone else); it was left untouched "
                             f"{_NOT_SAVED}")


def _install(tmp: Path, out: Path, work: Path, old_id: tuple[int, int] | None) -> None:
    """Rename the finished temporary folder to the target, never replacing what is not ours."""
    (tmp / OWNER_FILE).unlink(missing_ok=True)
    if old_id is not None:
        try:
            st = os.lstat(work)
        except FileNotFoundError:  # the old run folder was removed meanwhile: nothing to replace
            st = None
        except OSError as exc:
            raise OutputError(f"{out}: {os_reason(exc)} {_NOT_SAVED}") from exc
        if st is not None:
            _replace_run_folder(tmp, out, work, old_id, st)
            return
    try:
        rename_noreplace(tmp, work)
    except FileExistsError:
        raise _appeared(out) from None
    except OSError as exc:
        raise OutputError(f"{out}: cannot move the run folder into place: {os_reason(exc)} {_NOT_SAVED}") from exc


def _replace_run_folder(tmp: Path, out: Path, work: Path, old_id: tuple[int, int], st: os.stat_result) -> None:
    swapped = OutputError(f"{out}: was replaced by something else during the run; it was left untouched {_NOT_SAVED}")
    if (st.st_dev, st.st_ino) != old_id or not stat.S_ISDIR(st.st_mode) or not _is_run_folder(work):
        raise swapped
    try:
        holder = Path(tempfile.mkdtemp(prefix=f".{work.name}.old-", dir=work.parent))
        _write_owner(holder, "old", work.name)
    except OSError as exc:
        raise OutputError(f"{out}: cannot move the old run folder aside: {os_reason(exc)} {_NOT_SAVED}") from exc
    aside = holder / "run"
    try:
        rename_noreplace(work, aside)
    except FileNotFoundError:  # removed in the meantime: install as new
        shutil.rmtree(holder, ignore_errors=True)
        try:
            rename_noreplace(tmp, work)
        except FileExistsError:
            raise _appeared(out) from None
        except OSError as exc:
            raise OutputError(f"{out}: cannot move the run folder into place: {os_reason(exc)} {_NOT_SAVED}") from exc
        return
    except OSError as exc:
        shutil.rmtree(holder, ignore_errors=True)
        raise OutputError(f"{out}: cannot move the old run folder aside: {os_reason(exc)} {_NOT_SAVED}") from exc
    moved = os.lstat(aside)
    if (moved.st_dev, moved.st_ino) != old_id:  # swapped between the check and the move: put it back
        try:
            rename_noreplace(aside, work)
            shutil.rmtree(holder, ignore_errors=True)
        except OSError:
            (holder / OWNER_FILE).unlink(missing_ok=True)  # never removed as stale: the user's data
            raise OutputError(f"{out}: was replaced by something else during the run; it is kept in {aside} "
                              f"{_NOT_SAVED}") from None
        raise swapped
    try:
        rename_noreplace(tmp, work)
    except OSError as exc:
        try:  # put the old run folder back
            rename_noreplace(aside, work)
            shutil.rmtree(holder, ignore_errors=True)
            kept = "the previous run folder is back in place"
        except OSError:
            (holder / OWNER_FILE).unlink(missing_ok=True)  # never removed as stale
            kept = f"the previous run folder is kept in {aside}"
        if isinstance(exc, FileExistsError):
            raise OutputExistsError(f"{out}: appeared during the run (created by someone else); it was left "
                                    f"untouched; {kept} {_NOT_SAVED}") from None
        raise OutputError(f"{out}: cannot move the run folder into place: {os_reason(exc)}; {kept} "
                          f"{_NOT_SAVED}") from exc
    shutil.rmtree(holder, ignore_errors=True)


def _git_commit() -> str | None:
    from twin.settings import project_root

    root = project_root()
    if root is None or not (root / ".git").exists():
        return None
    try:
        import subprocess

        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def check_target(scenario: Scenario, out_dir: str | Path | None = None, *, overwrite: bool = False) -> Path:
    """Check, before any work, that :func:`run_scenario` may write its run folder there.

    The same checks :func:`run_scenario` makes before it starts (see the module docs): not on a
    special filesystem; an existing target only with ``overwrite`` and only a citytwin run folder
    (not a file, a link, the working, home or root folder); the parent folder can be created and a
    probe temporary folder made in it (a read-only or full filesystem fails here). The probe, and
    any parent folder created for it, are removed again.

    Parameters
    ----------
    scenario
        The scenario (its name gives the default target ``runs/NAME``).
    out_dir
        The target folder, as it will be passed to :func:`run_scenario`.
    overwrite
        As for :func:`run_scenario`.

    Returns
    -------
    Path
        The target folder.

    Raises
    ------
    OutputExistsError
        The target exists and ``overwrite`` is False.
    OutputError
        The target cannot be written or replaced; one line naming it and the reason.
    """
    out = Path(out_dir) if out_dir is not None else default_out_dir(scenario)
    work = Path(os.path.abspath(out))
    _check_filesystem(work)
    _check_existing(out, work, overwrite)
    created = _make_parents(out, work)
    probe: Path | None = None
    try:
        probe = Path(tempfile.mkdtemp(prefix=f".{work.name}.partial-", dir=work.parent))
        _write_owner(probe, "partial", work.name)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the run folder in {work.parent}: {os_reason(exc)} "
                          "(nothing was run)") from exc
    finally:
        if probe is not None:
            shutil.rmtree(probe, ignore_errors=True)
        _remove_created(created)
    return out


def _write_text(out: Path, path: Path, text: str) -> None:
    with _writing(out, path.name):
        path.write_text(text, encoding="utf-8")


#: file stems of the core outputs (a domain's table cannot take them)
RESERVED_TABLES = frozenset({"trips", "links", "events", "iterations", "timeseries", "manifest", "kpis", "network",
                             "report", "run", "scenario"})
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def run_scenario(
    scenario: Scenario,
    out_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
    network: Any = None,
    walk_network: Any = None,
    bike_network: Any = None,
    on_network: Callable[[Any], None] | None = None,
    route_progress: Callable[[int, int], None] | None = None,
    sim_progress: Callable[[float, float], None] | None = None,
    base_dir: str | Path | None = None,
) -> RunResult:
    """Simulate a scenario and write its run folder (see the module docs for the safety rules).

    Parameters
    ----------
    scenario
        A validated scenario.
    out_dir
        Target folder (default ``runs/NAME``).
    overwrite
        Replace an existing citytwin run folder (one with its ``manifest.json``), only after the
        new run succeeded. Anything else at ``out_dir`` is refused.
    network, walk_network, bike_network
        Preloaded :class:`~twin.network.RoadNetwork` objects (else loaded from ``scenario.map``;
        sweeps load them once and share them).
    on_network, route_progress, sim_progress
        Callbacks for progress display.

    Raises
    ------
    OutputExistsError
        ``out_dir`` exists and ``overwrite`` is False (checked before any work), or it was
        created by someone else during the run (it is left untouched).
    OutputError
        ``out_dir`` cannot be replaced (a file, a link, not a run folder, the working, home or
        root folder), lies on a read-only or special filesystem, or an output cannot be written
        (no space left, ...). One line; nothing of the user's is deleted and no complete-looking
        folder is left.
    TwinError
        Bad map, etc.; no output folder is left behind.
    """
    from twin.model import CityModel, load_network

    out = Path(out_dir) if out_dir is not None else default_out_dir(scenario)
    work = Path(os.path.abspath(out))  # "." and ".." resolved lexically, for the renames
    _check_filesystem(work)
    stale = _clean_stale(work.parent) if work.parent.is_dir() else []
    old_id = _check_existing(out, work, overwrite)
    t0 = time.perf_counter()
    created = _make_parents(out, work)
    tmp: Path | None = None
    try:
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{work.name}.partial-", dir=work.parent))
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)
            _write_owner(tmp, "partial", work.name)
        except OSError as exc:
            raise OutputError(f"{out}: cannot create the run folder in {work.parent}: {os_reason(exc)} "
                              "(nothing was run)") from exc
        with _run_log(tmp / "run.log", out) as run_log:
            log.info("citytwin %s: scenario %s, seed %d", __version__, scenario.name, scenario.seed)
            for level, note in stale:
                log.log(level, note)
            t_net = time.perf_counter()
            net = network if network is not None else load_network(scenario)
            net_load_s = time.perf_counter() - t_net
            if network is not None:  # loaded by the preflight of `twin run`: its time is the network phase's
                net_load_s += float(net.meta.pop("preflight_load_s", 0.0))
            log.info("network %s: %d nodes, %d links (cache %s, %.2f s)", net.source, net.n_nodes, net.n_links,
                     net.meta.get("cache", "-"), net_load_s)
            if on_network is not None:
                on_network(net)
            model = CityModel(scenario, network=net, walk_network=walk_network, bike_network=bike_network,
                              route_progress=route_progress, base_dir=base_dir)
            model.phase_time_s["network"] = net_load_s
            if scenario.output.events:  # written while the last day runs (a hidden folder until the end)
                model.mobility.stream_events_to(tmp / "events.parquet")
            log.info("population: %d residents, %d trips planned", model.pop.n, model.trips.n)
            model.run(progress=sim_progress)
            for rec in model.iteration_records:
                log.info("iteration %d: relative gap %s, car trips %d, mean car travel time %s s",
                         rec["iteration"], rec["relative_gap"], rec["car_trips"], rec["car_travel_time_mean_s"])
            t_out = time.perf_counter()
            kpis = model.kpis()
            log.info("simulation done at t=%.0f s: %d of %d trips completed", model.sim.t_s,
                     kpis["trips_completed"], kpis["trips_total"])
            _write_text(out, tmp / "scenario.resolved.yaml", dump_scenario(scenario))
            _write_text(out, tmp / "kpis.json", json.dumps(kpis, indent=2) + "\n")
            with _writing(out, "trips.parquet"):
                write_table(model.trips_columns(), tmp / "trips.parquet")
            if scenario.output.links:
                with _writing(out, "links.parquet"):
                    write_table(model.links_columns(), tmp / "links.parquet")
            if scenario.output.events:
                with _writing(out, "events.parquet"):
                    model.mobility.write_events(tmp / "events.parquet")
            if scenario.output.geopackage:
                with _writing(out, "links.gpkg", tmp):
                    write_links_gpkg(model, tmp / "links.gpkg")
            with _writing(out, "iterations.parquet"):
                write_table(model.iterations_columns(), tmp / "iterations.parquet")
            for stem, cols in model.domain_tables().items():  # tables of the other domains
                name = f"{stem}.parquet"
                if not NAME_RE.match(stem) or (tmp / name).exists() or stem in RESERVED_TABLES:
                    raise ValueError(f"a domain's table {stem!r} is not a valid or free name")
                with _writing(out, name):
                    write_table(cols, tmp / name)
            if scenario.output.timeseries:
                df = model.datacollector.get_model_vars_dataframe()
                with _writing(out, "timeseries.parquet"):
                    write_table({c: df[c].to_numpy() for c in df.columns}, tmp / "timeseries.parquet")
            summary = net.summary()
            summary["policies"] = model.policies.summary()
            _write_text(out, tmp / "network.json", json.dumps(summary, indent=2) + "\n")
            model.phase_time_s["output"] = time.perf_counter() - t_out
            wall = time.perf_counter() - t0
            manifest = {
                "citytwin_version": __version__,
                "git_commit": _git_commit(),
                "scenario": scenario.name,
                "seed": scenario.seed,
                "python": platform.python_version(),
                "host": platform.node(),
                "wall_s": round(wall, 3),
                "phase_time_s": {k: round(v, 4) for k, v in model.phase_time_s.items()},
                "files": sorted({p.name for p in tmp.iterdir() if not p.name.startswith(".")}
                                | {"manifest.json", "run.log"}
                                | ({"report.html"} if scenario.output.report else set())),
            }
            log.info("wall %.2f s; phases %s", wall, manifest["phase_time_s"])
            if scenario.output.report:
                # the report shows the manifest: a draft first (the folder is still hidden), the final one last
                _write_text(out, tmp / "manifest.json", json.dumps(manifest, indent=2) + "\n")
                try:
                    from twin.report import write_report

                    write_report(tmp, network=net)
                except (OSError, OutputError) as exc:  # no space, read-only, ...: the run fails
                    cause = exc if isinstance(exc, OSError) else exc.__cause__
                    reason = os_reason(cause) if isinstance(cause, OSError) else str(exc)
                    raise OutputError(f"{out}: cannot write report.html: {reason} {_NOT_SAVED}") from exc
                except Exception as exc:  # noqa: BLE001  # a bug in rendering: the run is saved without the report
                    log.warning("report.html not written: %s: %s", type(exc).__name__, exc)
                    (tmp / "report.html").unlink(missing_ok=True)
        if run_log.failed is not None:
            raise OutputError(f"{out}: cannot write run.log: {os_reason(run_log.failed)} {_NOT_SAVED}")
        for p in tmp.iterdir():  # leftovers of writers (e.g. a report's temporary file), never listed
            if p.name.startswith(".") and p.name != OWNER_FILE:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
        manifest["files"] = sorted({p.name for p in tmp.iterdir() if not p.name.startswith(".")} | {"manifest.json"})
        _write_text(out, tmp / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        _install(tmp, out, work, old_id)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        _remove_created(created)
        raise
    return RunResult(out, kpis, wall, dict(model.phase_time_s), summary)
