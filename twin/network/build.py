"""Compile an OSM extract straight into :class:`~twin.network.RoadNetwork` arrays, without osmnx graphs.

:meth:`RoadNetwork.load <twin.network.RoadNetwork.load>` used to go OSM file → pyosmium extract →
temporary OSM XML → ``osmnx.graph_from_xml`` (graph, largest weak component, simplification) →
:func:`~twin.network.clean.clean_graph` → arrays. On a city of 120,000 links nearly all of its
minute went into building and copying networkx graphs. :func:`build_network` does the same steps on
arrays and plain lists and gives **the same network**, array for array and bit for bit (tests
compare the two builders on every shared map; ``RoadNetwork.load(..., builder="osmnx")`` is the
reference path):

1. osmnx's graph: each kept way (ways keyed by id, as osmnx's XML reader does) with consecutive
   duplicate nodes dropped; one-way (``oneway`` in osmnx's values, or a roundabout; never for
   ``walk``) ways in their direction (reversed for ``-1``/``reverse``/``T``), others both ways; an
   edge's key counts the earlier edges between the same two nodes; lengths are osmnx's
   great-circle distances;
2. the largest weakly connected component (ties: the one holding the lowest node id, as networkx);
3. osmnx's simplification (``simplify_graph`` with its defaults): the same endpoint rules, the same
   path walk, merged attributes (``length`` summed in path order, other values kept when they agree,
   else their sorted distinct values, as :func:`~twin.network.clean.canonical_tag_lists` orders
   them), the path's vertices as the shape, new keys after the existing ones, rings removed;
4. :func:`~twin.network.clean.clean_graph`: reversed geometries restored, self-loops dropped, the
   largest strongly (drive) or weakly connected component, short links raised to ``min_length_m``,
   speeds by osmnx's own maxspeed parsing and per-class means (summed in osmnx's edge order, so
   even the rounding is the same), travel times, lanes and capacities.

The order of networkx's adjacency dictionaries matters in three places (edge keys, the order of the
per-class speed means, which edge's data a simplified path takes); it is reproduced from the order
in which osmnx would have inserted the edges (way order, then position in the way).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np

from twin._errors import MapError, NoDrivableRoadError
from twin.maps import Buildings, MapSource, resolve_source
from twin.maps._osm import NETWORK_TYPES, OsmExtract, read_osm
from twin.network.clean import (
    BIKE_SPEED_KPH,
    FALLBACK_SPEED_KPH,
    HIGHWAY_CLASSES,
    WALK_SPEED_KPH,
    canonical_tag_list,
    lanes_and_capacity,
    untagged_class_speeds,
)

__all__ = ["build_network", "links_from_extract"]

# osmnx.graph._add_paths
_ONEWAY_VALUES = frozenset({"yes", "true", "1", "-1", "reverse", "T", "F"})
_REVERSED_VALUES = frozenset({"-1", "reverse", "T"})
_EARTH_RADIUS_M = 6_371_009  # osmnx.distance.EARTH_RADIUS_M
# the way tags any later step reads (the others are carried by osmnx but read by nobody)
_TAGS = ("highway", "lanes", "maxspeed")


def _great_circle(c: np.ndarray) -> np.ndarray:
    """osmnx.distance.great_circle on ``c[:, 0..3] = lat1, lon1, lat2, lon2`` (same operations)."""
    y1 = np.deg2rad(c[:, 0])
    y2 = np.deg2rad(c[:, 2])
    delta_y = y2 - y1
    x1 = np.deg2rad(c[:, 1])
    x2 = np.deg2rad(c[:, 3])
    delta_x = x2 - x1
    h = np.sin(delta_y / 2) ** 2 + np.cos(y1) * np.cos(y2) * np.sin(delta_x / 2) ** 2
    h = np.minimum(1, h)
    arc = 2 * np.arcsin(np.sqrt(h))
    return arc * _EARTH_RADIUS_M


def _components(n: int, u: np.ndarray, v: np.ndarray, strongly: bool) -> tuple[int, np.ndarray]:
    """Connected components of nodes ``0..n-1`` under links ``u -> v`` (scipy; duplicates summed)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a = coo_matrix((np.ones(u.size, dtype=np.int8), (u, v)), shape=(n, n)).tocsr()
    a.sum_duplicates()
    return connected_components(a, directed=True, connection="strong" if strongly else "weak")


def _largest_component(alive: np.ndarray, u: np.ndarray, v: np.ndarray, strongly: bool) -> np.ndarray:
    """bool (n,): the nodes of the component ``osmnx.truncate.largest_component`` keeps of the
    graph of the ``alive`` nodes and links ``u -> v`` (both ends alive), given in osmnx's edge order.

    networkx yields weak components in order of their first node, so of several largest ones
    ``max`` keeps the one holding the lowest node; a tie between strong components is left to
    networkx itself, on a DiGraph with the same node and successor order.
    """
    n = alive.shape[0]
    nodes = np.flatnonzero(alive)
    dense = np.full(n, -1, dtype=np.int64)
    dense[nodes] = np.arange(nodes.size)
    du, dv = dense[u], dense[v]
    out = np.zeros(n, dtype=bool)
    if nodes.size == 0:
        return out
    k, label = _components(nodes.size, du, dv, strongly)
    if k == 1:
        out[nodes] = True
        return out
    size = np.bincount(label, minlength=k)
    best = np.flatnonzero(size == size.max())
    if best.size == 1:
        out[nodes[label == best[0]]] = True
        return out
    if not strongly:
        first = np.full(k, nodes.size, dtype=np.int64)
        np.minimum.at(first, label, np.arange(nodes.size))
        out[nodes[label == best[np.argmin(first[best])]]] = True
        return out
    import networkx as nx

    D = nx.DiGraph()
    D.add_nodes_from(range(nodes.size))
    D.add_edges_from(zip(du.tolist(), dv.tolist()))
    keep = max(nx.strongly_connected_components(D), key=len)
    out[nodes[sorted(keep)]] = True
    return out


def _endpoints(n: int, alive: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """osmnx.simplification._is_endpoint (no node or edge attribute rules) for every node."""
    out_deg = np.bincount(u, minlength=n)
    in_deg = np.bincount(v, minlength=n)
    loop = np.zeros(n, dtype=bool)
    loop[u[u == v]] = True
    pairs = np.unique(np.concatenate([u * np.int64(n) + v, v * np.int64(n) + u]))
    n_nbr = np.bincount(pairs // n, minlength=n)
    deg = in_deg + out_deg
    end = loop | (out_deg == 0) | (in_deg == 0) | ~((n_nbr == 2) & ((deg == 2) | (deg == 4)))
    return end & alive


def _pair_groups(u: np.ndarray, v: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For links in insertion order: each one's key (earlier links between the same two nodes),
    the insertion index of its pair's first link, and its pair's id ``u * n + v``."""
    pair = u * np.int64(n) + v
    order = np.argsort(pair, kind="stable")
    ps = pair[order]
    start = np.ones(ps.size, dtype=bool)
    start[1:] = ps[1:] != ps[:-1]
    gstart = np.flatnonzero(start)
    gid = np.cumsum(start) - 1
    key = np.empty(ps.size, dtype=np.int64)
    key[order] = np.arange(ps.size) - gstart[gid]
    first = np.empty(ps.size, dtype=np.int64)
    first[order] = order[gstart[gid]]
    return key, first, pair


def links_from_extract(
    ext: OsmExtract,
    network_type: str = "drive",
    *,
    label: str = "<map>",
    min_length_m: float = 5.0,
    walk_speed_kph: float = WALK_SPEED_KPH,
    bike_speed_kph: float = BIKE_SPEED_KPH,
) -> dict[str, Any]:
    """The cleaned links of an extract: the keyword arguments of :meth:`RoadNetwork.compile
    <twin.network.RoadNetwork.compile>` but ``network_type``, ``source`` and ``buildings``.

    Parameters
    ----------
    ext
        What :func:`twin.maps._osm.read_osm` read for ``network_type`` (at least one way).
    network_type
        ``"drive"``, ``"walk"``, ``"bike"`` or ``"all"``.
    label
        Names the map in errors.
    min_length_m, walk_speed_kph, bike_speed_kph
        As for :func:`~twin.network.clean.clean_graph`.

    Raises
    ------
    NoDrivableRoadError
        Nothing is left after cleaning (the messages of :func:`~twin.network.clean.clean_graph`).
    """
    # ---- 1. osmnx's graph ---------------------------------------------------------------------
    ways: dict[int, tuple[list[int], dict[str, str]]] = {}
    used: set[int] = set()
    for wid, refs, tags in ext.ways:
        ways[wid] = (refs, tags)
        used.update(refs)
    node_ids = np.array(sorted(used), dtype=np.int64)
    n = node_ids.size
    lonlat = ext.node_lonlat
    nlon = np.array([lonlat[i][0] for i in node_ids.tolist()], dtype=np.float64)
    nlat = np.array([lonlat[i][1] for i in node_ids.tolist()], dtype=np.float64)
    bidirectional = network_type == "walk"
    way_osmid: list[int] = []
    way_tags: list[dict[str, str]] = []
    way_oneway: list[bool] = []
    cu: list[int] = []
    cv: list[int] = []
    cw: list[int] = []
    crev: list[bool] = []
    for p, (wid, (refs, tags)) in enumerate(ways.items()):
        nodes = [k for k, _ in itertools.groupby(refs)]
        one = not bidirectional and (tags.get("oneway") in _ONEWAY_VALUES or tags.get("junction") == "roundabout")
        if one and tags.get("oneway") in _REVERSED_VALUES:
            nodes.reverse()
        way_osmid.append(int(wid))
        way_tags.append({k: tags[k] for k in _TAGS if k in tags})
        way_oneway.append(one)
        m = len(nodes) - 1
        if m <= 0:
            continue
        cu.extend(nodes[:-1])
        cv.extend(nodes[1:])
        cw.extend([p] * m)
        crev.extend([False] * m)
        if not one:
            cu.extend(nodes[1:])
            cv.extend(nodes[:-1])
            cw.extend([p] * m)
            crev.extend([True] * m)
    eu = np.searchsorted(node_ids, np.array(cu, dtype=np.int64))
    ev = np.searchsorted(node_ids, np.array(cv, dtype=np.int64))
    ew = np.array(cw, dtype=np.int64)
    erev = np.array(crev, dtype=bool)
    ekey, efirst, epair = _pair_groups(eu, ev, n)
    # lengths, computed in osmnx's edge order (node, then successor insertion, then key)
    gorder = np.lexsort((ekey, efirst, eu))
    c = np.column_stack([nlat[eu[gorder]], nlon[eu[gorder]], nlat[ev[gorder]], nlon[ev[gorder]]])
    elen = np.empty(eu.size)
    if eu.size:
        d = _great_circle(c)
        d[np.isnan(d)] = 0
        elen[gorder] = d

    # ---- 2. largest weakly connected component --------------------------------------------
    alive = _largest_component(np.ones(n, dtype=bool), eu, ev, strongly=False)
    keep = alive[eu]
    e_idx = np.flatnonzero(keep)  # surviving links, in insertion order
    u1, v1 = eu[e_idx], ev[e_idx]

    # ---- 3. simplification -------------------------------------------------------------------
    is_end = _endpoints(n, alive, u1, v1)
    # distinct successors of each node in insertion order, with the first link to each
    first_of_pair = e_idx[efirst[e_idx] == e_idx]  # links that open a pair (key 0)
    fo = first_of_pair[np.lexsort((first_of_pair, eu[first_of_pair]))]
    succ_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(eu[fo], minlength=n), out=succ_ptr[1:])
    succ_v = ev[fo].tolist()
    succ_ptr_l = succ_ptr.tolist()
    first_link = dict(zip(epair[fo].tolist(), fo.tolist()))
    end_l = is_end.tolist()

    def successors(x: int) -> list[int]:
        return succ_v[succ_ptr_l[x]:succ_ptr_l[x + 1]]

    def build_path(endpoint: int, nxt: int) -> list[int]:  # osmnx.simplification._build_path
        path = [endpoint, nxt]
        on = {endpoint, nxt}
        for successor in successors(nxt):
            if successor not in on:
                path.append(successor)
                on.add(successor)
                while not end_l[successor]:
                    cand = [s for s in successors(successor) if s not in on]
                    if len(cand) == 1:
                        successor = cand[0]
                        path.append(successor)
                        on.add(successor)
                    elif len(cand) == 0:
                        if endpoint in successors(successor):
                            return [*path, endpoint]
                        return path
                    else:  # pragma: no cover - osmnx raises GraphSimplificationError too
                        raise MapError(f"map {label}: impossible simplification pattern near node "
                                       f"{int(node_ids[successor])}")
                return path
        return path

    paths: list[list[int]] = []
    for x in np.flatnonzero(is_end).tolist():
        for s in successors(x):
            if not end_l[s]:
                paths.append(build_path(x, s))

    elen_l = elen.tolist()
    ew_l = ew.tolist()
    erev_l = erev.tolist()
    removed = np.zeros(n, dtype=bool)
    new_attrs: list[dict[str, Any]] = []
    for path in paths:
        segs = [first_link[a * n + b] for a, b in itertools.pairwise(path)]
        removed[path[1:-1]] = True
        new_attrs.append(_merge(segs, elen_l, ew_l, erev_l, way_osmid, way_tags, way_oneway))
    # links after simplification: the original ones between surviving nodes, then the new ones
    orig = e_idx[~removed[u1] & ~removed[v1]]
    nu = np.array([p[0] for p in paths], dtype=np.int64)
    nv = np.array([p[-1] for p in paths], dtype=np.int64)
    # a new link's key follows the links its two nodes already had (all of them, before removal)
    npair = nu * np.int64(n) + nv
    n_before = _count_in(npair, epair[e_idx])
    nkey_rel, nfirst_rel, _ = _pair_groups(nu, nv, n)
    nkey = n_before + nkey_rel
    # where the new link's pair sits among its tail's successors (osmnx's edge order)
    exist_first = _first_of(npair, epair[e_idx], efirst[e_idx])
    big = np.int64(eu.size)
    nrank = np.where(exist_first >= 0, exist_first, big + nfirst_rel)
    new_ok = ~removed[nu] & ~removed[nv]
    alive &= ~removed

    # links as one table: original ones (attributes of their way) and new ones
    L_u = np.concatenate([eu[orig], nu[new_ok]])
    L_v = np.concatenate([ev[orig], nv[new_ok]])
    L_key = np.concatenate([ekey[orig], nkey[new_ok]])
    L_rank = np.concatenate([efirst[orig], nrank[new_ok]])
    new_idx = np.flatnonzero(new_ok)
    attrs: list[dict[str, Any]] = [
        _edge_attrs(e, elen_l, ew_l, erev_l, way_osmid, way_tags, way_oneway) for e in orig.tolist()
    ] + [new_attrs[i] for i in new_idx.tolist()]
    geom_path: list[list[int] | None] = [None] * orig.size + [paths[i] for i in new_idx.tolist()]

    # remove rings: weak components of the simplified graph without any endpoint
    is_end2 = _endpoints(n, alive, L_u, L_v)
    k, lab = _components(n, L_u, L_v, strongly=False)
    has_end = np.zeros(k, dtype=bool)
    has_end[lab[is_end2]] = True
    alive &= has_end[lab]
    sel = np.flatnonzero(alive[L_u] & alive[L_v])

    def take(idx: np.ndarray) -> None:
        nonlocal L_u, L_v, L_key, L_rank, attrs, geom_path
        L_u, L_v, L_key, L_rank = L_u[idx], L_v[idx], L_key[idx], L_rank[idx]
        il = idx.tolist()
        attrs = [attrs[i] for i in il]
        geom_path = [geom_path[i] for i in il]

    take(sel)
    # osmnx's edge order from here on: node, successor insertion, key
    take(np.lexsort((L_key, L_rank, L_u)))

    # ---- 4. clean_graph -------------------------------------------------------------------
    _restore_reversed_geometry(L_u, L_v, L_key, attrs, geom_path)
    take(np.flatnonzero(L_u != L_v))
    if L_u.size == 0:
        raise NoDrivableRoadError(f"map {label}: no {network_type} road left after cleaning")
    strongly = network_type == "drive"
    alive &= _largest_component(alive, L_u, L_v, strongly)
    take(np.flatnonzero(alive[L_u] & alive[L_v]))
    if L_u.size == 0 or int(alive.sum()) < 2:
        raise NoDrivableRoadError(
            f"map {label}: the largest {'strongly ' if strongly else ''}connected {network_type} network has no links"
        )
    m = L_u.size
    length = np.empty(m)
    for i, a in enumerate(attrs):
        x = float(a.get("length", 0.0) or 0.0)
        if not math.isfinite(x) or x < min_length_m:
            x = float(min_length_m)
        a["length"] = x
        length[i] = x
    if network_type in ("walk", "bike"):
        speed = np.full(m, float(walk_speed_kph if network_type == "walk" else bike_speed_kph))
    else:
        speed = _osmnx_speeds(attrs)
    fftt = (length / 1000) / (speed / (60 * 60))  # osmnx.routing.add_edge_travel_times

    # ---- arrays, in CSR order (tail, head, key) -------------------------------------------------
    final_nodes = np.flatnonzero(alive)
    dense = np.full(n, -1, dtype=np.int64)
    dense[final_nodes] = np.arange(final_nodes.size)
    csr = np.lexsort((L_key, dense[L_v], dense[L_u]))
    cls_index = {c: i for i, c in enumerate(HIGHWAY_CLASSES)}
    lanes = np.empty(m)
    cap = np.empty(m)
    store = np.empty(m)
    hcls = np.empty(m, dtype=np.int8)
    osmid = np.empty(m, dtype=np.int64)
    for i, a in enumerate(attrs):
        lanes[i], cap[i], store[i], c_name = lanes_and_capacity(a)
        hcls[i] = cls_index[c_name]
        o = a["osmid"]
        osmid[i] = int(o[0] if isinstance(o, list) else o)
    geometry = _geometries(geom_path, nlon, nlat)
    cl = csr.tolist()
    return {
        "node_osmid": node_ids[final_nodes], "node_lon": nlon[final_nodes], "node_lat": nlat[final_nodes],
        "link_tail": dense[L_u[csr]].astype(np.int32), "link_head": dense[L_v[csr]].astype(np.int32),
        "link_key": L_key[csr].astype(np.int64), "link_osmid": osmid[csr],
        "link_length_m": length[csr], "link_fftt_s": fftt[csr], "link_lanes": lanes[csr],
        "link_capacity_vph": cap[csr], "link_storage_veh": store[csr], "link_class": hcls[csr],
        "link_geometry": [geometry[i] for i in cl],
    }


def _count_in(query: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """How often each value of ``query`` occurs in ``pool``."""
    s = np.sort(pool)
    return np.searchsorted(s, query, side="right") - np.searchsorted(s, query, side="left")


def _first_of(query: np.ndarray, pool: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``value`` of the entry of ``pool`` equal to each ``query`` (any: they share it), -1 if none."""
    order = np.argsort(pool, kind="stable")
    s = pool[order]
    pos = np.searchsorted(s, query)
    ok = pos < s.size
    ok[ok] = s[pos[ok]] == query[ok]
    out = np.full(query.size, -1, dtype=np.int64)
    out[ok] = value[order[pos[ok]]]
    return out


def _edge_attrs(e: int, elen: list, ew: list, erev: list, way_osmid: list, way_tags: list,
                way_oneway: list) -> dict[str, Any]:
    """An unsimplified edge's attributes (the ones later steps read), as osmnx gives them."""
    p = ew[e]
    d: dict[str, Any] = {"osmid": way_osmid[p], **way_tags[p]}
    d["oneway"] = way_oneway[p]
    d["reversed"] = erev[e]
    d["length"] = elen[e]
    return d


def _merge(segs: list[int], elen: list, ew: list, erev: list, way_osmid: list, way_tags: list,
           way_oneway: list) -> dict[str, Any]:
    """A simplified path's attributes: osmnx's merge, then the fixed list order of clean_graph."""
    ways = [ew[e] for e in segs]
    out: dict[str, Any] = {"length": sum(elen[e] for e in segs)}
    if all(w == ways[0] for w in ways):  # one way: every value agrees but ``reversed``
        p = ways[0]
        out["osmid"] = way_osmid[p]
        out.update(way_tags[p])
        out["oneway"] = way_oneway[p]
        revs = {erev[e] for e in segs}
        out["reversed"] = revs.pop() if len(revs) == 1 else canonical_tag_list("reversed", list(revs))
        return out
    values: dict[str, list] = {"osmid": [way_osmid[p] for p in ways]}
    for k in _TAGS:
        vals = [way_tags[p][k] for p in ways if k in way_tags[p]]
        if vals:
            values[k] = vals
    values["oneway"] = [way_oneway[p] for p in ways]
    values["reversed"] = [erev[e] for e in segs]
    for k, vals in values.items():
        uniq = set(vals)
        out[k] = vals[0] if len(uniq) == 1 else canonical_tag_list(k, list(uniq))
    return out


def _restore_reversed_geometry(u: np.ndarray, v: np.ndarray, key: np.ndarray, attrs: list[dict[str, Any]],
                               geom_path: list) -> int:
    """:func:`twin.network.clean.restore_reversed_geometry` on the link table (links in osmnx's
    edge order): a reversed link without a shape takes the node path of a link back with the same
    ``osmid`` and ``length`` (the same key first, then by key), turned round. Edits ``geom_path``;
    returns the number of links given a shape."""
    cand = [i for i in range(u.size) if geom_path[i] is None and attrs[i].get("reversed") is True]
    if not cand:
        return 0
    by_pair: dict[tuple[int, int], dict[int, int]] = {}
    for i, (a, b, k) in enumerate(zip(u.tolist(), v.tolist(), key.tolist())):
        by_pair.setdefault((a, b), {})[k] = i
    n_done = 0
    for i in cand:
        d = attrs[i]
        fwd = by_pair.get((int(v[i]), int(u[i])))
        if not fwd:
            continue
        k = int(key[i])
        for kk in ([k] if k in fwd else []) + sorted((x for x in fwd if x != k), key=str):
            j = fwd[kk]
            f = attrs[j]
            if geom_path[j] is None or f.get("osmid") != d.get("osmid") or f.get("length") != d.get("length"):
                continue
            geom_path[i] = list(reversed(geom_path[j]))
            n_done += 1
            break
    return n_done


def _osmnx_speeds(attrs: list[dict[str, Any]]) -> np.ndarray:
    """Speeds (km/h) as clean_graph's call of ``osmnx.add_edge_speeds`` gives them, links in
    osmnx's edge order (the per-class means are summed in that order)."""
    import pandas as pd
    from osmnx.routing import _clean_maxspeed, _collapse_multiple_maxspeed_values

    first = []
    has = []
    for a in attrs:
        if a.get("highway") is None:
            a["highway"] = "road"
        h = a["highway"]
        first.append(str(h[0] if isinstance(h, list) else h))
        has.append(a.get("maxspeed") is not None)
    hwy_speeds = untagged_class_speeds(first, has)
    # osmnx.routing.add_edge_speeds, step by step, on the same columns
    fallback = FALLBACK_SPEED_KPH
    agg = np.mean
    edges = pd.DataFrame([{"highway": a["highway"], "maxspeed": a["maxspeed"]} if "maxspeed" in a
                          else {"highway": a["highway"]} for a in attrs])
    edges["highway"] = edges["highway"].map(lambda x: x[0] if isinstance(x, list) else x)
    if "maxspeed" in edges.columns:
        edges["maxspeed"] = edges["maxspeed"].apply(_collapse_multiple_maxspeed_values, agg=agg)
        edges["speed_kph"] = edges["maxspeed"].astype(str).map(_clean_maxspeed).astype(float)
    else:
        edges["speed_kph"] = np.nan  # float: no object column to downcast
    hwy_speed_avg = pd.Series(hwy_speeds).dropna()
    for hwy, group in edges.groupby("highway"):
        if hwy not in hwy_speed_avg:
            hwy_speed_avg.loc[hwy] = agg(group["speed_kph"])
    hwy_speed_avg = hwy_speed_avg.fillna(fallback).fillna(agg(hwy_speed_avg))
    speed_kph = edges[["highway", "speed_kph"]].set_index("highway").iloc[:, 0].fillna(hwy_speed_avg)
    s = np.array(speed_kph.to_numpy(), dtype=np.float64)
    bad = ~np.isfinite(s) | (s <= 0)
    s[bad] = FALLBACK_SPEED_KPH
    return s


def _geometries(geom_path: list, nlon: np.ndarray, nlat: np.ndarray) -> list:
    """shapely LineStrings of the simplified links' node paths (``None``: the chord)."""
    import shapely

    idx = [i for i, g in enumerate(geom_path) if g is not None]
    out: list = [None] * len(geom_path)
    if not idx:
        return out
    verts = np.concatenate([np.asarray(geom_path[i], dtype=np.int64) for i in idx])
    counts = np.array([len(geom_path[i]) for i in idx])
    lines = shapely.linestrings(np.column_stack([nlon[verts], nlat[verts]]),
                                indices=np.repeat(np.arange(len(idx)), counts))
    for j, i in enumerate(idx):
        out[i] = lines[j]
    return out


def build_network(
    source: str | Path | MapSource,
    network_type: str = "drive",
    *,
    source_label: str | None = None,
    **clean_options: Any,
) -> Any:
    """Read an OSM file and compile it into a :class:`~twin.network.RoadNetwork` (no cache).

    Parameters
    ----------
    source
        An OSM file (``.osm``, ``.osm.bz2``, ``.osm.gz``, ``.osm.pbf``), or a catalogue name or
        :class:`~twin.maps.MapSource` resolving to one.
    network_type
        ``"drive"``, ``"walk"``, ``"bike"`` or ``"all"``.
    source_label
        The network's :attr:`~twin.network.RoadNetwork.source` (default: what ``source`` says).
    **clean_options
        ``min_length_m``, ``walk_speed_kph``, ``bike_speed_kph`` (as for
        :func:`~twin.network.clean.clean_graph`).

    Raises
    ------
    MapError
        Not an OSM file; MapFormatError, NoDrivableRoadError: as :func:`twin.maps.load_raw`.
    """
    from twin.network.road_network import RoadNetwork

    if network_type not in NETWORK_TYPES:
        raise MapError(f"network_type must be one of {', '.join(NETWORK_TYPES)}, got {network_type!r}")
    src = source if isinstance(source, MapSource) else resolve_source(source)
    if src.kind != "osm" or src.path is None:
        raise MapError(f"{src.label}: build_network reads OSM files; {src.kind} sources go through osmnx "
                       "(RoadNetwork.load)")
    from twin.maps import no_road_message

    ext = read_osm(src.path, network_type)
    if not ext.ways:
        raise NoDrivableRoadError(no_road_message(src.path, ext, network_type))
    cols = links_from_extract(ext, network_type, label=str(src.path), **clean_options)
    label = source_label if source_label is not None else str(src.label)
    return RoadNetwork.compile(**cols, network_type=network_type, source=label, buildings=Buildings.from_extract(ext))
