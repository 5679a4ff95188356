"""Preflight: everything ``twin run`` needs, checked before anything is simulated.

``twin validate`` means "will run": it calls :func:`check_runnable`, which resolves and loads the map
the way a run does (the file, the catalogue, the network cache, a download when online), fails
with the file name a catalogue entry expects when it is not available offline, and binds the
scenario's policies to the network (a policy that selects no link is an error naming it).
``twin run`` calls the same function first, so a run fails in seconds, not after the population
has been built, and names the scenario file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twin._errors import MapError, ScenarioError
from twin.scenario import Scenario

__all__ = ["check_runnable"]


def _networks(sc: Scenario) -> tuple[str, ...]:
    return ("drive",) + tuple(m for m in ("walk", "bike") if m in sc.modes.available)


def check_runnable(sc: Scenario, path: str | Path | None = None, *, load_network: bool = True) -> Any:
    """Check that ``sc`` (read from ``path``) will run on this machine now.

    Parameters
    ----------
    sc
        A validated scenario (paths resolved, as :func:`twin.scenario.load_scenario` returns it).
    path
        The scenario file, named in the messages.
    load_network
        Also load (from the cache, or build and cache) the drive network and bind the policies to it.

    Returns
    -------
    RoadNetwork or None
        The drive network when ``load_network`` (a run reuses it).

    Raises
    ------
    ScenarioError
        ``path: map.source: ...`` (map missing, damaged, or not available offline) or
        ``path: policies.N: ... selects no link ...``.
    """
    from twin.maps import availability_problem

    problem = availability_problem(sc.map.source, _networks(sc))
    if problem is not None:
        raise ScenarioError(path, [("map.source", problem)])
    if not load_network:
        return None
    import time

    from twin.domains.mobility.policies import PolicySet
    from twin.model import load_network as _load

    t0 = time.perf_counter()
    try:
        net = _load(sc)
    except MapError as exc:
        raise ScenarioError(path, [("map.source", str(exc))]) from None
    net.meta["preflight_load_s"] = time.perf_counter() - t0  # a run given this network counts it
    if sc.policies:
        try:
            PolicySet(sc.policies, net)
        except ScenarioError as exc:
            raise ScenarioError(path, exc.problems) from None
    from twin.domains.base import get_domain
    from twin.registry import DOMAINS

    problems: list[tuple[str, str]] = []
    for name in DOMAINS.classes():  # each installed domain's own checks (twin.domains.base.Domain.preflight)
        problems += get_domain(name).preflight(sc.section(name), sc, net)
    if problems:
        raise ScenarioError(path, problems)
    return net
