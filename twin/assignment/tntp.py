"""Readers for the TransportationNetworks TNTP text format.

The TNTP format (https://github.com/bstabler/TransportationNetworks) stores a
static traffic-assignment instance in plain text files:

``*_net.tntp``
    Metadata tags (``<NUMBER OF ZONES> 24``, ``<FIRST THRU NODE> 1``, ...,
    ``<END OF METADATA>``), then one link per line: init node, term node,
    capacity, length, free-flow time, B, power, speed, toll, link type,
    usually followed by ``;``. Some networks also carry ``<TOLL FACTOR>`` and
    ``<DISTANCE FACTOR>``: the TNTP link generalized cost is
    ``travel time + toll_factor * toll + distance_factor * length`` (see
    :mod:`twin.assignment.static_ue`); both are 0 when the tags are absent.
``*_trips.tntp``
    Metadata, then ``Origin N`` blocks with ``dest : value;`` entries, several
    per line.
``*_flow.tntp``
    Best-known solutions: a ``From To Volume Cost`` header, then one link per
    line.

Conventions used by every reader here:

* Nodes are numbered from 1 in the files and from 0 in the returned arrays.
  Zones are the nodes ``1 .. n_zones`` (0-based: ``0 .. n_zones - 1``).
* ``~`` starts a comment that runs to the end of the line; lines that start
  with ``<`` are metadata tags, wherever they appear; blank lines are ignored.
* Fields may be separated by tabs or spaces; a trailing ``;`` is optional;
  Windows (``\\r\\n``) line endings are accepted.
* Malformed input raises :class:`ValueError` whose message starts with
  ``"<file>:<line>: "``.

Units are whatever the file uses (often: free-flow time in minutes or 0.01 h,
capacity in vehicles per hour, demand in vehicles per hour); the readers never
convert them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

__all__ = [
    "TntpNetwork",
    "TntpFlow",
    "read_tntp_net",
    "read_tntp_trips",
    "read_tntp_flow",
    "parse_tntp_net",
    "parse_tntp_trips",
    "parse_tntp_flow",
]

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_META_RE = re.compile(r"^<([^>]*)>(.*)$")
_ORIGIN_RE = re.compile(r"\s*Origin\s+(\d+)", re.IGNORECASE)
_ENTRY_RE = re.compile(r"\s*(\d+)\s*:\s*(" + _NUM + r")\s*;?")
_N_NET_COLS = 10


@dataclass
class TntpNetwork:
    """A TNTP network: per-link numpy arrays plus the file's metadata.

    Attributes
    ----------
    init_node, term_node : ndarray of int32, shape (n_links,)
        Tail and head node of each link, **0-based** (file id - 1).
    capacity : ndarray of float64
        Link capacity (file units, usually veh/h).
    length : ndarray of float64
        Link length (file units).
    free_flow_time : ndarray of float64
        Free-flow travel time (file units).
    b, power : ndarray of float64
        BPR parameters: ``t = free_flow_time * (1 + b * (x / capacity) ** power)``.
    speed, toll : ndarray of float64
        Speed limit and toll (file units). The speed is never used; the toll
        enters the generalized cost with ``toll_factor``.
    link_type : ndarray of int64
        Link type code.
    n_zones, n_nodes, n_links : int
        Dimensions. Zones are nodes ``0 .. n_zones - 1`` (0-based).
    first_thru_node : int
        **1-based**, as in the file: nodes with a 1-based id below this value
        (zones, usually centroids) may start or end a path but are never passed
        through. ``1`` means no restriction.
    metadata : dict of str to str
        Every metadata tag of the file (upper-case tag without brackets ->
        raw value).
    source : str
        The file the network was read from (``"<string>"`` if parsed from text).
    toll_factor, distance_factor : float
        The file's ``<TOLL FACTOR>`` and ``<DISTANCE FACTOR>`` (0 when the tag is
        absent): weights of ``toll`` and ``length`` in the generalized link cost
        ``t(x) + toll_factor * toll + distance_factor * length``, in units of
        the free-flow time per unit of toll or length. They are the defaults of
        :func:`~twin.assignment.static_ue.solve_ue`.
    """

    init_node: npt.NDArray[np.int32]
    term_node: npt.NDArray[np.int32]
    capacity: npt.NDArray[np.float64]
    length: npt.NDArray[np.float64]
    free_flow_time: npt.NDArray[np.float64]
    b: npt.NDArray[np.float64]
    power: npt.NDArray[np.float64]
    speed: npt.NDArray[np.float64]
    toll: npt.NDArray[np.float64]
    link_type: npt.NDArray[np.int64]
    n_zones: int
    n_nodes: int
    n_links: int
    first_thru_node: int = 1
    metadata: dict[str, str] = field(default_factory=dict)
    source: str = "<string>"
    toll_factor: float = 0.0
    distance_factor: float = 0.0

    @classmethod
    def from_links(
        cls,
        init_node: npt.ArrayLike,
        term_node: npt.ArrayLike,
        free_flow_time: npt.ArrayLike,
        capacity: npt.ArrayLike,
        *,
        b: npt.ArrayLike = 0.15,
        power: npt.ArrayLike = 4.0,
        n_zones: int,
        n_nodes: int | None = None,
        first_thru_node: int = 1,
        length: npt.ArrayLike | None = None,
        toll: npt.ArrayLike | None = None,
        toll_factor: float = 0.0,
        distance_factor: float = 0.0,
    ) -> TntpNetwork:
        """Build a network from link arrays (0-based nodes), e.g. for tests.

        Parameters
        ----------
        init_node, term_node : array_like of int
            0-based tail and head nodes.
        free_flow_time, capacity : array_like of float
            Per-link free-flow time and capacity.
        b, power : float or array_like, optional
            BPR parameters (scalars are broadcast).
        n_zones : int
            Number of zones (nodes ``0 .. n_zones - 1``).
        n_nodes : int, optional
            Number of nodes (default: largest node id + 1).
        first_thru_node : int, optional
            1-based first node that may be passed through (default 1: all).
        length : array_like of float, optional
            Link lengths (default: the free-flow times, as in many TNTP files).
        toll : array_like of float, optional
            Link tolls (default 0).
        toll_factor, distance_factor : float, optional
            Generalized-cost weights of ``toll`` and ``length`` (default 0, as
            a file without ``<TOLL FACTOR>`` / ``<DISTANCE FACTOR>``); checked
            by :func:`~twin.assignment.static_ue.solve_ue`.

        Returns
        -------
        TntpNetwork
        """
        tail = np.asarray(init_node, dtype=np.int32)
        head = np.asarray(term_node, dtype=np.int32)
        n = tail.shape[0]
        fft = np.asarray(free_flow_time, dtype=np.float64).reshape(n)

        def full(v: npt.ArrayLike) -> npt.NDArray[np.float64]:
            return np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy()

        if n_nodes is None:
            n_nodes = int(max(tail.max(initial=-1), head.max(initial=-1))) + 1
        return cls(
            init_node=tail,
            term_node=head,
            capacity=full(capacity),
            length=fft.copy() if length is None else full(length),
            free_flow_time=fft.copy(),
            b=full(b),
            power=full(power),
            speed=np.zeros(n),
            toll=np.zeros(n) if toll is None else full(toll),
            link_type=np.ones(n, dtype=np.int64),
            n_zones=int(n_zones),
            n_nodes=int(n_nodes),
            n_links=int(n),
            first_thru_node=int(first_thru_node),
            toll_factor=toll_factor,
            distance_factor=distance_factor,
        )


@dataclass
class TntpFlow:
    """A TNTP flow (solution) file.

    Attributes
    ----------
    init_node, term_node : ndarray of int32
        0-based tail and head node of each row.
    volume : ndarray of float64
        Link flow.
    cost : ndarray of float64
        Link travel time at that flow.
    source : str
        The file read.
    """

    init_node: npt.NDArray[np.int32]
    term_node: npt.NDArray[np.int32]
    volume: npt.NDArray[np.float64]
    cost: npt.NDArray[np.float64]
    source: str = "<string>"


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, content)`` with comments and surrounding blanks removed."""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("<"):
            yield lineno, line  # metadata: keep '~' (e.g. <ORIGINAL HEADER>~ ...)
            continue
        cut = line.find("~")
        if cut >= 0:
            line = line[:cut].strip()
        if line:
            yield lineno, line


def _meta(line: str) -> tuple[str, str] | None:
    m = _META_RE.match(line)
    if m is None:
        return None
    return m.group(1).strip().upper(), m.group(2).strip()


@overload
def _meta_int(meta: dict[str, str], tag: str, source: str, lines_of: dict[str, int], *, required: Literal[True],
              default: None = None) -> int: ...
@overload
def _meta_int(meta: dict[str, str], tag: str, source: str, lines_of: dict[str, int], *, required: bool,
              default: int) -> int: ...
@overload
def _meta_int(meta: dict[str, str], tag: str, source: str, lines_of: dict[str, int], *, required: bool,
              default: None = None) -> int | None: ...
def _meta_int(meta: dict[str, str], tag: str, source: str, lines_of: dict[str, int], *, required: bool,
              default: int | None = None) -> int | None:
    if tag not in meta:
        if required:
            raise ValueError(f"{source}: missing metadata tag <{tag}>")
        return default
    raw = meta[tag]
    try:
        val = float(raw.split()[0].rstrip(";"))
    except (ValueError, IndexError):
        raise ValueError(
            f"{source}:{lines_of[tag]}: <{tag}> must be an integer, got {raw!r}"
        ) from None
    if val != int(val) or val < 0:
        raise ValueError(
            f"{source}:{lines_of[tag]}: <{tag}> must be a non-negative integer, got {raw!r}"
        )
    return int(val)


def _meta_factor(meta: dict[str, str], tag: str, source: str, lines_of: dict[str, int]) -> float:
    """A generalized-cost factor tag: a finite number >= 0, default 0 when absent."""
    if tag not in meta:
        return 0.0
    raw = meta[tag]
    try:
        val = float(raw.split()[0].rstrip(";"))
    except (ValueError, IndexError):
        raise ValueError(
            f"{source}:{lines_of[tag]}: <{tag}> must be a number, got {raw!r}"
        ) from None
    if not (np.isfinite(val) and val >= 0):
        raise ValueError(
            f"{source}:{lines_of[tag]}: <{tag}> must be a finite number >= 0, got {raw!r}"
        )
    return val


def _fields(line: str) -> list[str]:
    line = line.strip()
    if line.endswith(";"):
        line = line[:-1]
    return line.split()


def _read(path: str | Path) -> tuple[str, str]:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig", errors="replace"), str(path)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read TNTP file ({exc.strerror or exc})") from None


def parse_tntp_net(text: str, source: str = "<string>") -> TntpNetwork:
    """Parse the text of a TNTP ``_net`` file.

    Parameters
    ----------
    text : str
        File content.
    source : str, optional
        Name used in error messages.

    Returns
    -------
    TntpNetwork

    Raises
    ------
    ValueError
        On a malformed line (message ``"<source>:<line>: ..."``), a missing
        ``<NUMBER OF ZONES>`` tag, a node id out of range, a link count that
        disagrees with ``<NUMBER OF LINKS>``, or a ``<TOLL FACTOR>`` /
        ``<DISTANCE FACTOR>`` that is not a finite number >= 0.
    """
    meta: dict[str, str] = {}
    meta_line: dict[str, int] = {}
    rows: list[tuple[int, list[float]]] = []
    for lineno, line in _lines(text):
        kv = _meta(line)
        if line.startswith("<"):
            if kv is None:
                raise ValueError(f"{source}:{lineno}: malformed metadata tag: {line!r}")
            meta[kv[0]] = kv[1]
            meta_line[kv[0]] = lineno
            continue
        parts = _fields(line)
        if len(parts) < _N_NET_COLS:
            raise ValueError(
                f"{source}:{lineno}: expected {_N_NET_COLS} link fields (init node, term node, "
                f"capacity, length, free flow time, b, power, speed, toll, type), "
                f"got {len(parts)}: {line!r}"
            )
        try:
            vals = [float(p) for p in parts[:_N_NET_COLS]]
        except ValueError:
            raise ValueError(f"{source}:{lineno}: non-numeric link field in {line!r}") from None
        if not all(np.isfinite(vals)):
            raise ValueError(f"{source}:{lineno}: link fields must be finite numbers (no NaN or inf): {line!r}")
        if len(parts) > _N_NET_COLS and any(p != ";" for p in parts[_N_NET_COLS:]):
            raise ValueError(f"{source}:{lineno}: more than {_N_NET_COLS} link fields: {line!r}")
        for k in (0, 1, 9):
            if vals[k] != int(vals[k]):
                raise ValueError(
                    f"{source}:{lineno}: node ids and link type must be integers: {line!r}"
                )
        rows.append((lineno, vals))

    n_zones = _meta_int(meta, "NUMBER OF ZONES", source, meta_line, required=True)
    n_links_meta = _meta_int(meta, "NUMBER OF LINKS", source, meta_line, required=False)
    ftn = _meta_int(meta, "FIRST THRU NODE", source, meta_line, required=False, default=1)
    toll_factor = _meta_factor(meta, "TOLL FACTOR", source, meta_line)
    distance_factor = _meta_factor(meta, "DISTANCE FACTOR", source, meta_line)
    arr = np.array([v for _, v in rows], dtype=np.float64).reshape(-1, _N_NET_COLS)
    max_id = int(arr[:, :2].max()) if len(rows) else 0
    n_nodes = _meta_int(meta, "NUMBER OF NODES", source, meta_line, required=False, default=max_id)
    for lineno, v in rows:
        for k in (0, 1):
            if not 1 <= v[k] <= n_nodes:
                raise ValueError(
                    f"{source}:{lineno}: node {int(v[k])} outside 1..{n_nodes} (<NUMBER OF NODES>)"
                )
        if v[2] < 0 or v[4] < 0 or v[5] < 0 or v[6] < 0:
            raise ValueError(
                f"{source}:{lineno}: capacity, free flow time, b and power must be >= 0"
            )
        if v[2] == 0 and v[5] > 0:
            raise ValueError(
                f"{source}:{lineno}: zero capacity with b > 0 gives an infinite BPR cost"
            )
    if n_links_meta is not None and n_links_meta != len(rows):
        raise ValueError(
            f"{source}: <NUMBER OF LINKS> is {n_links_meta} but {len(rows)} links were read"
        )
    if n_zones > n_nodes:
        raise ValueError(
            f"{source}: <NUMBER OF ZONES> {n_zones} exceeds the number of nodes {n_nodes}"
        )
    return TntpNetwork(
        init_node=(arr[:, 0] - 1).astype(np.int32),
        term_node=(arr[:, 1] - 1).astype(np.int32),
        capacity=arr[:, 2].copy(),
        length=arr[:, 3].copy(),
        free_flow_time=arr[:, 4].copy(),
        b=arr[:, 5].copy(),
        power=arr[:, 6].copy(),
        speed=arr[:, 7].copy(),
        toll=arr[:, 8].copy(),
        link_type=arr[:, 9].astype(np.int64),
        n_zones=n_zones,
        n_nodes=n_nodes,
        n_links=len(rows),
        first_thru_node=ftn,
        metadata=meta,
        source=source,
        toll_factor=toll_factor,
        distance_factor=distance_factor,
    )


def parse_tntp_trips(text: str, n_zones: int | None = None, source: str = "<string>") -> npt.NDArray[np.float64]:
    """Parse the text of a TNTP ``_trips`` file into a dense OD matrix.

    Parameters
    ----------
    text : str
        File content.
    n_zones : int, optional
        Size of the matrix (the network's zone count). Default: the file's
        ``<NUMBER OF ZONES>``.
    source : str, optional
        Name used in error messages.

    Returns
    -------
    ndarray of float64, shape (n_zones, n_zones)
        ``od[i, j]`` = demand from zone ``i + 1`` to zone ``j + 1``.

    Raises
    ------
    ValueError
        On text that is neither ``Origin N`` nor ``dest : value`` entries, an
        entry before the first ``Origin``, a zone out of range, a negative or
        duplicated entry, or ``<NUMBER OF ZONES>`` larger than ``n_zones``.
    """
    meta: dict[str, str] = {}
    meta_line: dict[str, int] = {}
    entries: list[tuple[int, int, int, float]] = []  # (lineno, origin, dest, value)
    origin: int | None = None
    seen: set[int] = set()
    for lineno, line in _lines(text):
        if line.startswith("<"):
            kv = _meta(line)
            if kv is None:
                raise ValueError(f"{source}:{lineno}: malformed metadata tag: {line!r}")
            meta[kv[0]] = kv[1]
            meta_line[kv[0]] = lineno
            continue
        pos = 0
        while pos < len(line):
            m = _ORIGIN_RE.match(line, pos)
            if m is not None:
                origin = int(m.group(1))
                if origin in seen:
                    raise ValueError(f"{source}:{lineno}: Origin {origin} appears twice")
                seen.add(origin)
                pos = m.end()
                continue
            m = _ENTRY_RE.match(line, pos)
            if m is not None:
                if origin is None:
                    raise ValueError(
                        f"{source}:{lineno}: 'dest : value' entry before the first 'Origin N'"
                    )
                entries.append((lineno, origin, int(m.group(1)), float(m.group(2))))
                pos = m.end()
                continue
            rest = line[pos:].strip()
            if rest == "" or set(rest) == {";"}:
                break
            raise ValueError(
                f"{source}:{lineno}: expected 'Origin N' or 'dest : value;' entries, got {rest!r}"
            )
    file_zones = _meta_int(meta, "NUMBER OF ZONES", source, meta_line, required=n_zones is None)
    if n_zones is None:
        n_zones = file_zones
    assert n_zones is not None  # required above when not given
    if file_zones is not None and file_zones > n_zones:
        raise ValueError(
            f"{source}: <NUMBER OF ZONES> {file_zones} exceeds the network's {n_zones} zones"
        )
    od = np.zeros((n_zones, n_zones), dtype=np.float64)
    filled = np.zeros((n_zones, n_zones), dtype=np.bool_)
    for lineno, o, d, v in entries:
        for z, what in ((o, "origin"), (d, "destination")):
            if not 1 <= z <= n_zones:
                raise ValueError(f"{source}:{lineno}: {what} zone {z} outside 1..{n_zones}")
        if v < 0 or not np.isfinite(v):
            raise ValueError(f"{source}:{lineno}: demand {o}->{d} must be finite and >= 0, got {v}")
        if filled[o - 1, d - 1]:
            raise ValueError(f"{source}:{lineno}: duplicate entry for {o}->{d}")
        filled[o - 1, d - 1] = True
        od[o - 1, d - 1] = v
    return od


def parse_tntp_flow(text: str, source: str = "<string>") -> TntpFlow:
    """Parse the text of a TNTP ``_flow`` file (best-known link flows).

    Parameters
    ----------
    text : str
        File content: an optional header (``From To Volume Cost``), then
        ``from to volume cost`` rows (1-based nodes).
    source : str, optional
        Name used in error messages.

    Returns
    -------
    TntpFlow

    Raises
    ------
    ValueError
        On a row without four numeric fields.
    """
    rows: list[list[float]] = []
    for lineno, line in _lines(text):
        if line.startswith("<"):
            continue
        parts = _fields(line)
        if not rows and parts and parts[0][:1].isalpha():
            continue  # header
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"{source}:{lineno}: non-numeric field in {line!r}") from None
        if (
            len(vals) != 4
            or vals[0] != int(vals[0])
            or vals[1] != int(vals[1])
            or min(vals[:2]) < 1
        ):
            raise ValueError(
                f"{source}:{lineno}: expected 'from to volume cost' (node ids >= 1), got {line!r}"
            )
        rows.append(vals)
    arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return TntpFlow(
        init_node=(arr[:, 0] - 1).astype(np.int32),
        term_node=(arr[:, 1] - 1).astype(np.int32),
        volume=arr[:, 2].copy(),
        cost=arr[:, 3].copy(),
        source=source,
    )


def read_tntp_net(path: str | Path) -> TntpNetwork:
    """Read a TNTP ``_net`` file; see :func:`parse_tntp_net`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    TntpNetwork
    """
    text, source = _read(path)
    return parse_tntp_net(text, source)


def read_tntp_trips(path: str | Path, n_zones: int | None = None) -> npt.NDArray[np.float64]:
    """Read a TNTP ``_trips`` file into a dense OD matrix; see :func:`parse_tntp_trips`.

    Parameters
    ----------
    path : str or Path
    n_zones : int, optional
        The network's number of zones (default: the file's ``<NUMBER OF ZONES>``).

    Returns
    -------
    ndarray of float64, shape (n_zones, n_zones)
    """
    text, source = _read(path)
    return parse_tntp_trips(text, n_zones, source)


def read_tntp_flow(path: str | Path) -> TntpFlow:
    """Read a TNTP ``_flow`` file (columns From, To, Volume, Cost); see :func:`parse_tntp_flow`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    TntpFlow
    """
    text, source = _read(path)
    return parse_tntp_flow(text, source)
