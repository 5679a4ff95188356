"""The pandapower adapter (twin.domains.energy.grid) on the IEEE 33-bus feeder of Baran & Wu (1989)."""

from __future__ import annotations

import numpy as np
import pandapower.networks as pn
import pytest

from twin.domains.energy.grid import run_power_flow


@pytest.fixture(scope="module")
def case33bw_result():
    net = pn.case33bw()
    return net, run_power_flow(net)


def test_case33bw_losses_and_lowest_voltage(case33bw_result):
    net, res = case33bw_result
    # the published figures of the feeder at its base load (3.715 MW, 2.3 Mvar)
    assert res.losses_kw == pytest.approx(202.68, abs=0.05)
    assert res.min_vm_pu == pytest.approx(0.9131, abs=0.0001)
    assert res.min_vm_bus == 17  # bus 18 in the paper's 1-based numbering, the end of the main feeder
    assert res.vm_pu.shape == (len(net.bus),) and res.line_loading_pct.shape == (len(net.line),)
    assert res.max_vm_pu == pytest.approx(1.0)  # the slack bus
    # the external grid supplies the loads plus the losses
    assert res.grid_import_kw == pytest.approx(1000.0 * net.load.p_mw.sum() + res.losses_kw, abs=1e-6)
    assert np.all(np.isfinite(res.line_loading_pct)) and res.max_line_loading_pct > 0.0


def test_loads_set_by_array_and_by_index():
    net = pn.case33bw()
    base_p = net.load.p_mw.to_numpy().copy()
    base_q = net.load.q_mvar.to_numpy().copy()
    base = run_power_flow(net)
    half = run_power_flow(net, 0.5 * base_p, 0.5 * base_q)
    np.testing.assert_allclose(net.load.p_mw.to_numpy(), 0.5 * base_p)
    # losses fall roughly with the square of the load, voltages rise
    assert 0.2 * base.losses_kw < half.losses_kw < 0.3 * base.losses_kw
    assert half.min_vm_pu > base.min_vm_pu
    # a mapping keyed by load index sets the same values
    by_index = run_power_flow(net, dict(zip(net.load.index, base_p)), dict(zip(net.load.index, base_q)))
    assert by_index.losses_kw == pytest.approx(base.losses_kw, rel=1e-9)
    with pytest.raises(ValueError, match="one value per load"):
        run_power_flow(net, base_p[:-1])
    with pytest.raises(ValueError, match="each load index"):
        run_power_flow(net, {0: 0.1})
