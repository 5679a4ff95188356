"""Read a map and clean it into a routable graph: the network layer's entry point to :mod:`twin.maps`.

:mod:`twin.maps` finds and reads OpenStreetMap data (catalogue, files, downloads, the highway
filters, building footprints) and knows nothing of networks; this module adds the cleaning of
:mod:`twin.network.clean`. :meth:`twin.network.RoadNetwork.load` goes one step further and compiles
the cleaned graph into arrays (cached on disk).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx

from twin.maps import MapSource, load_raw
from twin.network.clean import clean_graph

__all__ = ["load_map"]


def load_map(source: str | Path | MapSource, network_type: str = "drive", **clean_options: Any) -> nx.MultiDiGraph:
    """Load and clean a road network from any supported source.

    Parameters
    ----------
    source
        A map file, a catalogue name, ``place:NAME`` or ``bbox:W,S,E,N`` (see :mod:`twin.maps`).
    network_type
        ``"drive"``, ``"walk"``, ``"bike"`` or ``"all"``; osmnx's highway filters.
    **clean_options
        Passed to :func:`twin.network.clean.clean_graph` (``min_length_m``, ...).

    Returns
    -------
    networkx.MultiDiGraph
        Cleaned graph: strongly connected (drive), positive ``length``, ``speed_kph``,
        ``travel_time`` (s), ``lanes_n``, ``capacity_vph`` and ``storage_veh`` on every edge.

    Raises
    ------
    twin._errors.MapError
        A missing, unreadable or empty map (see :func:`twin.maps.load_raw`).
    """
    G, _, src = load_raw(source, network_type)
    return clean_graph(G, network_type=network_type, label=str(src.path or src.label), **clean_options)
