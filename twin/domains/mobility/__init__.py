"""Mobility domain: policies (link changes, road pricing), mode choice and plug-in modes."""

from twin.domains.mobility.mode_choice import MODES, choose_modes, tour_utilities
from twin.domains.mobility.modes import ModeOptions, ModeProvider, TeleportTaxi, register_mode
from twin.domains.mobility.policies import PolicySet

__all__ = ["MODES", "ModeOptions", "ModeProvider", "PolicySet", "TeleportTaxi", "choose_modes", "register_mode",
           "tour_utilities"]
