"""Road networks: cleaning (:mod:`twin.network.clean`), arrays (:class:`RoadNetwork`) and routing."""

from twin.network.road_network import RoadNetwork

__all__ = ["RoadNetwork"]
