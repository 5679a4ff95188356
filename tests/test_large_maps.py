"""Cities of 100,000+ links: Porto (122k drive links) and Columbus (37k) build fast, once, and right."""

from __future__ import annotations

import time

import numpy as np
import pytest

from twin.network import RoadNetwork


def _check(net: RoadNetwork) -> None:
    assert net.is_strongly_connected()
    assert np.all(net.link_length_m >= 5.0) and np.all(np.isfinite(net.link_fftt_s)) and np.all(net.link_fftt_s > 0)
    assert np.all(net.link_capacity_vph > 0) and np.all(net.link_storage_veh >= 1)
    tails = np.repeat(np.arange(net.n_nodes), np.diff(net.indptr))
    assert np.array_equal(tails, net.link_tail)


def test_porto_builds_once_for_maps_info_and_a_scenario(shared, tmp_path, monkeypatch):
    """`twin maps info porto` (no options) and a scenario's load (min_length_m given) share one build."""
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path))
    t0 = time.perf_counter()
    a = RoadNetwork.load("porto", "drive")  # as `twin maps info porto`
    build_s = time.perf_counter() - t0
    b = RoadNetwork.load("porto", "drive", min_length_m=5.0)  # as load_network(scenario)
    assert (a.meta["cache"], b.meta["cache"]) == ("miss", "hit")
    assert a.n_links > 100_000 and abs(a.n_nodes - 50_521) < 500
    _check(b)
    assert b.buildings.n_osm < 100 and len(b.buildings) >= b.n_nodes  # almost no buildings: synthetic ones
    assert build_s < 120  # about 10 s on a laptop core (the osmnx path took a minute or more)


def test_columbus_loads(shared):
    net = RoadNetwork.load("columbus", "drive")
    _check(net)
    assert 35_000 < net.n_links < 40_000


@pytest.mark.slow
@pytest.mark.parametrize("source", ["columbus", "porto"])
def test_large_map_direct_builder_equals_the_osmnx_path(shared, source):
    """The reference path through osmnx graphs takes about a minute on Porto: run with -m slow."""
    from twin.network.road_network import _ARRAYS

    direct = RoadNetwork.load(source, "drive", use_cache=False)
    ref = RoadNetwork.load(source, "drive", use_cache=False, builder="osmnx")
    for a in _ARRAYS:
        assert getattr(direct, a).tobytes() == getattr(ref, a).tobytes(), a
