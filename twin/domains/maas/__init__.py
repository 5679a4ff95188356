"""MaaS fleets: on-demand ride-hailing and ride-pooling vehicles that drive in the same congested
traffic as the residents (the ``maas:`` scenario section, the ``maas`` mode).

* :mod:`twin.domains.maas.config`: operators (fleet, seats, depots, shift, service area, fares,
  limits, dispatcher, rebalancing, electric vehicles) — light, imported when a scenario is validated;
* :mod:`twin.domains.maas.domain`: :class:`~twin.domains.maas.domain.MaasDomain` (the fleets as
  queue-kernel vehicles, requests, outputs) and the ``maas`` mode residents choose;
* :mod:`twin.domains.maas.dispatch`: dispatchers (immediate nearest idle vehicle, batched optimal
  matching, ride-pooling by insertion);
* :mod:`twin.domains.maas.insertion`: the insertion of a request into a vehicle's schedule;
* :mod:`twin.domains.maas.rebalance`: zone-based rebalancing of idle vehicles by min-cost flow.
"""
