"""Road networks: cleaning (:mod:`twin.network.clean`), reading and cleaning a map
(:mod:`twin.network.load`), compiling OSM files straight into arrays (:mod:`twin.network.build`),
arrays (:class:`RoadNetwork`), the buildings table (:mod:`twin.network.buildings`) and routing."""

from twin.network.buildings import BuildingTable
from twin.network.road_network import RoadNetwork

__all__ = ["BuildingTable", "RoadNetwork"]
