"""Synthetic population: households and residents with homes, jobs, schools and cars.

Everything is drawn from numpy Generators handed in by the caller (one stream per purpose, spawned
from the scenario seed), so a seed gives the same population on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin._errors import ScenarioError
from twin.network.road_network import RoadNetwork
from twin.scenario import PopulationConfig, TimeDistribution

__all__ = ["Population", "AGE_CHILD", "AGE_ADULT", "AGE_SENIOR", "BUILDING_STREAM", "MIN_BUILDING_NODE_SHARE",
           "building_rng", "draw_buildings", "placement_p", "synthesize_population", "sample_times",
           "grid_home_weights", "usable_weights"]

AGE_CHILD, AGE_ADULT, AGE_SENIOR = 0, 1, 2


@dataclass
class Population:
    """Residents as columns (struct of arrays), one row per resident.

    Attributes
    ----------
    household : int64 (n,)
    home_node, work_node, school_node : int32 (n,), network node indices (-1: none)
    age_group : int8 (n,), AGE_CHILD / AGE_ADULT / AGE_SENIOR
    employed, student, can_drive : bool (n,)
    home_building, work_building : int64 (n,)
        Rows of the network's building table (:attr:`twin.network.RoadNetwork.buildings`): the
        building a resident lives in (the same for a whole household) and works in (-1: no
        workplace). Each snaps to ``home_node`` / ``work_node``; it is an OSM building of a kind
        that holds homes (jobs) or, where the node has none, the node's synthetic building.
        ``None`` when constructing means -1 everywhere.
    """

    household: np.ndarray
    home_node: np.ndarray
    age_group: np.ndarray
    employed: np.ndarray
    student: np.ndarray
    can_drive: np.ndarray
    work_node: np.ndarray
    school_node: np.ndarray
    home_building: np.ndarray | None = None
    work_building: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("home_building", "work_building"):
            if getattr(self, name) is None:
                setattr(self, name, np.full(self.home_node.shape[0], -1, dtype=np.int64))

    @property
    def n(self) -> int:
        return int(self.home_node.shape[0])


#: ``placement: buildings`` weights nodes by a kind of building only when those buildings snap to at
#: least this share of the network's nodes; else (as when the map has none) the fallback kind, then
#: uniform. A highway-only extract with a handful of buildings (Porto: 9 kiosks and toll booths on
#: 50,521 nodes) would otherwise put every home and job on those few nodes.
MIN_BUILDING_NODE_SHARE = 0.01


def usable_weights(w: np.ndarray, min_node_share: float = MIN_BUILDING_NODE_SHARE) -> bool:
    """True when node weights ``w`` are positive somewhere and on at least ``min_node_share`` of
    the nodes (see :data:`MIN_BUILDING_NODE_SHARE`)."""
    return bool(w.sum() > 0) and np.count_nonzero(w) >= min_node_share * w.shape[0]


def placement_p(w: np.ndarray, placement: str, fallback: np.ndarray | None = None, *,
                min_node_share: float = MIN_BUILDING_NODE_SHARE) -> np.ndarray:
    """Node probabilities of a placement: ``w`` normalised when ``placement == "buildings"`` and
    :func:`usable_weights`, else ``fallback`` when usable, else uniform."""
    if placement == "buildings":
        for x in (w, fallback):
            if x is not None and usable_weights(x, min_node_share):
                return x / x.sum()
    return np.full(w.shape[0], 1.0 / w.shape[0])


_p = placement_p


def grid_home_weights(net: RoadNetwork, path: str | Path, column: str) -> np.ndarray:
    """Home weight per node from a population grid: each cell's population is shared among the
    nodes inside it, in proportion to their residential buildings (equally when it has none)."""
    import geopandas as gpd
    from shapely import points

    try:
        cells = gpd.read_file(path)
    except Exception as exc:
        why = str(exc).splitlines()[0][:120]
        raise ScenarioError(None, [("population.grid", f"cannot read {path}: {why}")]) from None
    if column not in cells.columns:
        raise ScenarioError(None, [("population.grid_population_column",
                                    f"{path} has no column {column!r}; columns: {', '.join(map(str, cells.columns))}")])
    cells = cells.to_crs("EPSG:4326") if cells.crs is not None else cells
    pts = gpd.GeoDataFrame({"node": np.arange(net.n_nodes)}, geometry=points(net.node_lon, net.node_lat),
                           crs="EPSG:4326")
    joined = gpd.sjoin(pts, cells[[column, "geometry"]], how="inner", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    w = np.zeros(net.n_nodes)
    if joined.empty:
        return w
    node = joined["node"].to_numpy()
    cell = joined["index_right"].to_numpy()
    pop = joined[column].to_numpy(dtype=np.float64)
    bw = net.node_home_weight[node]
    # per cell: share by building weight where the cell has buildings, else equally
    _, inv = np.unique(cell, return_inverse=True)
    bsum = np.bincount(inv, weights=bw)
    cnt = np.bincount(inv)
    share = np.where(bsum[inv] > 0, bw / np.where(bsum[inv] > 0, bsum[inv], 1.0), 1.0 / cnt[inv])
    np.add.at(w, node, pop * share)
    return w


#: name of the random stream (:func:`twin._rng.stream`) that picks residents' buildings
BUILDING_STREAM = "population.buildings"


def building_rng(rng: np.random.Generator) -> np.random.Generator:
    """The generator of stream :data:`BUILDING_STREAM` of the root seed of ``rng``.

    ``rng`` is the population's generator (in a :class:`~twin.model.CityModel`, stream
    ``"population"`` of the scenario seed); its seed sequence's entropy is that root seed, so this
    is ``default_rng(stream(seed, "population.buildings"))``, and no draw is taken from ``rng``.

    Raises
    ------
    ValueError
        ``rng`` has no seed sequence (a bit generator made from a bare state): pass
        ``buildings_rng`` to :func:`synthesize_population` instead.
    """
    from twin._rng import stream

    ss = getattr(rng.bit_generator, "seed_seq", None)
    if not isinstance(ss, np.random.SeedSequence):
        raise ValueError("the population's generator has no seed sequence to derive the buildings stream "
                         "from; pass buildings_rng")
    return np.random.default_rng(stream(ss.entropy, BUILDING_STREAM))


def draw_buildings(net: RoadNetwork, nodes: np.ndarray, role: str, rng: np.random.Generator) -> np.ndarray:
    """One building per entry of ``nodes`` (-1 stays -1), uniformly among the node's candidates.

    Parameters
    ----------
    net
        The network whose :attr:`~twin.network.RoadNetwork.buildings` table is drawn from.
    nodes : int (k,)
        Node indices; -1 means none.
    role
        ``"home"`` or ``"work"`` (:meth:`twin.network.buildings.BuildingTable.at_nodes`).
    rng
        Consumes one uniform per entry (also for -1 entries, so draws do not shift).

    Returns
    -------
    int64 (k,)
        Building ids (rows of the table), -1 where ``nodes`` is -1.
    """
    indptr, cand = net.buildings.at_nodes(role, net.n_nodes)
    nodes = np.asarray(nodes, dtype=np.int64)
    u = rng.random(nodes.shape[0])
    out = np.full(nodes.shape[0], -1, dtype=np.int64)
    ok = nodes >= 0
    v = nodes[ok]
    count = indptr[v + 1] - indptr[v]
    k = np.minimum((u[ok] * count).astype(np.int64), count - 1)
    out[ok] = cand[indptr[v] + k]
    return out


def synthesize_population(
    net: RoadNetwork, cfg: PopulationConfig, rng: np.random.Generator, *, base_dir: Path | None = None,
    buildings_rng: np.random.Generator | None = None,
) -> Population:
    """Draw households and residents (see :class:`~twin.scenario.PopulationConfig`).

    Every node draw comes from ``rng``, in the order it always had. Then each household gets a
    home building at its home node and each employed resident a workplace building at the work
    node (:func:`draw_buildings`), from ``buildings_rng``: by default stream
    ``"population.buildings"`` of ``rng``'s root seed (:func:`building_rng`), so ``rng``'s draws,
    and so every other column, are what they were before residents had buildings.
    """
    n = cfg.residents
    if net.n_nodes < 2:
        raise ValueError("a population needs a network with at least two nodes")
    # households: sizes 1 + Poisson(mean - 1) until n residents are covered
    sizes = 1 + rng.poisson(cfg.household_size_mean - 1.0, size=n)
    cum = np.cumsum(sizes)
    n_hh = int(np.searchsorted(cum, n) + 1)
    sizes = sizes[:n_hh]
    sizes[-1] -= int(cum[n_hh - 1] - n)
    household = np.repeat(np.arange(n_hh, dtype=np.int64), sizes)
    first = np.zeros(n, dtype=bool)
    first[np.concatenate([[0], np.cumsum(sizes)[:-1]])] = True

    home_w = net.node_home_weight
    if cfg.grid:
        gpath = Path(cfg.grid)
        if not gpath.is_absolute() and base_dir is not None and (base_dir / gpath).exists():
            gpath = base_dir / gpath
        home_w = grid_home_weights(net, gpath, cfg.grid_population_column)
        placement = "buildings"
        home_share = 0.0  # a grid says where people live, however few nodes it covers
    else:
        placement = cfg.placement
        home_share = MIN_BUILDING_NODE_SHARE
    hh_home = rng.choice(net.n_nodes, size=n_hh, p=_p(home_w, placement, min_node_share=home_share)).astype(np.int32)
    home = hh_home[household]

    # age groups: the first member of a household is an adult or senior
    u = rng.random(n)
    child_p = np.where(first, 0.0, min(1.0, cfg.child_share * n / max(1, n - n_hh)))
    age = np.where(u < child_p, AGE_CHILD, AGE_ADULT).astype(np.int8)
    u2 = rng.random(n)
    senior_p = cfg.senior_share / max(1e-12, 1.0 - cfg.child_share) if cfg.child_share < 1 else 0.0
    age[(age == AGE_ADULT) & (u2 < senior_p)] = AGE_SENIOR

    u3 = rng.random(n)
    employed = (((age == AGE_ADULT) & (u3 < cfg.employment_rate))
                | ((age == AGE_SENIOR) & (u3 < cfg.senior_employment_rate)))
    u4 = rng.random(n)
    student = (age == AGE_CHILD) | ((age == AGE_ADULT) & ~employed & (u4 < cfg.adult_student_rate))
    hh_car = rng.random(n_hh) < cfg.car_ownership
    can_drive = hh_car[household] & (age != AGE_CHILD)

    work = np.full(n, -1, dtype=np.int32)
    school = np.full(n, -1, dtype=np.int32)
    p_work = _p(net.node_work_weight, cfg.placement)
    p_school = _p(net.node_school_weight, cfg.placement, fallback=net.node_work_weight)
    idx_w = np.flatnonzero(employed)
    work[idx_w] = rng.choice(net.n_nodes, size=idx_w.size, p=p_work)
    idx_s = np.flatnonzero(student)
    school[idx_s] = rng.choice(net.n_nodes, size=idx_s.size, p=p_school)
    for dest, p in ((work, p_work), (school, p_school)):
        same = np.flatnonzero((dest >= 0) & (dest == home))
        for _ in range(100):
            if same.size == 0:
                break
            dest[same] = rng.choice(net.n_nodes, size=same.size, p=p)
            same = same[dest[same] == home[same]]
        if same.size:  # all weight on the home node: use a neighbour index
            dest[same] = (home[same] + 1) % net.n_nodes
    brng = buildings_rng if buildings_rng is not None else building_rng(rng)
    home_building = draw_buildings(net, hh_home, "home", brng)[household]
    work_building = draw_buildings(net, work, "work", brng)
    return Population(household, home, age, employed, student, can_drive, work, school,
                      home_building, work_building)


def sample_times(dist: TimeDistribution, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws (float64 seconds) of a :class:`~twin.scenario.TimeDistribution`.

    Truncated normals use inverse-CDF sampling, so draws never pile up on the bounds. Always
    consumes exactly ``n`` uniforms from ``rng`` (also for ``fixed``), so other draws of the same
    stream do not shift when a distribution changes kind.
    """
    u = rng.random(n)
    if dist.kind == "fixed" or n == 0:
        return np.full(n, float(dist.mean_s))
    if dist.kind == "uniform":
        return dist.min_s + u * (dist.max_s - dist.min_s)
    if dist.std_s == 0:
        return np.full(n, float(dist.mean_s))
    from scipy.stats import norm

    a = norm.cdf((dist.min_s - dist.mean_s) / dist.std_s)
    b = norm.cdf((dist.max_s - dist.mean_s) / dist.std_s)
    x = dist.mean_s + dist.std_s * norm.ppf(a + u * (b - a))
    return np.clip(x, dist.min_s, dist.max_s)
