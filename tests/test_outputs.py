"""No data ever lost: what ``run_scenario`` / ``twin run`` may replace, atomic writes, one-line
output errors (full or read-only disk), stale partial folders, atomic caches, byte-identical
outputs, and the ``twin._fs`` helpers."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin._errors import OutputError, OutputExistsError
from twin._fs import check_output_file, rename_noreplace, write_output
from twin.cli import app
from twin.model import load_network
from twin.run import GPKG_DATE, OWNER_FILE, run_scenario
from twin.scenario import scenario_from_dict

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

SMALL = """
name: small
seed: 3
map: {source: helsinki}
population: {residents: 150}
modes: {available: [car]}
simulation: {start_s: "05:00", end_s: "28:00", record_interval_s: 600}
output: {report: false}
"""


def small(**over):
    base = {"name": "t", "seed": 5, "population": {"residents": 150}, "modes": {"available": ["car"]},
            "simulation": {"start_s": "05:00", "end_s": "28:00", "record_interval_s": 600},
            "output": {"report": False}}
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) else v
    return scenario_from_dict(base)


@pytest.fixture(scope="module")
def net():
    return load_network(small())


def one_line_error(code: int, out: str, *needles: str) -> str:
    assert code == 2, out
    assert "Traceback" not in out, out
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, out
    assert lines[0].startswith("error:"), out
    for n in needles:
        assert n in out, (n, out)
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (relative path → content)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def make_run_folder(path: Path) -> None:
    """A folder that looks like a citytwin run folder (manifest with citytwin_version)."""
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"citytwin_version": "0.1.0", "files": ["manifest.json"]}))
    (path / "kpis.json").write_text("{}")


def no_work(*args):
    raise AssertionError("the run started simulation work although its output was refused")


# --------------------------------------------------------------------------- tmpfs mounts

@pytest.fixture
def mount_tmpfs(tmp_path):
    """``mount_tmpfs(name, size="200k", ro=False)`` → a fresh tmpfs folder (root only; skip otherwise)."""
    mounted: list[Path] = []

    def mount(name: str, size: str = "200k", ro: bool = False) -> Path:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        d = tmp_path / name
        d.mkdir()
        opts = f"size={size}" + (",ro" if ro else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(d)
        return d

    yield mount
    for d in reversed(mounted):
        if subprocess.run(["umount", str(d)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill(folder: Path, leave: int) -> None:
    """Fill the filesystem of ``folder`` until about ``leave`` bytes are free."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    with open(folder / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


# --------------------------------------------------------------------------- --overwrite refusals

@pytest.mark.parametrize("manifest", [None, "{not json", '{"name": "my notes"}', '["citytwin_version"]'])
def test_overwrite_refuses_a_folder_of_user_files(tmp_path, net, manifest):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    (out / "data").mkdir()
    (out / "data" / "survey.csv").write_text("a,b\n1,2\n")
    if manifest is not None:
        (out / "manifest.json").write_text(manifest)
    before = snapshot(out)
    with pytest.raises(OutputError) as ei:
        run_scenario(small(), out, overwrite=True, network=net, on_network=no_work)
    msg = str(ei.value)
    assert "\n" not in msg and str(out) in msg and "not a citytwin run folder" in msg
    assert snapshot(out) == before
    assert hidden(tmp_path) == []


@pytest.mark.parametrize("kind", ["file", "fifo", "symlink"])
def test_overwrite_refuses_a_file(tmp_path, net, kind):
    out = tmp_path / "target"
    if kind == "file":
        out.write_text("precious")
    elif kind == "fifo":
        os.mkfifo(out)
    else:
        make_run_folder(tmp_path / "real")
        out.symlink_to(tmp_path / "real")
    with pytest.raises(OutputError) as ei:
        run_scenario(small(), out, overwrite=True, network=net, on_network=no_work)
    msg = str(ei.value)
    assert "\n" not in msg and str(out) in msg and "not a run folder" in msg
    assert os.path.lexists(out)
    if kind == "file":
        assert out.read_text() == "precious"
    if kind == "symlink":
        assert out.is_symlink() and (tmp_path / "real" / "manifest.json").exists()
    with pytest.raises(OutputExistsError):  # without --overwrite: exists, as before
        run_scenario(small(), out, network=net, on_network=no_work)
    assert hidden(tmp_path) == []


@pytest.mark.parametrize("where", ["cwd", "parent_of_cwd", "home"])
def test_overwrite_refuses_working_parent_and_home_folders(tmp_path, net, monkeypatch, where):
    # the protected folder even looks like a run folder: only the location rule can refuse it
    target = tmp_path / "proj"
    make_run_folder(target)
    (target / "src").mkdir()
    (target / "src" / "code.py").write_text("print('mine')")
    if where == "cwd":
        monkeypatch.chdir(target)
    elif where == "parent_of_cwd":
        monkeypatch.chdir(target / "src")
    else:
        monkeypatch.setenv("HOME", str(target))
    before = snapshot(target)
    with pytest.raises(OutputError) as ei:
        run_scenario(small(), target.resolve(), overwrite=True, network=net, on_network=no_work)
    msg = str(ei.value)
    assert "\n" not in msg and str(target.resolve()) in msg
    assert {"cwd": "current working folder", "parent_of_cwd": "parent of the current working folder",
            "home": "home folder"}[where] in msg
    assert snapshot(target) == before
    assert hidden(tmp_path) == []


def test_overwrite_refuses_root(net):
    with pytest.raises(OutputError, match="root folder"):
        run_scenario(small(), Path("/"), overwrite=True, network=net, on_network=no_work)


def test_cli_overwrite_user_folder_is_one_line(tmp_path, monkeypatch):
    f = tmp_path / "s.yaml"
    f.write_text(SMALL)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    res = runner.invoke(app, ["run", str(f), "--out", str(out), "--overwrite", "-q"])
    one_line_error(res.exit_code, res.output, str(out), "not a citytwin run folder")
    assert (out / "notes.txt").read_text() == "keep me"
    monkeypatch.chdir(out)  # the working folder itself, by its absolute path
    res = runner.invoke(app, ["run", str(f), "--out", str(out), "--overwrite", "-q"])
    one_line_error(res.exit_code, res.output, "current working folder")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_overwrite_replaces_a_run_folder(tmp_path, net):
    out = tmp_path / "run"
    r1 = run_scenario(small(), out, network=net)
    first = (out / "trips.parquet").read_bytes()
    r2 = run_scenario(small(seed=6), out, overwrite=True, network=net)
    assert r2.out_dir == out and (out / "trips.parquet").read_bytes() != first
    assert "seed: 6" in (out / "scenario.resolved.yaml").read_text()
    man = json.loads((out / "manifest.json").read_text())
    assert man["files"] == sorted(p.name for p in out.iterdir())  # only files that exist, all of them
    assert OWNER_FILE not in man["files"] and not (out / OWNER_FILE).exists()
    assert hidden(tmp_path) == [] and r1.kpis["residents"] == 150


# --------------------------------------------------------------------------- check and rename agree

@pytest.mark.parametrize("content", ["empty", "files"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_folder_created_during_the_run_survives(tmp_path, net, content, overwrite):
    out = tmp_path / "out"

    def user_creates_it(_net):
        out.mkdir()
        if content == "files":
            (out / "photo.jpg").write_bytes(b"\xff\xd8 holiday")

    with pytest.raises(OutputExistsError) as ei:
        run_scenario(small(), out, overwrite=overwrite, network=net, on_network=user_creates_it)
    assert "appeared during the run" in str(ei.value) and "\n" not in str(ei.value)
    assert out.is_dir()
    assert [p.name for p in out.iterdir()] == ([] if content == "empty" else ["photo.jpg"])
    if content == "files":
        assert (out / "photo.jpg").read_bytes() == b"\xff\xd8 holiday"
    assert hidden(tmp_path) == []  # the temporary folder is gone


def test_run_folder_swapped_during_overwrite_is_kept(tmp_path, net):
    out = tmp_path / "out"
    run_scenario(small(), out, network=net)
    old = snapshot(out)

    def swap(_net):
        out.rename(tmp_path / "moved")
        out.mkdir()
        (out / "mine.txt").write_text("not a run")

    with pytest.raises(OutputError, match="replaced by something else"):
        run_scenario(small(seed=9), out, overwrite=True, network=net, on_network=swap)
    assert snapshot(out) == {"mine.txt": b"not a run"}
    assert snapshot(tmp_path / "moved") == old
    assert hidden(tmp_path) == []


@pytest.mark.parametrize("fallback", [False, True])
def test_rename_noreplace_never_replaces_an_empty_folder(tmp_path, monkeypatch, fallback):
    if fallback:
        monkeypatch.setattr("twin._fs._renameat2", None)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a").write_text("new")
    dst.mkdir()  # os.rename(src, dst) would silently replace it
    with pytest.raises(FileExistsError):
        rename_noreplace(src, dst)
    assert (src / "a").exists() and list(dst.iterdir()) == []
    dst.rmdir()
    rename_noreplace(src, dst)
    assert (dst / "a").read_text() == "new" and not src.exists()


def test_rename_noreplace_is_atomic_where_renameat2_exists(tmp_path, monkeypatch):
    import twin._fs

    if twin._fs._renameat2 is None:
        pytest.skip("no renameat2 in this libc")
    # the race: the folder appears after any check could have been made
    monkeypatch.setattr(twin._fs.os.path, "lexists", lambda p: False)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    with pytest.raises(FileExistsError):
        rename_noreplace(src, dst)
    assert src.is_dir() and dst.is_dir()


# --------------------------------------------------------------------------- full / read-only / special filesystems

@pytest.mark.parametrize("case", ["parent_is_a_file", "name_too_long"])
def test_unwritable_targets_fail_before_any_work(tmp_path, net, case):
    if case == "parent_is_a_file":
        (tmp_path / "file").write_text("x")
        out, reason = tmp_path / "file" / "run", "Not a directory"
    else:
        out, reason = tmp_path / ("n" * 250), "File name too long"  # the .NAME.partial-XXXX name is too long
    with pytest.raises(OutputError) as ei:
        run_scenario(small(), out, network=net, on_network=no_work)
    assert str(out) in str(ei.value) and reason in str(ei.value) and "\n" not in str(ei.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["file"] if case == "parent_is_a_file" else [])


def test_full_filesystem_is_one_line_and_saves_nothing(tmp_path, mount_tmpfs):
    f = tmp_path / "s.yaml"
    f.write_text(SMALL)
    disk = mount_tmpfs("full", size="400k")
    fill(disk, leave=48 * 1024)
    out = disk / "runs" / "x"
    res = runner.invoke(app, ["run", str(f), "--out", str(out), "-q"])
    line = one_line_error(res.exit_code, res.output, str(out), "No space left on device", "the run was not saved")
    assert "cannot write" in line
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no run folder, no partial, no runs/


def test_read_only_filesystem_fails_before_any_work(tmp_path, mount_tmpfs, monkeypatch):
    import twin.model

    f = tmp_path / "s.yaml"
    f.write_text(SMALL)
    disk = mount_tmpfs("ro", ro=True)
    monkeypatch.setattr(twin.model.CityModel, "__init__", no_work)
    for out in (disk / "x", disk / "runs" / "x"):
        res = runner.invoke(app, ["run", str(f), "--out", str(out), "-q"])
        one_line_error(res.exit_code, res.output, str(out), "Read-only file system")
    assert list(disk.iterdir()) == []


@pytest.mark.parametrize("where", ["/proc", "/sys", "/dev"])
def test_special_filesystems_are_refused(tmp_path, net, where):
    if not Path(where).is_dir():
        pytest.skip(f"no {where} here")
    out = Path(where) / f"citytwin-test-{os.getpid()}"
    with pytest.raises(OutputError, match="special filesystem"):
        run_scenario(small(), out, network=net, on_network=no_work)
    assert not os.path.lexists(out)
    assert not any(p.name.startswith(f".{out.name}.") for p in Path(where).iterdir())


def test_check_target_checks_without_leaving_anything(tmp_path, net, mount_tmpfs):
    from twin.run import check_target

    sc = small()
    assert check_target(sc, tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert list(tmp_path.iterdir()) == []  # neither the parent nor the probe is left
    (tmp_path / "mine").mkdir()
    with pytest.raises(OutputExistsError):
        check_target(sc, tmp_path / "mine")
    with pytest.raises(OutputError, match="not a citytwin run folder"):
        check_target(sc, tmp_path / "mine", overwrite=True)
    make_run_folder(tmp_path / "old")
    check_target(sc, tmp_path / "old", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "old"]
    disk = mount_tmpfs("ro", ro=True)
    with pytest.raises(OutputError, match="Read-only file system"):
        check_target(sc, disk / "runs" / "x")


def test_write_error_is_one_line_and_leaves_nothing(tmp_path, net, monkeypatch):
    import twin.run

    def enospc(columns, path):
        Path(path).write_bytes(b"PAR1 trunc")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(twin.run, "write_table", enospc)
    out = tmp_path / "runs" / "x"
    with pytest.raises(OutputError) as ei:
        run_scenario(small(), out, network=net)
    assert str(ei.value) == f"{out}: cannot write trips.parquet: No space left on device (the run was not saved)"
    assert not (tmp_path / "runs").exists()


def test_report_oserror_fails_the_run_and_a_report_bug_does_not(tmp_path, net, monkeypatch):
    import twin.report

    def eacces(run_dir, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", str(Path(run_dir) / "report.html"))

    def enospc(run_dir, **kw):  # what twin._fs.write_output raises
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise OutputError(f"{run_dir}/report.html: cannot write report: No space left on device") from exc

    out = tmp_path / "a"
    for fail, reason in ((eacces, "Permission denied"), (enospc, "No space left on device")):
        monkeypatch.setattr(twin.report, "write_report", fail)
        with pytest.raises(OutputError) as ei:
            run_scenario(small(output={"report": True}), out, network=net)
        assert str(ei.value) == f"{out}: cannot write report.html: {reason} (the run was not saved)"
        assert not out.exists() and hidden(tmp_path) == []

    def bug(run_dir, **kw):
        assert (Path(run_dir) / "manifest.json").exists()  # the report can show the (draft) manifest
        (Path(run_dir) / ".report.html.tmp").write_text("<html>half")
        raise ZeroDivisionError("a bug in a section")

    monkeypatch.setattr(twin.report, "write_report", bug)
    r = run_scenario(small(output={"report": True}), out, network=net)
    man = json.loads((out / "manifest.json").read_text())
    assert "report.html" not in man["files"] and not (r.out_dir / "report.html").exists()
    assert man["files"] == sorted(p.name for p in out.iterdir())
    assert "report.html not written" in (out / "run.log").read_text()


# --------------------------------------------------------------------------- byte-identical outputs

def test_identical_runs_give_identical_files(tmp_path, net):
    sc = small(output={"geopackage": True, "events": True, "timeseries": True})
    a = run_scenario(sc, tmp_path / "a", network=net).out_dir
    b = run_scenario(sc, tmp_path / "b", network=net).out_dir
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and "links.gpkg" in names
    for name in names:
        if name in ("manifest.json", "run.log"):
            continue
        assert (hashlib.sha256((a / name).read_bytes()).digest()
                == hashlib.sha256((b / name).read_bytes()).digest()), name
    import pyogrio

    assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") is None  # restored after writing
    with sqlite3.connect(a / "links.gpkg") as con:
        assert {r[0] for r in con.execute("SELECT last_change FROM gpkg_contents")} == {GPKG_DATE}
    import geopandas as gpd

    g = gpd.read_file(a / "links.gpkg", layer="links")
    assert len(g) == net.n_links and g["volume_day_veh"].sum() > 0


# --------------------------------------------------------------------------- stale partial folders

def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def owner(pid: int, target: str, kind: str = "partial") -> str:
    return json.dumps({"citytwin_version": "0.1.0", "kind": kind, "target": target, "pid": pid,
                       "host": platform.node(), "started": "2024-01-01T00:00:00+00:00"})


def test_stale_partial_folders_are_removed_unowned_ones_kept(tmp_path, net):
    pid = dead_pid()
    dead = tmp_path / ".x.partial-abc123"
    dead.mkdir()
    (dead / OWNER_FILE).write_text(owner(pid, "x"))
    (dead / "trips.parquet").write_bytes(b"half")
    unowned = tmp_path / ".y.partial-def456"
    unowned.mkdir()
    (unowned / "data.bin").write_bytes(b"who knows")
    alive = tmp_path / ".z.partial-ghi789"
    alive.mkdir()
    (alive / OWNER_FILE).write_text(owner(os.getpid(), "z"))
    foreign = tmp_path / ".w.partial-jkl012"
    foreign.mkdir()
    (foreign / OWNER_FILE).write_text(json.dumps({"pid": pid, "host": platform.node()}))
    interrupted = tmp_path / ".prev.old-mno345"  # killed between moving prev aside and the new one in
    make_run_folder(interrupted / "run")
    (interrupted / OWNER_FILE).write_text(owner(pid, "prev", "old"))

    r = run_scenario(small(), tmp_path / "x", network=net)
    assert not dead.exists() and not interrupted.exists()
    assert unowned.exists() and (unowned / "data.bin").exists() and alive.exists() and foreign.exists()
    assert (tmp_path / "prev" / "manifest.json").exists()  # the previous run is back
    text = (r.out_dir / "run.log").read_text()
    assert f"removed stale partial folder {dead}" in text
    assert f"kept partial folder {unowned}" in text and f"kept partial folder {foreign}" in text
    assert f"restored run folder {tmp_path / 'prev'}" in text
    assert str(alive) not in text


def test_a_killed_run_is_cleaned_by_the_next(tmp_path, net):
    out = tmp_path / "runs" / "k"
    script = textwrap.dedent(f"""
        import os, signal
        from twin.run import run_scenario
        from twin.scenario import scenario_from_dict
        sc = scenario_from_dict({{"name": "k", "population": {{"residents": 20}}, "modes": {{"available": ["car"]}}}})
        run_scenario(sc, {str(out)!r}, on_network=lambda net: os.kill(os.getpid(), signal.SIGKILL))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -9, err
    left = [p for p in out.parent.iterdir() if p.name.startswith(".k.partial-")]
    assert len(left) == 1 and json.loads((left[0] / OWNER_FILE).read_text())["pid"] == proc.pid
    assert not out.exists()
    r = run_scenario(small(), out, network=net)
    assert hidden(out.parent) == []
    assert f"removed stale partial folder {left[0]}" in (r.out_dir / "run.log").read_text()


# --------------------------------------------------------------------------- caches

def _cache_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def test_full_cache_disk_leaves_no_cache_file_and_the_run_succeeds(tmp_path, mount_tmpfs, monkeypatch):
    cache = mount_tmpfs("cache", size="16k")
    monkeypatch.setenv("TWIN_CACHE_DIR", str(cache))
    r = run_scenario(small(), tmp_path / "run")
    assert r.kpis["trips_completed"] > 0
    log = (r.out_dir / "run.log").read_text()
    assert "network cache" in log and "not written" in log
    assert _cache_files(cache) == []  # neither a truncated .npz nor a temporary file


def test_failed_cache_write_is_removed_and_only_warned(tmp_path, monkeypatch, caplog):
    import numpy as np

    from twin.network import RoadNetwork

    cache = tmp_path / "cache"
    monkeypatch.setenv("TWIN_CACHE_DIR", str(cache))
    real = np.savez

    def savez_enospc(f, **arrays):
        real(f, **arrays)  # most of the bytes are out, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", savez_enospc)
    with caplog.at_level("WARNING", logger="twin"):
        n1 = RoadNetwork.load("helsinki")
    assert n1.meta["cache"] == "miss" and "No space left on device" in caplog.text
    assert _cache_files(cache) == []
    monkeypatch.setattr(np, "savez", real)
    n2 = RoadNetwork.load("helsinki")  # written now, then read
    assert [p.endswith(".npz") and not Path(p).name.startswith(".") for p in _cache_files(cache)] == [True]
    n3 = RoadNetwork.load("helsinki")
    assert n2.meta["cache"] == "miss" and n3.meta["cache"] == "hit" and n3.n_links == n1.n_links


# --------------------------------------------------------------------------- twin._fs

def test_write_output_is_atomic_and_refuses_special_targets(tmp_path):
    p = write_output(tmp_path / "sub" / "a.html", "<p>é</p>", what="report")
    assert p.read_text(encoding="utf-8") == "<p>é</p>"
    write_output(p, b"v2")
    assert p.read_bytes() == b"v2" and sorted(x.name for x in p.parent.iterdir()) == ["a.html"]
    with pytest.raises(OutputError, match="is a folder"):
        write_output(tmp_path / "sub", "x")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="FIFO"):
        write_output(fifo, "x")  # would block forever if opened
    with pytest.raises(OutputError, match="device"):
        write_output(Path("/dev/null"), "x")
    with pytest.raises(OutputError, match="Not a directory"):
        write_output(p / "below-a-file.txt", "x")
    for bad in (tmp_path / "sub", fifo, Path("/dev/null"), p / "x.txt"):
        with pytest.raises(OutputError):
            check_output_file(bad)
    check_output_file(tmp_path / "new" / "deeper" / "f.json")
    assert not (tmp_path / "new").exists()  # the check creates nothing
    with pytest.raises(OutputError, match="too long"):
        check_output_file(tmp_path / ("n" * 300))


def test_write_output_maps_enospc_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "flows.parquet"
    target.write_bytes(b"old")

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("twin._fs.os.replace", full)
    with pytest.raises(OutputError) as ei:
        write_output(target, b"new" * 1000, what="flows")
    assert str(ei.value) == f"{target}: cannot write flows: No space left on device"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["flows.parquet"] and target.read_bytes() == b"old"


def test_write_output_on_a_full_tmpfs(mount_tmpfs):
    disk = mount_tmpfs("small", size="64k")
    (disk / "keep.txt").write_text("old")
    with pytest.raises(OutputError, match="No space left on device"):
        write_output(disk / "keep.txt", b"x" * 200_000)
    assert sorted(x.name for x in disk.iterdir()) == ["keep.txt"] and (disk / "keep.txt").read_text() == "old"
