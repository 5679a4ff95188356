"""Mobility domain: policies (link changes, road pricing) and mode choice."""

from twin.domains.mobility.mode_choice import MODES, choose_modes, tour_utilities
from twin.domains.mobility.policies import PolicySet

__all__ = ["MODES", "PolicySet", "choose_modes", "tour_utilities"]
