"""Outputs of the mobility domain: the columns of ``trips.parquet``, ``links.parquet``,
``events.parquet`` and ``iterations.parquet`` (see docs/concepts.md for their meaning).

:class:`MobilityOutputs` is a mixin of :class:`~twin.domains.mobility.domain.MobilityDomain`: it reads
the domain's arrays at the end of a day and never changes them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from twin._tables import Categorical, to_arrow, write_table
from twin.demand import ACTIVITIES, Trips
from twin.domains.mobility.mode_choice import CAR

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from twin.events import EventBatch, EventBus
    from twin.kernels.queue import QueueSim
    from twin.network.road_network import RoadNetwork

__all__ = ["MobilityOutputs", "EventRecorder", "EVENT_NAMES"]

#: ``type`` categories of events.parquet, in code order
EVENT_NAMES = ("depart", "enter_link", "leave_link", "arrive", "aborted", "mode_change")


def sort_events(t_s: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The stable order by ``(t_s, key)``, NaN times last: ``np.lexsort((key, t_s))`` with NaN as
    +inf, but faster on events recorded step by step (nearly sorted by time): a stable sort by time
    (timsort, near-linear on such data), then the runs of equal times sorted by key."""
    order = np.argsort(t_s, kind="stable")  # NaN last, in recording order
    _sort_ties(order, t_s[order], key)
    return order


@numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]  # numba is not analysed (follow_imports = skip)
def _sort_ties(order: np.ndarray, t_sorted: np.ndarray, key: np.ndarray) -> None:
    """Within each run of equal ``t_sorted`` (NaNs count as equal), sort ``order`` by ``key``, stably."""
    n = order.shape[0]
    i = 0
    while i < n:
        ti = t_sorted[i]
        nan_i = ti != ti
        j = i + 1
        while j < n and (t_sorted[j] == ti or (nan_i and t_sorted[j] != t_sorted[j])):
            j += 1
        m = j - i
        if m > 1:
            if m <= 32:  # insertion sort: stable, and runs are short
                for a in range(i + 1, j):
                    x = order[a]
                    kx = key[x]
                    c = a - 1
                    while c >= i and key[order[c]] > kx:
                        order[c + 1] = order[c]
                        c -= 1
                    order[c + 1] = x
            else:
                seg = order[i:j].copy()
                idx = np.argsort(key[seg], kind="mergesort")
                for a in range(m):
                    order[i + a] = seg[idx[a]]
        i = j


#: primary events (the rows before the leave rows are put in) that a streamed chunk of
#: ``events.parquet`` holds at least: pending events are cut at a safe time once this many are recorded
STREAM_CHUNK_ROWS = 400_000
#: the interpreter's GIL switch interval while a writer thread runs (seconds; Python's default 0.005)
SWITCH_INTERVAL_S = 0.0005

_Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # t_s, type code, trip, link, left
#: a batch as recorded: t_s, type code, trip, link (None: -1), left (None: -1); expanded by _concat_parts
_Batch = tuple[np.ndarray, int, np.ndarray, "np.ndarray | None", "np.ndarray | None"]


def _concat_parts(parts: list[_Batch]) -> _Part:
    """The recorded batches as five columns."""
    n = sum(p[0].shape[0] for p in parts)
    ts = np.empty(n, np.float64)
    typ = np.empty(n, np.int8)
    trip = np.empty(n, np.int64)
    link = np.full(n, -1, np.int64)
    left = np.full(n, -1, np.int64)
    i = 0
    for t_s, code, tr, ln, lf in parts:
        j = i + t_s.shape[0]
        ts[i:j] = t_s
        typ[i:j] = code
        trip[i:j] = tr
        if ln is not None:
            link[i:j] = ln
        if lf is not None:
            left[i:j] = lf
        i = j
    return ts, typ, trip, link, left


class EventRecorder:
    """Collects the mobility events of a day from the event bus, for ``events.parquet``.

    It keeps the *primary* events (depart, enter_link, arrive, aborted, mode_change) with, for an
    entry, the link left there (``from_link`` of ``enter_link``) and, for a car's arrival, its last
    link (``link_id`` of ``arrive``): every ``leave_link`` row is one of those, at the same time and
    for the same trip, and sorts just before its partner (leave ranks after mode_change and depart,
    before enter and arrive). So only the primary rows are sorted; the leave rows are put in when
    the table is built (:func:`_expand_events`), which gives the rows the full sort would.

    **Streaming.** On a day that may be the last (whose events are the file's), the file is
    written while the day runs: once :data:`STREAM_CHUNK_ROWS` events are pending, :meth:`cut`
    hands those earlier than a *safe time* (no event published later is earlier) to a writer
    thread, which sorts them, puts in the leave rows and encodes them as Parquet row groups in
    memory. Rows of a chunk all precede those of the next (the order is by time first), so the
    chunks together are the day's sorted table. Chunks are cut by simulated time and row counts
    only: the bytes do not depend on the thread's timing. The sorting (numba, ``nogil``) and the
    encoding (pyarrow) run without the GIL, on another core than the day's. :meth:`finish` writes
    the rest at the end of the day; :meth:`encoded` gives the file's bytes.

    Parameters
    ----------
    bus : EventBus
    rows_of : callable
        ``rows_of(trip_ids) -> (resident_id, mode code)`` of residents' trips.
    mode_names : tuple of str
        Categories of the ``mode`` column.
    """

    def __init__(self, bus: EventBus, rows_of: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                 mode_names: tuple[str, ...]) -> None:
        self._rows_of = rows_of
        self._mode_names = mode_names
        self._parts: list[_Batch] = []
        self._pending: list[_Batch] = []
        self._n_pending = 0
        self._stream: _EventStream | None = None
        #: file the streamed days are written to (None: in memory); set by the run
        self.path: Path | None = None
        for code, name in enumerate(EVENT_NAMES):
            if name != "leave_link":
                bus.subscribe(name, self._on(code))

    def _on(self, code: int) -> Callable[[EventBatch], None]:
        def record(batch: EventBatch) -> None:
            trip = batch["trip_id"]
            t_s = batch["t_s"]
            link: np.ndarray | None = None
            left: np.ndarray | None = None
            if code == 1:  # enter_link
                link, left = batch["link_id"], batch["from_link"]
            elif code == 3:  # arrive: the last link is left then
                left = batch["link_id"]
            mine = trip >= 0  # not a domain's vehicle
            if not mine.all():
                t_s, trip = t_s[mine], trip[mine]
                link = None if link is None else link[mine]
                left = None if left is None else left[mine]
            part = (t_s, code, trip, link, left)
            self._parts.append(part)
            if self._stream is not None:
                self._pending.append(part)
                self._n_pending += t_s.shape[0]
        return record

    def reset(self, *, stream: bool = False) -> None:
        """Forget the recorded events (a new day starts); ``stream``: write this day's file while it
        runs (a day that may be the last)."""
        if self._stream is not None:
            self._stream.close()
        self._parts = []
        self._pending = []
        self._n_pending = 0
        self._stream = _EventStream(self._mode_names, self.path) if stream else None

    def set_path(self, path: Path) -> None:
        """Stream to ``path`` from now on: the current day too, if nothing of it was written yet."""
        self.path = path
        st = self._stream
        if st is not None and not st.started and st.path != path:
            st.close()
            self._stream = _EventStream(self._mode_names, path)

    @property
    def streaming(self) -> bool:
        """This day's events are written while it runs."""
        return self._stream is not None

    @property
    def cut_due(self) -> bool:
        """Streaming, and :data:`STREAM_CHUNK_ROWS` events are pending (:meth:`cut` would write)."""
        return self._stream is not None and self._n_pending >= STREAM_CHUNK_ROWS

    def cut(self, safe_s: float, *, force: bool = False) -> None:
        """When streaming and :data:`STREAM_CHUNK_ROWS` events are pending (or ``force``): hand those
        earlier than ``safe_s`` to the writer thread. ``safe_s`` is a time that no event published
        from now on is earlier than (``inf`` at the end of the day: every event, NaN times too)."""
        st = self._stream
        if st is None or not self._pending or not (force or self._n_pending >= STREAM_CHUNK_ROWS):
            return
        parts, self._pending, self._n_pending = self._pending, [], 0
        trip = parts[0][2] if len(parts) == 1 else np.concatenate([p[2] for p in parts])
        person, mode = self._rows_of(trip)
        st.write(parts, person, mode, safe_s)  # split at safe_s and encoded in the writer thread

    def finish(self) -> None:
        """The day is over: when streaming, write the rest and close the file (in the writer thread)."""
        if self._stream is not None and not self._stream.closing:
            self.cut(np.inf, force=True)
            self._stream.finish()

    def encoded(self) -> Any:
        """The finished day's ``events.parquet``: its path (``self.path``) or, written in memory, its
        bytes; ``None`` when the day was not streamed or is not over. Waits for the writer thread."""
        st = self._stream
        return st.result() if st is not None and st.closing else None

    def columns(self) -> _Part:
        """``(t_s, type code, trip_id, link_id, from_link)`` of the primary events, in recording order."""
        return _concat_parts(self._parts)


class _EventStream:
    """A Parquet file of events (at ``path``, or in memory) written chunk by chunk by one writer
    thread, in the order the chunks are given."""

    def __init__(self, mode_names: tuple[str, ...], path: Path | None = None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.mode_names = mode_names
        self.written_to_s = -np.inf  # every event before this time is written (writer thread only)
        self._rest: list[np.ndarray] | None = None  # recorded events not written yet (writer thread only)
        self.closing = False
        self.started = False  # a chunk was given
        self.path = path
        self._sink = pa.BufferOutputStream() if path is None else pa.OSFile(str(path), "wb")
        empty = _event_table_columns(np.zeros(0), np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0, np.int64),
                                     np.zeros(0, np.int64), np.zeros(0, np.int8), mode_names)
        self._writer = pq.ParquetWriter(self._sink, to_arrow(empty).schema, **EVENTS_PARQUET_OPTIONS)
        self._pool: ThreadPoolExecutor | None = None  # started with the first chunk
        self._switch_s: float | None = None  # the interpreter's switch interval before the thread
        self._jobs: list[Any] = []
        self._bytes: Any = None

    def write(self, parts: list[_Batch], person: np.ndarray, mode: np.ndarray, safe_s: float) -> None:
        """Queue recorded events (``person``, ``mode``: per event, in order) for the writer thread,
        which writes those earlier than ``safe_s`` and keeps the others for the next call. A job's
        error (a full disk, an event published too late) is raised by :meth:`result`, i.e. when the
        file is asked for, where the run reports a failed write."""
        self.started = True
        self._jobs.append(self._thread().submit(self._encode, parts, person, mode, safe_s))

    def _thread(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="citytwin-events")
            # while the writer runs beside the day, the day's thread gets the GIL back within 0.5 ms
            # of asking (not 5 ms) whenever it returns from the kernel: the writer's Python between
            # its GIL-free calls would otherwise delay every step (restored in result())
            import sys

            self._switch_s = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_s, SWITCH_INTERVAL_S))
        return self._pool

    def _encode(self, parts: list[_Batch], person: np.ndarray, mode: np.ndarray, safe_s: float) -> None:
        cols = [*_concat_parts(parts), person, mode]
        if self._rest is not None:
            cols = [np.concatenate([a, b]) for a, b in zip(self._rest, cols, strict=True)]
        ts = cols[0]
        fin = ts[np.isfinite(ts)]
        if fin.size and fin.min() < self.written_to_s:  # the safe time was wrong: fail, never misorder
            raise RuntimeError(f"events.parquet: an event at {float(fin.min())} s was published after the "
                               f"events before {self.written_to_s} s were written")
        now = (ts < safe_s) | (np.isnan(ts) & (safe_s == np.inf))  # NaN times (aborted) go last
        if now.all():
            self._rest = None
        else:
            self._rest = [c[~now] for c in cols]
            cols = [c[now] for c in cols]
        self.written_to_s = max(self.written_to_s, safe_s)
        if cols[0].size:
            ts, typ, trip, link, left, person, mode = cols
            self._writer.write_table(to_arrow(sorted_event_columns(ts, typ, trip, link, left, person, mode,
                                                                   self.mode_names)))

    def _close(self) -> None:
        self._writer.close()
        if self.path is None:
            self._bytes = self._sink.getvalue()
        else:
            self._sink.close()
            self._bytes = self.path

    def finish(self) -> None:
        self.closing = True
        self._jobs.append(self._thread().submit(self._close))
        self._thread().shutdown(wait=False)

    def result(self) -> Any:
        try:
            for j in self._jobs:
                j.result()  # raises what a job raised
        finally:
            self._jobs = []
            if self._switch_s is not None:
                import sys

                sys.setswitchinterval(self._switch_s)
                self._switch_s = None
        return self._bytes

    def close(self) -> None:
        """Drop the file (wait for the thread first; its errors do not matter any more: the next
        day's file replaces it)."""
        if not self.closing:
            self.finish()
        try:
            self.result()
        except Exception:  # noqa: BLE001  # the dropped day's file: nobody reads it
            pass
        finally:
            self._bytes = None


#: writer options of events.parquet: dictionaries for the categorical columns only (the integer
#: columns have too many distinct values for them to pay), delta encoding for the integer columns
#: (nearly sorted within a time), and zstd at level 1, which gives with these encodings about the
#: size of the default level at 60% of its time
EVENTS_PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "lz4", "use_dictionary": ["type", "mode"], "write_statistics": True,
    "column_encoding": {"trip_id": "DELTA_BINARY_PACKED", "resident_id": "DELTA_BINARY_PACKED",
                        "link_id": "DELTA_BINARY_PACKED"},
}


def _event_table_columns(t: np.ndarray, typ: np.ndarray, trip: np.ndarray, link: np.ndarray, res: np.ndarray,
                         mode: np.ndarray, mode_names: tuple[str, ...]) -> dict[str, np.ndarray | Categorical]:
    return {"t_s": t, "type": Categorical(typ, EVENT_NAMES), "trip_id": trip, "resident_id": res,
            "mode": Categorical(mode, mode_names), "link_id": link}


def sorted_event_columns(ts: np.ndarray, typ: np.ndarray, trip: np.ndarray, link: np.ndarray, left: np.ndarray,
                         person: np.ndarray, mode: np.ndarray, mode_names: tuple[str, ...]
                         ) -> dict[str, np.ndarray | Categorical]:
    """The rows of ``events.parquet`` from primary events (resident and mode given per event):
    ordered by time (NaN last), trip, then type (leave before enter at the same node passage), then
    recording order, with each leave row put in before its partner."""
    # one sort by time (numpy's timsort: near-linear on events recorded step by step), then one
    # numba call (ties, leave rows): few calls that hold the GIL, as the writer thread runs beside the day
    order = np.argsort(ts, kind="stable")  # NaN last, in recording order
    o_t, o_typ, o_trip, o_link, o_res, o_mode = _tie_and_expand(
        order, ts, typ, trip, link, left, person.astype(np.int64, copy=False), mode.astype(np.int8, copy=False))
    return _event_table_columns(o_t, o_typ, o_trip, o_link, o_res, o_mode, mode_names)


@numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]  # numba is not analysed (follow_imports = skip)
def _tie_and_expand(order: np.ndarray, ts: np.ndarray, typ: np.ndarray, trip: np.ndarray, link: np.ndarray,
                    left: np.ndarray, person: np.ndarray, mode: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`sort_events` after its sort by time (``order``; trip and type rank share one key),
    then :func:`_expand_events`."""
    _sort_ties(order, ts[order], _event_keys(typ, trip))
    return _expand_events(order, ts, typ, trip, link, left, person, mode)  # type: ignore[no-any-return]  # numba


@numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]  # numba is not analysed (follow_imports = skip)
def _event_keys(typ: np.ndarray, trip: np.ndarray) -> np.ndarray:
    """Sort key trip * 8 + rank of the type (mode_change 0, depart 1, leave 2, enter 3, arrive 4,
    aborted 5)."""
    rank = np.array([1, 3, 2, 4, 5, 0], np.int64)
    key = np.empty(trip.shape[0], np.int64)
    for i in range(trip.shape[0]):
        key[i] = trip[i] * 8 + rank[typ[i]]
    return key


@numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]  # numba is not analysed (follow_imports = skip)
def _expand_events(order: np.ndarray, ts: np.ndarray, typ: np.ndarray, trip: np.ndarray, link: np.ndarray,
                   left: np.ndarray, person: np.ndarray, mode: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The sorted primary rows with each leave row put in just before its partner (see
    :class:`EventRecorder`), with the resident and mode given per primary row."""
    n = order.shape[0]
    m = n
    for i in range(n):
        if left[i] >= 0:
            m += 1
    o_t = np.empty(m, np.float64)
    o_typ = np.empty(m, np.int8)
    o_trip = np.empty(m, np.int64)
    o_link = np.empty(m, np.int64)
    o_res = np.empty(m, np.int64)
    o_mode = np.empty(m, np.int8)
    j = 0
    for a in range(n):
        i = order[a]
        tr = trip[i]
        r = person[i]
        md = mode[i]
        if left[i] >= 0:
            o_t[j] = ts[i]
            o_typ[j] = 2
            o_trip[j] = tr
            o_link[j] = left[i]
            o_res[j] = r
            o_mode[j] = md
            j += 1
        o_t[j] = ts[i]
        o_typ[j] = typ[i]
        o_trip[j] = tr
        o_link[j] = link[i]
        o_res[j] = r
        o_mode[j] = md
        j += 1
    return o_t, o_typ, o_trip, o_link, o_res, o_mode


def _read_event_columns(data: Any, mode_names: tuple[str, ...]) -> dict[str, np.ndarray | Categorical]:
    """The columns of an events.parquet file held in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(data if isinstance(data, (str, Path)) else pa.BufferReader(data))
    out: dict[str, np.ndarray | Categorical] = {}
    for name in t.column_names:
        col = t.column(name).combine_chunks()
        if name in ("type", "mode"):
            cats = EVENT_NAMES if name == "type" else mode_names
            where = np.array([cats.index(c) for c in col.dictionary.to_pylist()] or [0], np.int8)
            out[name] = Categorical(where[col.indices.to_numpy(zero_copy_only=False)], cats)
        else:
            out[name] = col.to_numpy()
    return out


class MobilityOutputs:
    """Result tables of the mobility domain (mixed into ``MobilityDomain``)."""

    # provided by MobilityDomain
    network: RoadNetwork
    trips: Trips
    sim: QueueSim
    mode_names: tuple[str, ...]
    trip_mode: np.ndarray
    trip_state: np.ndarray
    trip_depart_s: np.ndarray
    trip_arrive_s: np.ndarray
    trip_car_toll: np.ndarray
    route_indptr: np.ndarray
    bin_s: float
    n_bins: int
    iteration_records: list[dict[str, Any]]
    _recorder: EventRecorder | None

    if TYPE_CHECKING:  # pragma: no cover
        def _freeflow_times(self) -> np.ndarray: ...

        def _trip_distance_m(self) -> np.ndarray: ...

        @staticmethod
        def _delay_s(travel_time_s: np.ndarray, freeflow_s: np.ndarray) -> np.ndarray: ...

    def trips_columns(self) -> dict[str, np.ndarray | Categorical]:
        """Per-trip results of the last day as columns (``trips.parquet``; see docs/concepts.md).

        * ``trip_id``: dense trip index 0..m-1 (the ``trip_id`` of ``events.parquet``);
        * ``resident_id``: the resident's row 0..n-1, the id of a resident in every table
          (``events.parquet``, ``model.resident(resident_id)``, ``Resident.resident_id``);
        * ``seq``: position in the resident's day; ``purpose``: activity at the destination;
          ``mode``; ``origin_osmid``, ``destination_osmid``: OSM ids of the drive-network nodes;
        * ``depart_s``, ``arrive_s``: seconds after midnight (NaN: not departed / not arrived by
          ``end_s``); ``completed``;
        * ``route_length_m``: car: the routed drive-network path; walk, bike: the shortest path on
          the walk / bike network (straight line when both ends snap to one node); plug-in modes:
          the provider's ``distance_m``;
        * ``route_links``: number of drive-network links of the car route, i.e. of the trip's
          ``enter_link`` events when it completes; 0 for walk, bike and plug-in modes (they are
          not simulated link by link: walk and bike are routed on their own networks for the length
          only) and for trips whose origin is their destination;
        * ``travel_time_s`` = ``arrive_s`` − ``depart_s``; ``freeflow_time_s``: car: the route's
          free-flow time, walk/bike: length / speed, plug-ins: the provider's; ``delay_s`` =
          travel − free-flow time, never negative by round-off (0 within 1e-6 of the free-flow
          time); ``toll``: road charges of car trips.

        A trip whose origin is its destination (the same drive node) departs and arrives at the
        same time with zero length, travel time, free-flow time, delay and links, on any mode.
        """
        net = self.network
        t = self.trips
        free = self._freeflow_times()
        tt = self.trip_arrive_s - self.trip_depart_s
        delay = self._delay_s(tt, free)
        n_links = np.where(self.trip_mode == CAR, np.diff(self.route_indptr), 0).astype(np.int32)
        return {
            "trip_id": np.arange(t.n, dtype=np.int64),
            "resident_id": t.person.astype(np.int64),
            "seq": t.seq,
            "purpose": Categorical(t.purpose, ACTIVITIES),
            "mode": Categorical(self.trip_mode, self.mode_names),
            "origin_osmid": net.node_osmid[t.origin],
            "destination_osmid": net.node_osmid[t.dest],
            "depart_s": self.trip_depart_s,
            "arrive_s": self.trip_arrive_s,
            "completed": self.trip_state == 2,
            "route_length_m": self._trip_distance_m(),
            "route_links": n_links,
            "travel_time_s": tt,
            "freeflow_time_s": free,
            "delay_s": delay,
            "toll": np.where(self.trip_mode == CAR, self.trip_car_toll, 0.0),
        }

    def trips_frame(self) -> pd.DataFrame:
        """:meth:`trips_columns` as a pandas DataFrame (text columns as categoricals)."""
        import pandas as pd

        cols: dict[str, Any] = {}
        for k, v in self.trips_columns().items():
            # pandas-stubs want an Index of categories; pandas takes the list
            cols[k] = (pd.Categorical.from_codes(v.codes, categories=list(v.categories))  # type: ignore[call-overload]
                       if isinstance(v, Categorical) else v)
        return pd.DataFrame(cols)

    def links_columns(self) -> dict[str, np.ndarray]:
        """Hourly volume and mean speed per link (rows with traffic only) of the last day."""
        net = self.network
        per_hour = max(1, int(round(3600.0 / self.bin_s))) if 3600.0 % self.bin_s == 0 else None
        vol_b = self.sim.link_volume
        tt_b = self.sim.link_tt_sum_s
        if per_hour is None:  # bins that do not divide an hour: report per bin, labelled by start hour
            hours = (np.arange(self.n_bins) * self.bin_s // 3600).astype(np.int64)
        else:
            hours = np.arange(self.n_bins) // per_hour
        n_h = int(hours.max()) + 1
        vol = np.zeros((net.n_links, n_h), np.int64)
        tt = np.zeros((net.n_links, n_h))
        for b in range(self.n_bins):
            vol[:, hours[b]] += vol_b[:, b]
            tt[:, hours[b]] += tt_b[:, b]
        link, hour = np.nonzero(vol)
        v = vol[link, hour]
        mean_tt = tt[link, hour] / v
        length = net.link_length_m[link]
        with np.errstate(divide="ignore"):
            speed = np.where(mean_tt > 0, length / mean_tt, net.link_speed_mps[link])
        return {
            "link_id": link.astype(np.int64),
            "u_osmid": net.node_osmid[net.link_tail[link]],
            "v_osmid": net.node_osmid[net.link_head[link]],
            "osm_way_id": net.link_osmid[link],
            "hour": hour.astype(np.int16),
            "volume_veh": v.astype(np.int64),
            "mean_travel_time_s": mean_tt,
            "mean_speed_mps": speed,
            "freeflow_speed_mps": net.link_speed_mps[link],
            "length_m": length,
            "capacity_vph": net.link_capacity_vph[link],
        }

    def events_columns(self) -> dict[str, np.ndarray | Categorical]:
        """Events of the last day: depart, enter_link, leave_link, arrive, aborted, and mode_change (at
        the departure of a trip whose tour changed mode in the last replanning), sorted by time.
        ``resident_id`` is the resident's row (as in ``trips.parquet``); ``link_id`` is -1 for the
        events that are not on a link. Only car trips on the network have link events: walk, bike,
        plug-in modes and trips whose origin is their destination have depart and arrive only.

        The rows are those the mobility domain published on the event bus during the day
        (:class:`EventRecorder`); a domain's own vehicles (fleets) are not residents' trips and are
        left out.

        Raises
        ------
        RuntimeError
            The scenario says ``output.events: false`` (nothing was recorded).
        """
        rec = self._recorder
        if rec is None:
            raise RuntimeError("events were not recorded (output.events is false)")
        data = rec.encoded()
        if data is not None:  # the day's file, streamed while it ran
            return _read_event_columns(data, self.mode_names)
        ts, typ, trip, link, left = rec.columns()
        person, mode = self._event_rows_of(trip)
        return sorted_event_columns(ts, typ, trip, link, left, person, mode, self.mode_names)

    def _event_rows_of(self, trip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resident and mode code of residents' trips ``trip`` (events.parquet's columns)."""
        return self.trips.person[trip].astype(np.int64), self.trip_mode[trip].astype(np.int8)

    def write_events(self, path: Path) -> None:
        """Write ``events.parquet`` of the last day to ``path``: the file streamed while the day ran, or
        the table built now (:meth:`events_columns`)."""
        rec = self._recorder
        data = rec.encoded() if rec is not None else None
        if data is None:
            write_table(self.events_columns(), path)
        elif isinstance(data, Path):
            if data != path:
                import shutil

                shutil.copyfile(data, path)
        else:
            with open(path, "wb") as f:
                f.write(data)

    def stream_events_to(self, path: Path) -> None:
        """Write the streamed days' ``events.parquet`` to ``path`` while they run (instead of memory;
        :meth:`write_events` to the same path then has nothing left to do). From the next day on."""
        if self._recorder is not None:
            self._recorder.set_path(Path(path))

    def iterations_columns(self) -> dict[str, np.ndarray]:
        """Per-iteration KPIs (convergence of the equilibrium)."""
        recs = self.iteration_records
        keys = list(recs[0]) if recs else []
        out: dict[str, np.ndarray] = {}
        for k in keys:
            vals = [r[k] for r in recs]
            if all(isinstance(v, int) for v in vals):
                out[k] = np.array(vals, dtype=np.int64)
            else:
                out[k] = np.array([np.nan if v is None else float(v) for v in vals], dtype=np.float64)
        return out
