"""The interactive app (twin/app.py): the model behind the sliders and the map data, without a browser."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

if importlib.util.find_spec("solara") is None or importlib.util.find_spec("matplotlib") is None:
    pytest.skip("the app needs the viz extra (solara, matplotlib): pip install -e '.[viz]'",
                allow_module_level=True)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # mesa.visualization trips solara's hook validator on import
    try:
        import mesa.visualization  # noqa: F401
    except ImportError as exc:  # pragma: no cover
        pytest.skip(f"mesa's visualization is not importable ({exc}): pip install -e '.[viz]'",
                    allow_module_level=True)
    from twin import app


@pytest.fixture(scope="module")
def models():
    base = app.AppModel(**{k: v["value"] for k, v in app.MODEL_PARAMS.items()} | {"residents": 600,
                                                                                   "run_until_h": 0.0})
    policy = app.AppModel(residents=600, cordon_price=5.0, close_busiest_link=True, flow_capacity_factor=0.5,
                          seed="7", run_until_h=7.5)
    return base, policy


def _in_bbox(pos: np.ndarray, net, tol: float = 1e-4) -> bool:
    return bool(((pos[:, 0] >= net.node_lon.min() - tol) & (pos[:, 0] <= net.node_lon.max() + tol)
                 & (pos[:, 1] >= net.node_lat.min() - tol) & (pos[:, 1] <= net.node_lat.max() + tol)).all())


def test_slider_defaults_match_model_signature():
    import inspect

    sig = inspect.signature(app.AppModel.__init__).parameters
    for name, spec in app.MODEL_PARAMS.items():
        assert name in sig, name
        if name != "run_until_h":  # the page pre-runs to the morning peak; the model starts at 05:00
            assert str(sig[name].default) == str(spec["value"]), name


def test_app_model_builds_and_steps(models):
    base, policy = models
    assert base.pop.n == 600 and base.policies.summary() == [] and base.sim.t_s == app.START_S
    assert base.cordon is None and base.closed_links.size == 0
    for _ in range(20):
        base.step()
    assert base.sim.t_s == pytest.approx(app.START_S + 20 * app.STEP_S)
    assert len(base.datacollector.get_model_vars_dataframe()) == 21

    kinds = sorted(p["type"] for p in policy.policies.summary())
    assert kinds == ["link_change", "road_pricing"]
    assert policy.scenario.seed == 7
    assert policy.sim.t_s >= 7.5 * 3600  # pre-run
    assert policy.closed_links.size >= 1 and policy.closed_link in policy.closed_links
    assert policy.closed_link == app.busiest_link(600, 7, "helsinki", 2.0)
    # nobody is routed over the closed link
    links = policy.car_route_links
    assert not np.isin(links, policy.closed_links).any()
    w, s, e, n = policy.cordon
    net = policy.network
    assert net.node_lon.min() < w < e < net.node_lon.max() and net.node_lat.min() < s < n < net.node_lat.max()
    for _ in range(20):
        policy.step()


def test_map_data_shapes_and_bbox(models):
    _, m = models
    net = m.network
    seg = app.link_segments(net)
    assert seg.shape == (net.n_links, 2, 2)
    assert _in_bbox(seg.reshape(-1, 2), net)
    flat = app.link_segments(net, offset_m=0.0)
    assert np.allclose(flat[:, 0, 0], net.node_lon[net.link_tail])
    assert np.allclose(flat[:, 1, 1], net.node_lat[net.link_head])

    load = app.link_load(m)
    assert load.shape == (net.n_links,) and (load >= 0).all()
    rgba = app.link_colors(m)
    assert rgba.shape == (net.n_links, 4) and ((rgba >= 0) & (rgba <= 1)).all()

    cars = app.car_positions(m)
    on = int(np.count_nonzero(m.sim.status[: m.car_trips.size] == 2))
    assert cars.shape == (on, 2) and on == m.sim.n_on_links
    assert _in_bbox(cars, net)
    assert _in_bbox(app.car_positions(m, offset_m=0.0), net, tol=0.0)
    for mode in (app.WALK, app.BIKE):
        pos = app.traveller_positions(m, mode)
        assert pos.ndim == 2 and pos.shape[1] == 2 and _in_bbox(pos, net, tol=0.0)
    vol, since = app.recent_link_volume(m)
    assert vol.shape == (net.n_links,) and since <= m.sim.t_s


def test_kpis_and_figures(models):
    _, m = models
    k = app.kpi_panel(m)
    assert k["clock"] == app.clock(m.sim.t_s)
    assert k["cars_on_links"] == m.sim.n_on_links
    shares = [k[f"mode_share_{x}"] for x in ("car", "walk", "bike")]
    assert sum(shares) == pytest.approx(1.0, abs=1e-3)
    assert "cordon 5 per entry" in app._kpi_markdown(m)
    fig = app.draw_city_map(m)
    assert len(fig.axes) == 2  # map + colour bar
    assert len(app.draw_timeseries(m).axes) == 2


def test_query_parameters():
    p = app.model_params_from_query("residents=4000&flow_capacity_factor=9&close_busiest_link=true&seed=x&bogus=1")
    assert p["residents"]["value"] == 4000
    assert p["flow_capacity_factor"]["value"] == app.MODEL_PARAMS["flow_capacity_factor"]["max"]
    assert p["close_busiest_link"]["value"] is True
    assert p["seed"]["value"] == "42"  # unparsable: kept
    assert app.MODEL_PARAMS["residents"]["value"] == 1500  # the defaults are untouched


def test_page_is_a_solara_component():
    import reacton.core

    assert isinstance(app.Page, reacton.core.Component)
    assert app.page is app.Page
