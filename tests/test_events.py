"""The event bus and events.parquet: the rows published step by step equal the rows the whole day's
arrays give (the construction used before the bus), and the fast sort equals ``np.lexsort``."""

from __future__ import annotations

import numpy as np
import pytest

from twin.domains.mobility.outputs import EVENT_NAMES, sort_events
from twin.model import CityModel
from twin.scenario import scenario_from_dict


def test_sort_events_equals_lexsort():
    rng = np.random.default_rng(7)
    for _ in range(400):
        n = int(rng.integers(0, 400))
        t = np.round(np.sort(rng.random(n)) * rng.integers(1, 40), 0)
        t += np.round(rng.normal(0, 0.4, n), 1) * (rng.random(n) < 0.3)  # out of order, as step batches are
        t[rng.random(n) < 0.05] = np.nan
        key = rng.integers(0, int(rng.integers(1, 50)), n)
        np.testing.assert_array_equal(sort_events(t, key), np.lexsort((key, np.nan_to_num(t, nan=np.inf))))
    # a long run of equal times (held vehicles leave at step times)
    t = np.repeat([5.0, 6.0], 500)
    key = rng.integers(0, 1000, 1000)
    np.testing.assert_array_equal(sort_events(t, key), np.lexsort((key, t)))


def _whole_day_events(m):
    """events.parquet rows as built from the day's final arrays (one leg per car trip)."""
    mob = m.mobility
    t = mob.trips
    parts = []
    started = np.flatnonzero((mob.trip_state > 0) & (mob.trip_depart_s < mob.sim.t_s))
    parts.append((mob.trip_depart_s[started], np.full(started.size, 0), started, np.full(started.size, -1)))
    done = np.flatnonzero(mob.trip_state == 2)
    parts.append((mob.trip_arrive_s[done], np.full(done.size, 3), done, np.full(done.size, -1)))
    ab = np.flatnonzero(mob.trip_state == 3)
    parts.append((np.full(ab.size, np.nan), np.full(ab.size, 4), ab, np.full(ab.size, -1)))
    prev = getattr(mob, "prev_trip_mode", None)
    if prev is not None:
        mc = started[prev[started] != mob.trip_mode[started]]
        parts.append((mob.trip_depart_s[mc], np.full(mc.size, 5), mc, np.full(mc.size, -1)))
    ip = mob.car_route_indptr
    enter = mob.sim.route_enter_s[: ip[-1]]
    car_of_pos = np.repeat(np.arange(mob.car_trips.size), np.diff(ip))
    trip_of_pos = mob.car_trips[car_of_pos]
    links = mob.car_route_links
    reached = np.isfinite(enter)
    parts.append((enter[reached], np.full(int(reached.sum()), 1), trip_of_pos[reached], links[reached]))
    nxt = np.full(enter.shape[0], np.nan)
    nxt[:-1] = enter[1:]
    last = np.zeros(enter.shape[0], dtype=bool)
    last[ip[1:] - 1] = True
    arr_car = mob.sim.arrive_s[: mob.car_trips.size][car_of_pos]
    leave = np.where(last, arr_car, nxt)
    left = np.isfinite(leave) & reached
    parts.append((leave[left], np.full(int(left.sum()), 2), trip_of_pos[left], links[left]))
    ts = np.concatenate([p[0] for p in parts])
    typ = np.concatenate([p[1] for p in parts]).astype(np.int8)
    trip = np.concatenate([p[2] for p in parts]).astype(np.int64)
    link = np.concatenate([p[3] for p in parts]).astype(np.int64)
    type_rank = np.array([1, 3, 2, 4, 5, 0], dtype=np.int64)[typ]
    order = np.lexsort((trip * 8 + type_rank, np.nan_to_num(ts, nan=np.inf)))
    return ts[order], typ[order], trip[order], link[order], t.person[trip[order]]


@pytest.mark.parametrize(("source", "extra", "chunk_rows"), [
    ("helsinki", {"population": {"residents": 1500}, "replanning": {"iterations": 2}}, None),
    # the file streamed in many chunks while the day runs (cut at safe times)
    ("helsinki", {"population": {"residents": 1500}, "replanning": {"iterations": 2}}, 300),
    # congested car-only day: spillback, held vehicles leaving at step times, forced moves, cars
    # entering at departure times that lie steps back (the safe time of a chunk must wait for them)
    ("baltimore", {"population": {"residents": 6000, "child_share": 0.0, "car_ownership": 1.0, "sample_share": 0.05},
                   "modes": {"available": ["car"]}, "simulation": {"stuck_time_s": 60, "end_s": "26:00"}}, 2000),
])
def test_bus_events_equal_the_whole_day_construction(source, extra, chunk_rows, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from twin.domains.mobility import outputs

    if chunk_rows is not None:
        monkeypatch.setattr(outputs, "STREAM_CHUNK_ROWS", chunk_rows)
    data = {"name": "ev", "map": {"source": source}, **extra}
    m = CityModel(scenario_from_dict(data))
    batches = []
    m.events.subscribe("*", lambda b: batches.append((b.type, b.step_t_s, len(b), b["t_s"])))
    m.run()
    rec = m.mobility._recorder
    data = rec.encoded()
    assert data is not None  # the last day was streamed
    n_groups = pq.ParquetFile(pa.BufferReader(data)).metadata.num_row_groups
    assert (n_groups > 3) if chunk_rows is not None else (n_groups >= 1)
    # the table from the streamed file equals the one built from the day's recorded events at once
    cols = m.events_columns()
    ts, typ, trip, link, left = rec.columns()
    person, mode = m.mobility._event_rows_of(trip)
    whole = outputs.sorted_event_columns(ts, typ, trip, link, left, person, mode, m.mode_names)
    for k, v in whole.items():
        a, b = (v.codes, cols[k].codes) if k in ("type", "mode") else (v, cols[k])
        np.testing.assert_array_equal(a, b, err_msg=k)
    ts, typ, trip, link, res = _whole_day_events(m)
    np.testing.assert_array_equal(cols["t_s"], ts)
    np.testing.assert_array_equal(cols["type"].codes, typ)
    np.testing.assert_array_equal(cols["trip_id"], trip)
    np.testing.assert_array_equal(cols["link_id"], link)
    np.testing.assert_array_equal(cols["resident_id"], res)
    # published no earlier than they happen (by the end of their step); a car that waited behind
    # a blocked departure enters at its departure time, which may lie steps back
    step = m.scenario.simulation.record_interval_s
    for typ_name, t0, _n, t_s in batches:
        if typ_name in ("depart", "enter_link", "leave_link", "mode_change"):
            assert (t_s < t0 + step + 1e-9).all(), typ_name
            if typ_name == "depart":
                assert (t_s >= t0 - 1e-9).all()
    # every row of the table was published on the bus (the last day's; earlier days' too)
    published = sum(n for name, _, n, _ in batches if name in EVENT_NAMES)
    assert published >= cols["t_s"].size > 0


def test_streamed_events_file_is_deterministic(monkeypatch, tmp_path):
    """Chunks are cut by simulated time and row counts: the same scenario writes the same bytes,
    whatever the writer thread's timing (the second run's thread is kept busy)."""
    import hashlib

    from twin.domains.mobility import outputs

    monkeypatch.setattr(outputs, "STREAM_CHUNK_ROWS", 500)
    sc = scenario_from_dict({"name": "ev", "map": {"source": "helsinki"}, "population": {"residents": 800}})
    digests = []
    for slow in (False, True):
        if slow:  # delay every chunk's encoding: the day runs ahead of the writer
            import time

            enc = outputs._EventStream._encode
            def slow_encode(self, *a, enc=enc):
                time.sleep(0.01)
                enc(self, *a)

            monkeypatch.setattr(outputs._EventStream, "_encode", slow_encode)
        m = CityModel(sc)
        m.run()
        m.mobility.write_events(tmp_path / f"events_{slow}.parquet")
        digests.append(hashlib.sha256((tmp_path / f"events_{slow}.parquet").read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_events_of_a_day_that_cannot_be_the_last_are_built_when_asked():
    """Day 1 of 2 is not streamed (it cannot be the last); its table is built from its events."""
    sc = scenario_from_dict({"name": "ev", "map": {"source": "helsinki"}, "population": {"residents": 600},
                             "replanning": {"iterations": 2}})
    m = CityModel(sc)
    assert not m.mobility._recorder.streaming
    while m.iteration == 0:
        m.step()
        if m.iteration == 0 and m.t_s > 12 * 3600:
            mid = m.events_columns()  # mid-day: the rows so far
            assert mid["t_s"].size > 0 and np.all(np.diff(mid["t_s"][np.isfinite(mid["t_s"])]) >= 0)
            break


def test_a_wrong_safe_time_fails_instead_of_misordering():
    """Events published after their time was written would break the order: the recorder raises."""
    sc = scenario_from_dict({"name": "ev", "map": {"source": "helsinki"}, "population": {"residents": 300}})
    m = CityModel(sc)
    rec = m.mobility._recorder
    while m.t_s < 8 * 3600:
        m.step()
    rec.cut(20 * 3600, force=True)  # claims nothing before 20:00 will come
    with pytest.raises(RuntimeError, match="published after"):
        while m.running:
            m.step()
            rec.cut(0.0, force=True)
        rec.encoded()  # the writer thread's error, at the latest when the file is asked for
