"""An adapter to pandapower: the AC power flow of a distribution feeder with given loads.

The model
---------
The feeder is a pandapower network (``pandapowerNet``: buses, lines, transformers, an external grid
as the slack, and loads at the buses). :func:`run_power_flow` writes the loads' active and
reactive powers of a step into ``net.load``, solves the balanced AC power flow
(:func:`pandapower.runpp`, Newton–Raphson by default) and returns the few figures a city model
watches: the losses in the branches, the lowest bus voltage and where it is, and the loading of
every line against its thermal rating.

Nothing of the power flow is hand-written: pandapower's solver is validated against the standard
test feeders (``pandapower.networks``) and other tools; what is here is the interface in arrays
and units of kW. pandapower is imported inside the functions: it takes seconds to import and is
needed only when a feeder is solved.

``net`` is the feeder's state and is updated in place: its load table takes the given powers and
its result tables (``res_*``) the solution, as with :func:`pandapower.runpp` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from pandapower.auxiliary import pandapowerNet

__all__ = ["PowerFlowResult", "run_power_flow"]

FloatArray = npt.NDArray[np.float64]
#: Result tables of branches whose ``pl_mw`` column holds their active-power losses.
_BRANCH_RESULTS = ("res_line", "res_trafo", "res_trafo3w", "res_impedance", "res_dcline")


@dataclass(frozen=True)
class PowerFlowResult:
    """The solved state of a feeder.

    Attributes
    ----------
    losses_kw
        Active-power losses in all branches (lines, transformers, impedances, DC lines) (kW).
    min_vm_pu, max_vm_pu
        Lowest and highest voltage magnitude of the in-service buses (per unit).
    min_vm_bus
        Index (``net.bus`` label) of the bus with the lowest voltage.
    vm_pu
        Voltage magnitude of every bus (per unit), float64, shape ``(len(net.bus),)`` in
        ``net.bus`` order; NaN for buses out of service.
    line_loading_pct
        Loading of every line (current over its thermal rating, %), float64, shape
        ``(len(net.line),)`` in ``net.line`` order.
    max_line_loading_pct
        The largest of them (0 without lines).
    grid_import_kw
        Active power drawn from the external grid(s) (kW; negative: fed back).
    """

    losses_kw: float
    min_vm_pu: float
    max_vm_pu: float
    min_vm_bus: int
    vm_pu: FloatArray
    line_loading_pct: FloatArray
    max_line_loading_pct: float
    grid_import_kw: float


def _by_load(net: pandapowerNet, values: npt.ArrayLike | Mapping[int, float] | pd.Series, name: str) -> FloatArray:
    """``values`` as a float64 array in ``net.load`` order (a Series or mapping aligned by load index)."""
    index = net.load.index
    if isinstance(values, pd.Series | Mapping):
        series = pd.Series(values, dtype=np.float64) if isinstance(values, Mapping) else values.astype(np.float64)
        missing = index.difference(series.index)
        extra = series.index.difference(index)
        if len(missing) or len(extra):
            raise ValueError(f"{name} must give a value for each load index: missing {list(missing)[:5]}, "
                             f"unknown {list(extra)[:5]}")
        arr = series.reindex(index).to_numpy(dtype=np.float64)
    else:
        arr = np.asarray(values, dtype=np.float64)
        if arr.shape != (len(index),):
            raise ValueError(f"{name} must be of shape ({len(index)},) (one value per load), not {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    out: FloatArray = np.asarray(arr, dtype=np.float64)
    return out


def run_power_flow(net: pandapowerNet, p_mw_by_load: npt.ArrayLike | Mapping[int, float] | pd.Series | None = None,
                   q_mvar_by_load: npt.ArrayLike | Mapping[int, float] | pd.Series | None = None, *,
                   algorithm: str = "nr", **runpp_kwargs: Any) -> PowerFlowResult:
    """Set the loads, solve the AC power flow and summarise it.

    Parameters
    ----------
    net
        A pandapower network; updated in place (loads and results).
    p_mw_by_load, q_mvar_by_load
        Active (MW) and reactive (Mvar) power of each load: an array in ``net.load`` order, or a
        Series or mapping keyed by ``net.load`` index; ``None`` keeps the net's values.
    algorithm
        pandapower's solver (``"nr"``: Newton–Raphson; ``"bfsw"``: backward/forward sweep for radial
        feeders; ...).
    **runpp_kwargs
        Passed to :func:`pandapower.runpp`.

    Returns
    -------
    PowerFlowResult

    Raises
    ------
    pandapower.powerflow.LoadflowNotConverged
        The power flow did not converge (an overloaded or badly defined feeder).
    """
    import pandapower as pp

    if p_mw_by_load is not None:
        net.load["p_mw"] = _by_load(net, p_mw_by_load, "p_mw_by_load")
    if q_mvar_by_load is not None:
        net.load["q_mvar"] = _by_load(net, q_mvar_by_load, "q_mvar_by_load")
    pp.runpp(net, algorithm=algorithm, **runpp_kwargs)

    losses_mw = 0.0
    for table in _BRANCH_RESULTS:
        res = net[table] if table in net else None
        if res is not None and len(res) and "pl_mw" in res.columns:
            losses_mw += float(np.nansum(res["pl_mw"].to_numpy(dtype=np.float64)))
    vm = net.res_bus["vm_pu"].reindex(net.bus.index).to_numpy(dtype=np.float64)
    if not np.any(np.isfinite(vm)):
        raise ValueError("the power flow gave no bus voltage (no bus in service?)")
    i_min = int(np.nanargmin(vm))
    loading = (net.res_line["loading_percent"].reindex(net.line.index).to_numpy(dtype=np.float64)
               if len(net.line) else np.zeros(0, dtype=np.float64))
    return PowerFlowResult(
        losses_kw=losses_mw * 1000.0,
        min_vm_pu=float(vm[i_min]),
        max_vm_pu=float(np.nanmax(vm)),
        min_vm_bus=int(net.bus.index[i_min]),
        vm_pu=vm,
        line_loading_pct=loading,
        max_line_loading_pct=float(np.nanmax(loading)) if len(loading) and np.any(np.isfinite(loading)) else 0.0,
        grid_import_kw=float(np.nansum(net.res_ext_grid["p_mw"].to_numpy(dtype=np.float64))) * 1000.0,
    )
