"""Safe output files: atomic writes, refusal of special targets, one-line errors.

Every file citytwin writes for the user (``twin compare --html``, ``twin report --out``,
``twin animate --out``, ``twin assign --out``, ``twin schema --out``, run folders) goes through
the same rules:

* the data is written to a hidden temporary file in the target's folder and renamed over the
  target only when it is complete (``os.replace``), so a full disk, a kill or a crash never leaves a
  truncated file under the user's name, and no temporary file is left behind on failure;
* a target that is a folder, a FIFO, a device, a socket, or lies on a special filesystem
  (``/proc``, ``/sys``, ``/dev``) is refused;
* an :class:`OSError` (no space, read-only filesystem, permission, too long a name, a parent that
  is a file, ...) becomes an :class:`~twin._errors.OutputError` with one line naming the path and
  the reason (``os.strerror``), which the CLI prints and exits with code 2.

:func:`rename_noreplace` renames a file or folder only when the target does not exist, atomically
where the kernel offers ``renameat2(RENAME_NOREPLACE)`` (Linux); :mod:`twin.run` uses it for the
final rename of a run folder.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from twin._errors import OutputError

__all__ = ["write_output", "check_output_file", "rename_noreplace", "os_reason", "special_filesystem", "file_kind",
           "replacing"]

#: Filesystems that hold no user data: writing there is refused.
SPECIAL_FS = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "securityfs", "tracefs",
    "configfs", "fusectl", "pstore", "bpf", "mqueue", "hugetlbfs", "binfmt_misc", "autofs", "efivarfs",
    "selinuxfs", "rpc_pipefs", "nsfs",
})
_SPECIAL_PREFIXES = ("/proc", "/sys", "/dev")

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def os_reason(exc: BaseException) -> str:
    """The reason of an OS error in a few words: ``os.strerror(errno)`` or its first line."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _mounts() -> list[tuple[str, str]]:
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            rows = [line.split() for line in f]
    except OSError:
        return []
    out = []
    for r in rows:
        if len(r) >= 3:
            mp = r[1].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
            out.append((mp, r[2]))
    return out


def special_filesystem(path: str | Path) -> str | None:
    """The type of the special filesystem (``proc``, ``sysfs``, ``devtmpfs``, ...) ``path`` lies on,
    or ``None`` for an ordinary one (``/dev/shm`` and other tmpfs folders are ordinary)."""
    p = os.path.realpath(os.path.abspath(os.fspath(path)))
    mounts = _mounts()
    best, fstype = "", None
    for mp, fs in mounts:
        if (p == mp or p.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best, fstype = mp, fs
    if fstype in SPECIAL_FS:
        return fstype
    for pre in _SPECIAL_PREFIXES[:2]:  # /proc and /sys hold nothing of the user's, whatever is mounted
        if p == pre or p.startswith(pre + "/"):
            return pre.strip("/")
    if not mounts and (p == "/dev" or p.startswith("/dev/")) and not p.startswith("/dev/shm"):
        return "dev"
    return None


def file_kind(mode: int) -> str:
    """What a file is, in words, from its ``st_mode`` (``os.lstat`` for links): "a file", "a folder",
    "a symbolic link", "a FIFO (named pipe)", "a device", "a socket" or "a special file"."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (``None`` for a regular file)."""
    return None if stat.S_ISREG(mode) else file_kind(mode)


def _libc_renameat2() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _libc_renameat2()


def rename_noreplace(src: str | Path, dst: str | Path) -> None:
    """Rename ``src`` to ``dst`` only if ``dst`` does not exist (file, folder, link, even empty).

    Uses ``renameat2(RENAME_NOREPLACE)`` where libc and the filesystem have it (Linux 3.15+,
    glibc 2.28+): atomic, so a folder created at ``dst`` by someone else at any moment is never
    replaced. Elsewhere it checks then renames; only that fallback is racy (a folder created
    between the check and the rename could be replaced if it is empty).

    Raises
    ------
    FileExistsError
        ``dst`` exists.
    OSError
        Any other failure of the rename.
    """
    s, d = os.fsencode(os.fspath(src)), os.fsencode(os.fspath(dst))
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, s, _AT_FDCWD, d, _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise FileExistsError(code, os.strerror(code), os.fsdecode(d))
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), os.fsdecode(s), None, os.fsdecode(d))
    # fallback (no renameat2, or a filesystem without RENAME_NOREPLACE): check, then rename (racy)
    if os.path.lexists(d):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(d))
    os.rename(s, d)


def _check_target(path: Path, what: str) -> Path:
    """The file to write (a symlink's target); refuses folders, special files and filesystems."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write {what}: {os_reason(exc)}") from exc
    target = path
    if st is not None and stat.S_ISLNK(st.st_mode):
        target = Path(os.path.realpath(path))
        try:
            st = os.stat(target)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise OutputError(f"{path}: cannot write {what}: {os_reason(exc)}") from exc
    if st is not None:
        kind = _kind(st.st_mode)
        if kind is not None:
            hint = "; give a file name" if kind == "a folder" else ""
            raise OutputError(f"{path}: cannot write {what}: it is {kind}, not a regular file{hint}")
    fs = special_filesystem(target.parent)
    if fs is not None:
        raise OutputError(f"{path}: cannot write {what}: {target.parent} is on the special filesystem {fs}")
    return target


def check_output_file(path: str | Path, *, what: str = "output") -> None:
    """Check, without writing anything, that :func:`write_output` could write ``path``.

    Parameters
    ----------
    path
        The file to be written.
    what
        What the file is, for the message (``"report"``, ``"flows"``, ...).

    Raises
    ------
    OutputError
        ``path`` is a folder, a FIFO, a device, a socket or on a special filesystem; its nearest
        existing ancestor folder is not a folder, not writable or on a read-only filesystem; or
        its name is too long. One line naming the path and the reason.
    """
    path = Path(path)
    target = _check_target(path, what)
    parent = target.parent if str(target.parent) else Path(".")
    anc = parent
    while not os.path.lexists(anc) and anc != anc.parent:
        anc = anc.parent
    try:
        st = os.stat(anc)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write {what}: {anc}: {os_reason(exc)}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{path}: cannot write {what}: {anc} is not a folder ({os.strerror(errno.ENOTDIR)})")
    try:
        ro = bool(os.statvfs(anc).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        ro = False
    if ro:
        raise OutputError(f"{path}: cannot write {what}: {os.strerror(errno.EROFS)}")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot write {what}: {os.strerror(errno.EACCES)}")
    try:
        name_max = os.pathconf(anc, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        name_max = 255
    rel = target.relative_to(anc) if target.is_relative_to(anc) else Path(target.name)
    if any(len(os.fsencode(part)) > name_max for part in rel.parts):
        raise OutputError(f"{path}: cannot write {what}: {os.strerror(errno.ENAMETOOLONG)}")


@contextmanager
def replacing(target: str | Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A hidden temporary file beside ``target`` to write to; renamed over ``target`` (``os.replace``)
    when the block ends without an exception, removed otherwise. Creates the parent folder. For
    writers that want a path (``np.savez``, ``osmnx.save_graphml``); :func:`write_output` is the
    same with data in memory, plus the checks and the one-line error."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_output(path: str | Path, data: str | bytes, *, what: str = "output", replace: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically, or fail with one line.

    The data goes to a hidden temporary file in the same folder (created with the parents it
    needs), is flushed to disk, then renamed over ``path`` with ``os.replace``: readers see the old
    file or the complete new one, never a truncated file. A symbolic link is followed (its target
    is replaced, the link stays).

    Parameters
    ----------
    path
        The file to write.
    data
        The content; ``str`` is written as UTF-8.
    what
        What the file is, for the message (``"report"``, ``"flows"``, ...).
    replace
        Replace an existing ``path`` (default); ``False``: refuse it, atomically (the rename never
        replaces a file that appeared meanwhile).

    Returns
    -------
    Path
        The file written (``path``, or the target of the link ``path``).

    Raises
    ------
    OutputError
        ``path`` is a folder, a FIFO, a device, a socket or on a special filesystem, or an
        :class:`OSError` occurred (no space left, read-only filesystem, permission denied, name
        too long, a parent that is a file, ...). One line naming the path and the reason; no
        temporary file is left behind and an existing ``path`` is unchanged.
    """
    path = Path(path)
    target = _check_target(path, what)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    parent = target.parent if str(target.parent) else Path(".")
    tmp: str | None = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=".tmp", dir=parent)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if replace:
            os.replace(tmp, target)
        else:
            try:
                rename_noreplace(tmp, target)
            except FileExistsError:
                raise OutputError(f"{path}: exists; not overwriting it") from None
        tmp = None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write {what}: {os_reason(exc)}") from exc
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return target
