"""Mobility policies as small pluggable classes, applied to link arrays by time.

Each scenario policy (``twin.scenario.LinkChangePolicy``, ``RoadPricingPolicy``) becomes an object
with ``select(net) -> bool mask`` and an effect on the link arrays at a given time:

* link changes scale capacity and speed, or close links (routing cost infinite, capacity ~0);
* road pricing puts a money charge on links (cordon: links entering the area; distance: per km on
  links inside it; link: per passage of given ways), which routing and mode choice turn into time
  through the value of time.

A policy that selects no link of the network is an error naming it (``policies.N``): a cordon
drawn off the map or a misspelt way id would otherwise run without a word and change nothing.

Add a policy: write a class with ``select``, ``active(t0_s, t1_s)`` and ``apply(arrays)`` and
register it in :data:`POLICY_CLASSES` under its scenario ``type``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from twin._errors import ScenarioError
from twin.network.road_network import RoadNetwork

if TYPE_CHECKING:  # pragma: no cover
    from twin.scenario import LinkChangePolicy, RoadPricingPolicy

    #: a scenario's ``policies`` entry
    PolicyConfig: TypeAlias = LinkChangePolicy | RoadPricingPolicy
    #: ``[W, S, E, N]`` in degrees
    BboxTuple: TypeAlias = tuple[float, float, float, float]

__all__ = ["LinkArrays", "LinkChange", "RoadPricing", "PolicySet", "POLICY_CLASSES", "CLOSED_CAPACITY_FACTOR"]

CLOSED_CAPACITY_FACTOR = 1e-6  # a closed link lets (almost) nobody through; vehicles on it wait or get stuck


@dataclass
class LinkArrays:
    """Per-link multipliers and charges in force over a time interval."""

    capacity_factor: np.ndarray  # float64 (L,)
    speed_factor: np.ndarray  # float64 (L,)
    closed: np.ndarray  # bool (L,)
    toll: np.ndarray  # float64 (L,), money per passage

    @classmethod
    def neutral(cls, n_links: int) -> LinkArrays:
        return cls(np.ones(n_links), np.ones(n_links), np.zeros(n_links, dtype=bool), np.zeros(n_links))

    def key(self) -> bytes:
        """Identifies equal states (to share routing trees across time bins)."""
        return (self.capacity_factor.tobytes() + self.speed_factor.tobytes() + self.closed.tobytes()
                + self.toll.tobytes())


def _in_bbox(net: RoadNetwork, bbox: BboxTuple) -> np.ndarray:
    w, s, e, n = bbox
    return (net.node_lon >= w) & (net.node_lon <= e) & (net.node_lat >= s) & (net.node_lat <= n)


class _Policy:
    def __init__(self, cfg: PolicyConfig, net: RoadNetwork) -> None:
        self.cfg = cfg
        self.mask = self.select(net)
        self.n_links = int(self.mask.sum())

    def select(self, net: RoadNetwork) -> np.ndarray:
        raise NotImplementedError

    def active(self, t0_s: float, t1_s: float) -> bool:
        """True when the policy's window overlaps [t0_s, t1_s)."""
        return self.cfg.from_s < t1_s and t0_s < self.cfg.to_s

    def apply(self, arrays: LinkArrays, net: RoadNetwork) -> None:
        raise NotImplementedError


def _select_links(net: RoadNetwork, osm_way_ids: Sequence[int], links: Sequence[tuple[int, int]],
                  bbox: BboxTuple | None) -> np.ndarray:
    mask = np.zeros(net.n_links, dtype=bool)
    if osm_way_ids:
        mask |= np.isin(net.link_osmid, np.asarray(osm_way_ids, dtype=np.int64))
    if links:
        u = net.node_osmid[net.link_tail]
        v = net.node_osmid[net.link_head]
        for a, b in links:
            mask |= (u == a) & (v == b)
    if bbox is not None:
        inside = _in_bbox(net, bbox)
        mask |= inside[net.link_tail] & inside[net.link_head]
    return mask


class LinkChange(_Policy):
    """Close links or scale their capacity and speed during a window."""

    cfg: LinkChangePolicy

    def select(self, net: RoadNetwork) -> np.ndarray:
        c = self.cfg
        return _select_links(net, c.osm_way_ids, c.links, c.bbox)

    def apply(self, arrays: LinkArrays, net: RoadNetwork) -> None:
        c = self.cfg
        if c.closed:
            arrays.closed |= self.mask
        arrays.capacity_factor[self.mask] *= c.capacity_factor
        arrays.speed_factor[self.mask] *= c.speed_factor


class RoadPricing(_Policy):
    """Cordon, distance or link charges during a window."""

    cfg: RoadPricingPolicy

    def select(self, net: RoadNetwork) -> np.ndarray:
        c = self.cfg
        if c.kind == "link":
            return _select_links(net, c.osm_way_ids, [], None)
        assert c.bbox is not None  # validated: kinds cordon and distance need a bbox
        inside = _in_bbox(net, c.bbox)
        sel: np.ndarray
        if c.kind == "cordon":
            sel = ~inside[net.link_tail] & inside[net.link_head]
            return sel
        sel = inside[net.link_tail] & inside[net.link_head]
        return sel

    def apply(self, arrays: LinkArrays, net: RoadNetwork) -> None:
        c = self.cfg
        if c.kind == "distance":
            arrays.toll[self.mask] += c.price * net.link_length_m[self.mask] / 1000.0
        else:
            arrays.toll[self.mask] += c.price


POLICY_CLASSES: dict[str, type[_Policy]] = {"link_change": LinkChange, "road_pricing": RoadPricing}


def _extent(net: RoadNetwork) -> str:
    return (f"[{net.node_lon.min():.4f}, {net.node_lat.min():.4f}, {net.node_lon.max():.4f}, "
            f"{net.node_lat.max():.4f}]")


def _why_empty(cfg: PolicyConfig, net: RoadNetwork) -> str:
    """Why a policy's selection is empty, in words a user can act on."""
    parts = []
    bbox = getattr(cfg, "bbox", None)
    if bbox is not None:
        inside = int(_in_bbox(net, bbox).sum())
        if inside == 0:
            parts.append(f"bbox {list(bbox)} holds no node of the network (the map spans {_extent(net)} as "
                         "[W, S, E, N])")
        elif getattr(cfg, "kind", None) == "cordon" and inside == net.n_nodes:
            parts.append(f"bbox {list(bbox)} holds the whole network, so no link enters it")
        else:
            ends = "its head but not its tail" if getattr(cfg, "kind", None) == "cordon" else "both ends"
            parts.append(f"no link has {ends} in bbox {list(bbox)}")
    ways = list(getattr(cfg, "osm_way_ids", []) or [])
    if ways:
        shown = ", ".join(str(w) for w in ways[:5]) + (", ..." if len(ways) > 5 else "")
        parts.append(f"no link of the drive network belongs to OSM way(s) {shown}")
    links = list(getattr(cfg, "links", []) or [])
    if links:
        parts.append(f"no link joins the OSM node pair(s) {links[:3]}")
    return "; ".join(parts) or "nothing selected"


class PolicySet:
    """All policies of a scenario, bound to a network."""

    def __init__(self, policies: Iterable[PolicyConfig], net: RoadNetwork) -> None:
        self.net = net
        self.policies = [POLICY_CLASSES[p.type](p, net) for p in policies]
        problems = [(f"policies.{i}", f"{p.cfg.name!r} selects no link of the map: {_why_empty(p.cfg, net)}")
                    for i, p in enumerate(self.policies) if p.n_links == 0]
        if problems:
            raise ScenarioError(None, problems)

    def __len__(self) -> int:
        return len(self.policies)

    def arrays(self, t0_s: float, t1_s: float) -> LinkArrays:
        """The link state in force over [t0_s, t1_s) (a policy active for part of it counts)."""
        a = LinkArrays.neutral(self.net.n_links)
        for p in self.policies:
            if p.active(t0_s, t1_s):
                p.apply(a, self.net)
        return a

    def summary(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per policy (``network.json``'s ``policies``, read by the report):
        ``type``, ``name``, ``links`` (how many links it selects), ``from_s``/``to_s`` (seconds),
        what it does (link_change: ``closed``, ``capacity_factor``, ``speed_factor``; road_pricing:
        ``kind``, ``price``), ``bbox`` [W, S, E, N] when it has one, and ``link_ids`` (the selected
        link ids, ascending: the report draws them)."""
        out = []
        for p in self.policies:
            c = p.cfg
            d: dict[str, Any] = {"type": c.type, "name": c.name, "links": p.n_links, "from_s": c.from_s, "to_s": c.to_s}
            if c.type == "road_pricing":
                d.update(kind=c.kind, price=c.price)
            else:
                for k in ("closed", "capacity_factor", "speed_factor"):
                    if hasattr(c, k):
                        d[k] = getattr(c, k)
            if c.bbox is not None:  # both kinds of policy have a bbox field
                d["bbox"] = [float(v) for v in c.bbox]
            d["link_ids"] = np.flatnonzero(p.mask).tolist()
            out.append(d)
        return out
