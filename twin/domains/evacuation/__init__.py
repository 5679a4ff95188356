"""Evacuation: hazards that spread, orders, shelters with capacity, closures (issue 14, in progress).

Modules: :mod:`~twin.domains.evacuation.hazards` (hazard areas and their stages, the links and
nodes they reach), :mod:`~twin.domains.evacuation.bounds` (the quickest-evacuation lower bound on
the time-expanded network).
"""
