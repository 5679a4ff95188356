"""Routes to shelters and contraflow corridors, on the network's arrays.

* :func:`shelter_tree` — the shortest-path forest from every node to its nearest shelter (one
  multi-source Dijkstra on the reversed graph, scipy): distance, next node, shelter.
* :func:`tree_link_flow` — how many evacuees each link of that forest carries, given where they
  start (each on their path to the nearest shelter).
* :func:`reverse_links` — the opposite-direction twin of each link (two-way streets).
* :func:`auto_corridors` / :func:`way_corridors` — the outbound links whose inbound twins are
  reversed: the busiest two-way arterials of the routes, grown along the routes into corridors, or
  the links of given OSM ways in the direction the routes use.

Contraflow then closes the inbound twin and adds its flow capacity and storage to the outbound
link (:meth:`twin.domains.mobility.MobilityDomain.scale_links`), as in the lane-reversal plans of
US hurricane evacuations (e.g. Wolshon, "One-way-out: contraflow freeway operation for hurricane
evacuation", Natural Hazards Review 2001): all lanes of the corridor outbound.
Corridors are chosen here (no maintained library picks contraflow corridors); the path searches
are scipy's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from twin.network.road_network import RoadNetwork

__all__ = ["ARTERIAL_CLASSES", "auto_corridors", "pair_links", "remaining_use", "reverse_links", "shelter_tree",
           "tree_link_flow", "way_corridors"]

#: road classes eligible for automatic contraflow (secondary and above, with their links)
ARTERIAL_CLASSES = ("motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link", "secondary",
                    "secondary_link")


def pair_links(net: RoadNetwork, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every ordered node pair joined by links: the sorted keys ``tail * n_nodes + head`` and
    the link of least ``weight`` among the parallel ones (finite weights only)."""
    ok = np.flatnonzero(np.isfinite(weight))
    key = net.link_tail[ok].astype(np.int64) * net.n_nodes + net.link_head[ok]
    order = np.lexsort((ok, weight[ok], key))
    key, link = key[order], ok[order]
    first = np.ones(key.size, bool)
    first[1:] = key[1:] != key[:-1]
    return key[first], link[first]


def _lookup(keys: np.ndarray, links: np.ndarray, tail: np.ndarray, head: np.ndarray, n_nodes: int) -> np.ndarray:
    """The link of :func:`pair_links` from each ``tail`` to each ``head`` (-1: none)."""
    if keys.size == 0:
        return np.full(np.size(tail), -1, np.int64)
    q = np.asarray(tail, np.int64) * n_nodes + head
    i = np.minimum(np.searchsorted(keys, q), keys.size - 1)
    return np.where(keys[i] == q, links[i], -1).astype(np.int64)


def shelter_tree(net: RoadNetwork, weight: np.ndarray, shelter_nodes: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shortest paths from every node to its nearest shelter node, by ``weight`` (``inf``: a link
    left out).

    Returns
    -------
    dist_s : float64 (n_nodes,)
        Cost to the nearest shelter (``inf``: none reachable).
    next_node : int64 (n_nodes,)
        The next node on that path (-1 at a shelter or unreachable).
    shelter : int64 (n_nodes,)
        Index into ``shelter_nodes`` of that shelter (-1 unreachable).
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    n = net.n_nodes
    keys, links = pair_links(net, weight)
    if shelter_nodes.size == 0 or keys.size == 0:
        return np.full(n, np.inf), np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    tail, head = keys // n, keys % n
    # reversed graph (shelter -> nodes); zero weights kept as edges by a tiny positive cost
    g = csr_matrix((np.maximum(weight[links], 1e-9), (head, tail)), shape=(n, n))
    dist, pred, source = dijkstra(g, directed=True, indices=shelter_nodes, min_only=True, return_predecessors=True)
    lut = np.full(n, -1, np.int64)
    lut[shelter_nodes[::-1]] = np.arange(shelter_nodes.size)[::-1]  # first listed shelter at a node
    reach = np.isfinite(dist) & (source >= 0)
    shelter = np.where(reach, lut[np.maximum(source, 0)], -1).astype(np.int64)
    nxt = np.where(reach & (pred >= 0), pred, -1).astype(np.int64)
    return np.asarray(dist, np.float64), nxt, shelter


def tree_link_flow(net: RoadNetwork, weight: np.ndarray, dist_s: np.ndarray, next_node: np.ndarray,
                   origin_nodes: np.ndarray) -> np.ndarray:
    """Evacuees on each link when each of ``origin_nodes`` (one per evacuee) takes its path of
    :func:`shelter_tree` to the nearest shelter (float64, per link)."""
    n = net.n_nodes
    flow_node = np.bincount(origin_nodes[origin_nodes >= 0], minlength=n).astype(np.float64)
    order = np.argsort(-np.where(np.isfinite(dist_s), dist_s, -1.0), kind="stable")
    order = order[np.isfinite(dist_s[order]) & (next_node[order] >= 0)]
    # farthest first: a node passes on everything that reached it (a loop over the nodes; the
    # forest's order makes it sequential)
    nxt = next_node.tolist()
    fl = flow_node.tolist()
    for v in order.tolist():
        fl[nxt[v]] += fl[v]
    flow_node = np.asarray(fl)
    keys, links = pair_links(net, weight)
    tree_link = _lookup(keys, links, order, next_node[order], n)
    out = np.zeros(net.n_links, np.float64)
    ok = tree_link >= 0
    out[tree_link[ok]] = flow_node[order[ok]]
    return out


def reverse_links(net: RoadNetwork) -> np.ndarray:
    """The link from each link's head back to its tail (the fastest of parallel ones; -1: one-way)."""
    keys, links = pair_links(net, np.asarray(net.link_fftt_s, np.float64))
    return _lookup(keys, links, net.link_head, net.link_tail, net.n_nodes)


def _eligible(net: RoadNetwork, rev: np.ndarray) -> np.ndarray:
    from twin.network.clean import HIGHWAY_CLASSES

    art = np.array([HIGHWAY_CLASSES.index(c) for c in ARTERIAL_CLASSES])
    out: np.ndarray = (rev >= 0) & np.isin(net.link_class, art)
    return out


def remaining_use(route_links: np.ndarray, start: np.ndarray, end: np.ndarray, n_links: int) -> np.ndarray:
    """How many of the given route pieces ``route_links[start:end]`` (one per vehicle: the links
    still ahead of it) use each link."""
    lens = np.maximum(end - start, 0)
    if lens.sum() == 0:
        return np.zeros(n_links, np.int64)
    first = np.repeat(start - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    idx = first + np.arange(int(lens.sum()))
    return np.bincount(route_links[idx], minlength=n_links)


def auto_corridors(net: RoadNetwork, flow: np.ndarray, next_node: np.ndarray, n_corridors: int,
                   min_share: float = 0.5, rev: np.ndarray | None = None,
                   other_use: np.ndarray | None = None) -> list[np.ndarray]:
    """The ``n_corridors`` busiest corridors: each starts at the eligible link with the most evacuees
    per unit of flow capacity (the longest queue it would hold) not yet taken, and runs on
    downstream (along the routes) and upstream (the busiest link feeding it) while the links are
    eligible and carry at least ``min_share`` of that link's evacuees. Eligible: a two-way
    arterial (:data:`ARTERIAL_CLASSES`) whose inbound twin carries at most a tenth of its
    evacuees (reversing it would turn evacuees away) and, with ``other_use`` (per link, the cars
    whose remaining routes of the day use it), is used by at most as many cars as a tenth of the
    link's evacuees (closing it would push that traffic onto other streets). Links in
    upstream-to-downstream order."""
    rev = reverse_links(net) if rev is None else rev
    r = np.maximum(rev, 0)
    ok = _eligible(net, rev) & (flow > 0) & (flow[r] <= 0.1 * flow)
    if other_use is not None:
        ok &= other_use[r] <= 0.1 * flow
    load = flow / np.maximum(net.link_capacity_vph, 1e-9)
    taken = np.zeros(net.n_links, bool)
    n = net.n_nodes
    # tree links by their tail: the route out of a node
    tree_out = np.full(n, -1, np.int64)
    on_tree = flow > 0
    tree_out[net.link_tail[on_tree]] = np.flatnonzero(on_tree)
    corridors: list[np.ndarray] = []
    for _ in range(n_corridors):
        cand = np.flatnonzero(ok & ~taken & ~taken[np.maximum(rev, 0)])
        if cand.size == 0:
            break
        seed = int(cand[np.lexsort((cand, -load[cand]))[0]])
        floor = min_share * flow[seed]

        def good(m: int, floor: float = floor) -> bool:
            return m >= 0 and bool(ok[m]) and not taken[m] and not taken[rev[m]] and flow[m] >= floor

        chain = [seed]
        taken[seed] = True
        while True:  # downstream
            m = int(tree_out[net.link_head[chain[-1]]])
            if not good(m):
                break
            chain.append(m)
            taken[m] = True
        while True:  # upstream: the busiest tree link into the first link's tail
            into = np.flatnonzero(on_tree & (net.link_head == net.link_tail[chain[0]]))
            if into.size == 0:
                break
            m = int(into[np.lexsort((into, -flow[into]))[0]])
            if not good(m):
                break
            chain.insert(0, m)
            taken[m] = True
        corridors.append(np.array(chain, np.int64))
    return corridors


def way_corridors(net: RoadNetwork, ways: list[int], flow: np.ndarray, away: np.ndarray,
                  rev: np.ndarray | None = None) -> list[np.ndarray]:
    """The links of each OSM way of ``ways`` in its outbound direction: per two-way pair, the link
    with more evacuees on it (``flow``), or on a tie the one whose head is farther from the hazard
    (``away``: per node, larger is safer). One-way links are left out (nothing to reverse). Raises
    ``ValueError`` for a way id with no two-way link on the network."""
    rev = reverse_links(net) if rev is None else rev
    out: list[np.ndarray] = []
    for w in ways:
        ln = np.flatnonzero((net.link_osmid == w) & (rev >= 0))
        if ln.size == 0:
            raise ValueError(f"OSM way {w} has no two-way link on the drive network")
        r = rev[ln]
        score = np.where(flow[ln] != flow[r], flow[ln] - flow[r],
                         away[net.link_head[ln]] - away[net.link_head[r]])
        keep = (score > 0) | ((score == 0) & (ln < r))
        out.append(np.unique(ln[keep]))
    return out
