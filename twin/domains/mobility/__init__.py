"""Mobility domain: residents' trips, mode choice, plug-in modes, policies and the queue kernel.

The names below are imported on first use, so that importing a submodule (the scenario schema reads
the mode registry) does not import the rest of the domain.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["MODES", "ModeOptions", "ModeProvider", "PolicySet", "TeleportTaxi", "choose_modes", "register_mode",
           "tour_utilities", "MobilityDomain"]

_WHERE = {
    "MODES": "mode_choice", "choose_modes": "mode_choice", "tour_utilities": "mode_choice",
    "ModeOptions": "modes", "ModeProvider": "modes", "TeleportTaxi": "modes", "register_mode": "modes",
    "PolicySet": "policies", "MobilityDomain": "domain",
}


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'twin.domains.mobility' has no attribute {name!r}")
    return getattr(importlib.import_module(f"twin.domains.mobility.{mod}"), name)
