"""Building blocks of the energy domain: array-level models of rooftop PV, batteries, building loads
and the distribution feeder, each usable (and tested) on its own.

This package is not a domain yet: nothing here registers a domain, a scenario section or a phase,
and importing it imports none of the energy libraries (pvlib, pandapower, demandlib); each module
imports what it needs.

* :mod:`twin.domains.energy.pv`: rooftop PV power by pvlib's PVWatts chain (clear sky or a weather
  year such as a TMY3 file), one profile per orientation scaled by each roof's kWp;
* :mod:`twin.domains.energy.battery`: batteries of many buildings as arrays, per-step controllers
  (self-consumption, peak shaving, time-of-use arbitrage) and the building's power balance;
* :mod:`twin.domains.energy.load`: building electricity demand from the BDEW standard load profiles
  (demandlib) scaled by floor area, and its modulation by occupancy;
* :mod:`twin.domains.energy.grid`: an adapter that runs a pandapower power flow with given loads and
  returns losses, the lowest voltage and line loadings.
"""
