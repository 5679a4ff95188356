"""The evacuation domain on a real map (Tsukuba AIST): closures never entered, shelters never over
capacity, people at risk counted from where they are, staged and simultaneous orders, the
simulated clearance never below the time-expanded max-flow bound, validation, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from twin.model import CityModel, load_network
from twin.scenario import ScenarioError, scenario_from_dict

TSUKUBA = "japan/tsukuba_aist.osm"
CENTRE = (140.1316, 36.0634)
SHELTERS = [{"lon": 140.105, "lat": 36.04, "capacity": 2000}, {"lon": 140.155, "lat": 36.085, "capacity": 2000},
            {"lon": 140.15, "lat": 36.04, "capacity": 2000}]


def scenario(shared, *, residents=1500, orders=None, shelters=None, hazard=None, modes=None, seed=3, contraflow=None,
             **pop):
    d = {"name": "evac", "seed": seed, "map": {"source": str(shared / "maps" / TSUKUBA)},
         "population": {"residents": residents, **pop},
         "simulation": {"start_s": "05:00", "end_s": "13:00"},
         "output": {"events": False, "geopackage": False, "report": False},
         "evacuation": {"hazards": [hazard or {"points": [list(CENTRE)], "radius_m": 400, "onset_s": "08:30",
                                               "stages": [{"at_s": "08:50", "grow_m": 300},
                                                          {"at_s": "09:10", "grow_m": 600}]}],
                        "orders": orders or {"at_s": "08:30", "zone_m": 300},
                        "shelters": shelters or {"listed": SHELTERS, "from_map": False}}}
    if modes:
        d["modes"] = modes
    if contraflow:
        d["evacuation"]["contraflow"] = contraflow
    return scenario_from_dict(d)


def run(sc, subscribe=()):
    m = CityModel(sc)
    seen = {name: [] for name in subscribe}
    for name in subscribe:
        m.events.subscribe(name, lambda batch, name=name: seen[name].append(batch))
    m.run()
    return m, m.domain("evacuation"), seen


def test_closed_links_are_never_entered_and_shelters_never_overfill(shared):
    m, ev, seen = run(scenario(shared), subscribe=("enter_link", "shelter_arrival"))
    closed_at = ev.closed_at_s
    assert np.isfinite(closed_at).sum() == m.kpis()["evacuation_links_closed"] > 0
    t = np.concatenate([b["t_s"] for b in seen["enter_link"]])
    link = np.concatenate([b["link_id"] for b in seen["enter_link"]])
    c = closed_at[link]
    assert not np.any(np.isfinite(c) & (t >= c)), "a car entered a link after it closed"
    assert np.all(ev.peak <= ev.shelter_cap) and ev.occupancy.sum() == np.isfinite(ev.safe_s).sum()
    # every admission is a shelter_arrival event, in time order per shelter
    adm = np.concatenate([b["admitted"] for b in seen["shelter_arrival"]])
    assert adm.sum() == np.isfinite(ev.safe_s).sum() > 0
    k = m.kpis()
    cl = [k[f"evacuation_clearance_{q}_s"] for q in (50, 90, 95, 100)]
    assert all(x is not None for x in cl[:3]) and cl[:3] == sorted(cl[:3])
    # room for everyone: all get in but the few whose car the spreading area traps at a closure
    assert k["evacuation_turned_away"] == 0
    trapped = ev.evacuee & ~np.isfinite(ev.safe_s)
    assert trapped.sum() == k["evacuation_not_sheltered"] <= 0.02 * k["evacuation_evacuees"]
    assert (cl[3] is None) == bool(trapped.any())


def test_at_risk_are_the_residents_inside_the_area(shared):
    """Onset at the start of the day (everyone at home) and nobody leaving: the residents at risk are
    those whose home node is inside the circle (distance in the network's metric projection)."""
    from twin.network.road_network import _project

    hazard = {"points": [list(CENTRE)], "radius_m": 1200, "onset_s": "05:00"}
    sc = scenario(shared, hazard=hazard, orders={"at_s": "05:00", "compliance": 0.0})
    m, ev, _ = run(sc)
    net = m.network
    cx, cy = _project(np.array([CENTRE[0]]), np.array([CENTRE[1]]), net.crs)
    d = np.hypot(net.node_x_m - cx[0], net.node_y_m - cy[0])
    home = m.pop.home_node
    sure = int((d[home] <= 0.995 * 1200).sum())  # the buffer is a polygon: allow its chords
    maybe = int((d[home] <= 1200.0).sum())
    first = ev.series[0]
    assert first[0] == 5 * 3600.0 and sure <= first[1] <= maybe and sure > 30
    assert m.kpis()["evacuation_evacuees"] == 0
    # nobody leaves: the exposure is the people at risk times the day
    risk = np.array([s[1] for s in ev.series])
    assert m.kpis()["evacuation_exposure_person_h"] == pytest.approx(
        risk.sum() * sc.simulation.record_interval_s / 3600, rel=1e-3)
    assert risk.max() >= first[1]


def test_staged_orders_follow_the_rings_and_both_modes_report(shared):
    staged = {"mode": "staged", "at_s": "08:30", "rings_m": [300, 800, 1500], "ring_interval_s": 600, "zone_m": 1500}
    m1, ev1, _ = run(scenario(shared, orders=staged))
    sim = {"mode": "simultaneous", "at_s": "08:30", "zone_m": 1500}
    m2, ev2, _ = run(scenario(shared, orders=sim))
    t1 = ev1.ordered_s[np.isfinite(ev1.ordered_s)]
    assert set(np.unique(t1).tolist()) <= {8.5 * 3600 + k * 600 for k in range(3)} and np.unique(t1).size >= 2
    assert set(np.unique(ev2.ordered_s[np.isfinite(ev2.ordered_s)]).tolist()) == {8.5 * 3600}
    for m in (m1, m2):
        k = m.kpis()
        assert k["evacuation_evacuees"] > 0 and k["evacuation_clearance_90_s"] is not None
    # the outer rings are told later: the staged day's evacuees leave later on average
    assert np.nanmean(ev1.depart_s[ev1.evacuee]) > np.nanmean(ev2.depart_s[ev2.evacuee])


def test_small_shelters_turn_people_away_to_the_next(shared):
    small = {"listed": [{**SHELTERS[0], "capacity": 40}, {**SHELTERS[1], "capacity": 3000},
                        {**SHELTERS[2], "capacity": 40}], "from_map": False}
    m, ev, _ = run(scenario(shared, shelters=small))
    k = m.kpis()
    assert k["evacuation_turned_away"] > 0
    assert np.all(ev.peak <= ev.shelter_cap)
    assert ev.peak[ev.shelter_cap == 40].tolist() == [40, 40]
    again = ev.turned > 0
    assert np.isfinite(ev.safe_s[again]).mean() > 0.9  # sent on, and most find room


def test_same_seed_same_outputs(shared):
    sc = scenario(shared, residents=800)
    a = CityModel(sc)
    a.run()
    b = CityModel(sc)
    b.run()
    ta, tb = a.domain("evacuation").tables(None), b.domain("evacuation").tables(None)
    for name in ta:
        for col in ta[name]:
            assert np.array_equal(np.asarray(ta[name][col]), np.asarray(tb[name][col]), equal_nan=True), (name, col)


@pytest.mark.parametrize(("change", "field"), [
    ({"hazards": [{"radius_m": 100, "onset_s": "08:00"}]}, "evacuation.hazards.0"),
    ({"hazards": [{"points": [[140.13, 36.06]], "onset_s": "08:00",
                   "stages": [{"at_s": "07:00", "grow_m": 10}]}]}, "evacuation.hazards.0"),
    ({"hazards": [{"points": [[140.13, 36.06]], "onset_s": "08:00",
                   "stages": [{"at_s": "09:00", "grow_m": 100}, {"at_s": "10:00", "grow_m": 50}]}]},
     "evacuation.hazards.0"),
    ({"orders": {"mode": "staged", "rings_m": [500, 200]}}, "evacuation.orders"),
    ({"orders": {"compliance": 1.5}}, "evacuation.orders.compliance"),
    ({"shelters": {"choice": "random"}}, "evacuation.shelters.choice"),
    ({"contraflow": {"at_s": "soon"}}, "evacuation.contraflow.at_s"),
    ({"contraflow": {"auto": -1}}, "evacuation.contraflow.auto"),
    ({"shelters": {"choice": "by_zone"}}, "evacuation.shelters"),
    ({"hazards": [{"points": [[140.13, 36.06]], "onset_s": "08:00", "effect": "slow"}]}, "evacuation.hazards.0"),
    ({"walkers": {"width_m": 0}}, "evacuation.walkers.width_m"),
])
def test_bad_sections_name_the_field(change, field, shared):
    d = {"name": "evac", "map": {"source": str(shared / "maps" / TSUKUBA)},
         "evacuation": {"hazards": [{"points": [[140.13, 36.06]], "onset_s": "08:00"}], **change}}
    with pytest.raises(ScenarioError) as e:
        scenario_from_dict(d)
    assert field in str(e.value)


def test_preflight_lists_network_problems(shared):
    from twin.domains.evacuation.domain import EvacuationDomain

    sc = scenario(shared, shelters={"listed": [{"osmid": 1, "capacity": 10}], "from_map": False})
    net = load_network(sc)
    probs = EvacuationDomain.preflight(sc.section("evacuation"), sc, net)
    assert [p[0] for p in probs] == ["evacuation.shelters.listed.0.osmid"]
    one_way = int(net.link_osmid[net.link_class == 2][0])  # Tsukuba's trunk road is a divided (one-way) pair
    sc = scenario(shared, contraflow={"ways": [one_way, 1]})
    probs = EvacuationDomain.preflight(sc.section("evacuation"), sc, net)
    assert [p[0] for p in probs] == ["evacuation.contraflow.ways.0", "evacuation.contraflow.ways.1"]


def test_contraflow_lowers_the_90_percent_clearance(shared):
    """Everyone by car out of central Tsukuba to the two exits of the map on its secondary roads:
    reversing the inbound lanes of the busiest outbound corridor lowers the 90% clearance time; the
    reversed (inbound) links are never entered afterwards and the outbound ones carry both
    directions' capacity."""
    exits = {"listed": [{"osmid": 335892935, "capacity": 100_000}, {"osmid": 323099659, "capacity": 100_000}],
             "from_map": False}
    kw = dict(residents=3000, shelters=exits, hazard={"points": [list(CENTRE)], "radius_m": 300, "onset_s": "08:30"},
              modes={"available": ["car", "walk"], "asc_walk": -3.0}, car_ownership=1.0,
              orders={"at_s": "08:30", "zone_m": 1500, "compliance": 1.0, "delay": {"distribution": "none"}})
    m0, _, _ = run(scenario(shared, **kw))
    m1, ev1, seen = run(scenario(shared, contraflow={"auto": 1}, **kw), subscribe=("enter_link",))
    before, after = m0.kpis()["evacuation_clearance_90_s"], m1.kpis()["evacuation_clearance_90_s"]
    print(f"90% clearance without contraflow {before:.0f} s, with {after:.0f} s "
          f"({m1.kpis()['evacuation_contraflow_links']} links reversed)")
    assert after < before
    from twin.domains.evacuation.contraflow import reverse_links

    net, out = m1.network, ev1.cf_links
    assert out.size >= 2 and ev1.cf_at_s == 8.5 * 3600
    inbound = reverse_links(net)[out]
    t = np.concatenate([b["t_s"] for b in seen["enter_link"]])
    link = np.concatenate([b["link_id"] for b in seen["enter_link"]])
    assert not np.any(np.isin(link, inbound) & (t >= ev1.cf_at_s)), "a car entered a reversed link"
    mob0, mob1 = m0.domain("mobility"), m1.domain("mobility")
    np.testing.assert_allclose(mob1.sim.cap_veh_per_step[out],
                               mob0.sim.cap_veh_per_step[out] + mob0.sim.cap_veh_per_step[inbound])
    np.testing.assert_allclose(mob1.sim.storage_veh[out], mob0.sim.storage_veh[out] + mob0.sim.storage_veh[inbound])


def test_clearance_is_never_below_the_time_expanded_bound(shared):
    """Cars only, everyone told at 08:30 leaves at once: the time the last sheltered car evacuee
    arrives is at least the quickest-evacuation time of the same evacuees from where their trips
    started, as a max-flow on the time-expanded network (free-flow times, flow capacities; no
    closures, other traffic or storage: a relaxation)."""
    from twin.domains.evacuation.bounds import quickest_evacuation_time_s

    sc = scenario(shared, residents=2500, modes={"available": ["car"]}, car_ownership=1.0, child_share=0.0,
                  sample_share=1.0, orders={"at_s": "08:30", "zone_m": 300, "compliance": 1.0,
                                            "delay": {"distribution": "none"}})
    m, ev, _ = run(sc)
    net = m.network
    done = ev.evacuee & np.isfinite(ev.safe_s) & ~ev.walked_out
    assert done.sum() > 300
    t0 = 8.5 * 3600
    sim_s = float(ev.safe_s[done].max() - t0)
    nodes, supply = np.unique(ev.start_node[done], return_counts=True)
    bound = quickest_evacuation_time_s(net.link_tail, net.link_head, net.link_fftt_s, net.link_capacity_vph / 3600.0,
                                       nodes, supply.astype(float), ev.shelter_node, 30.0, 6 * 3600.0,
                                       sink_capacity=ev.shelter_cap.astype(float), burst_veh=1.0)
    print(f"simulated clearance of {done.sum()} car evacuees {sim_s:.0f} s, bound {bound:.0f} s, "
          f"ratio {sim_s / bound:.2f}")
    assert np.isfinite(bound) and bound > 0
    assert sim_s >= bound


def test_run_folder_has_the_tables_and_the_report_section(shared, tmp_path):
    import pyarrow.parquet as pq

    from twin.run import run_scenario

    sc = scenario(shared, residents=600)
    sc = sc.model_copy(update={"output": sc.output.model_copy(update={"report": True})})
    run_scenario(sc, tmp_path / "run")
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"evacuation_evacuees.parquet", "evacuation_series.parquet", "evacuation_shelters.parquet"} <= names
    sh = pq.read_table(tmp_path / "run" / "evacuation_shelters.parquet")
    assert sh.num_rows == 3 and all(p <= c for p, c in zip(sh.column("peak_occupancy").to_pylist(),
                                                          sh.column("capacity").to_pylist(), strict=True))
    html = (tmp_path / "run" / "report.html").read_text()
    assert "<h2>Evacuation</h2>" in html and "Evacuation curve" in html
    assert html.count("<tr><td>") >= 3


def test_stay_away_cancels_trips_into_the_hazard(shared):
    """With stay_away, no trip of a resident who is not evacuating begins after a stage's start with
    its destination inside that stage's area; without it, some do."""
    from twin.demand import HOME

    def into_hazard_after_onset(stay):
        sc = scenario(shared, residents=2000,
                      hazard={"points": [list(CENTRE)], "radius_m": 800, "onset_s": "07:00"},
                      orders={"at_s": "07:00", "zone_m": 0, "compliance": 0.0, "stay_away": stay})
        m, ev, _ = run(sc)
        mob = m.mobility
        inside = (ev.node_stage[0] == 0)[mob.trips.dest]
        began = np.isfinite(mob.trip_depart_s) & (mob.trip_depart_s >= 7 * 3600 + sc.simulation.record_interval_s)
        bad = began & inside & ~ev.evacuee[mob.trips.person]
        return m, ev, bad, mob

    m0, _, bad0, _ = into_hazard_after_onset(False)
    assert bad0.sum() > 10 and m0.kpis()["evacuation_stayed_away"] == 0
    m1, ev1, bad1, mob = into_hazard_after_onset(True)
    k = m1.kpis()
    assert k["evacuation_stayed_away"] > 10
    # the only trips into the area that still begin are those home, of residents who live there
    left = np.flatnonzero(bad1)
    assert np.all(mob.trips.purpose[left] == HOME)
    assert np.all((ev1.node_stage[0] == 0)[m1.pop.home_node[mob.trips.person[left]]])


def test_cars_held_mid_route_are_left_and_their_drivers_walk_on(shared):
    """The spreading area closes every way out of some cars' links: their evacuees leave the car at
    the end of its link (``mobility.leave_cars``), that trip ends there, and they walk on to a
    shelter from that node; the plan's destinations come back for the next day. The order comes
    late (08:50, the area already widening), so some cars are inside when their exits close."""
    m = CityModel(scenario(shared, residents=2500, orders={"at_s": "08:50", "zone_m": 300}))
    mob, ev = m.domain("mobility"), m.domain("evacuation")
    plan_dest = mob.trips.dest.copy()
    m.run()
    left = mob._left_car
    assert left.size > 0
    t = mob.trips
    ip, links = mob.route_indptr, mob.route_links
    last = links[ip[left + 1] - 1]  # the trips' routes now end with the link the car was left on
    np.testing.assert_array_equal(t.dest[left], m.network.link_head[last])
    assert np.all(mob.trip_state[left] == 2) and np.all(np.isfinite(mob.trip_arrive_s[left]))
    nxt = mob.trip_next[left]
    assert np.all(nxt >= 0)
    np.testing.assert_array_equal(t.origin[nxt], t.dest[left])
    assert np.all(mob.trip_mode[nxt] == 1)  # on foot
    drivers = t.person[left]
    assert ev.walked_out[drivers].all()
    assert np.isfinite(ev.safe_s[drivers]).mean() > 0.8  # most of them reach a shelter
    mob._restore_plan()
    np.testing.assert_array_equal(mob.trips.dest, plan_dest)


def test_walkers_free_equal_distance_over_speed_and_crowds_slow_them(shared):
    """Evacuees on foot move in the walker kernel. Without crowding and hazard avoidance each arrives
    at departure + walk distance / walking speed (what mobility would compute); paths avoid the
    active areas when the walker starts outside them; crowds make walks longer."""
    from twin.domains.evacuation.hazards import links_hit

    kw = dict(residents=2500, car_ownership=0.2, orders={"at_s": "08:40", "zone_m": 600})

    def walkers(**w):
        sc = scenario(shared, **kw)
        d = sc.model_dump(mode="json")
        d["evacuation"]["walkers"] = w
        m, ev, _ = run(scenario_from_dict(d))
        return m, ev

    m, ev = walkers(crowd=False, avoid_hazards=False)
    mob = m.domain("mobility")
    ok = np.isfinite(ev.w_done)
    assert ok.sum() > 200
    tr = ev.w_trip[ok]
    speed = m.scenario.modes.walk_speed_mps
    np.testing.assert_allclose(ev.w_done[ok], mob.trip_depart_s[tr] + mob.trip_walk_m[tr] / speed, rtol=1e-9)
    np.testing.assert_array_equal(mob.trip_arrive_s[tr], ev.w_done[ok])
    free_s = float(np.mean(ev.w_done[ok] - ev.w_start[ok]))

    m2, ev2 = walkers(crowd=False)
    wnet, snap = m2.domain("mobility").walk_network()
    stage = [links_hit(st, wnet) for st in ev2.stages]
    st_at = [st.stage_at(ev2.w_start) for st in ev2.stages]
    t2 = m2.domain("mobility").trips
    origin = snap[t2.origin[ev2.w_trip]]
    entered = outside = 0
    for i in range(ev2.w_trip.size):
        links = ev2.w_links[ev2.w_ptr[i]:ev2.w_ptr[i + 1]]
        if links.size == 0:
            continue
        hot = np.zeros(links.size, bool)
        for k in range(len(stage)):
            s = int(st_at[k][i])
            if s >= 0:
                hot |= (stage[k][links] >= 0) & (stage[k][links] <= s)
        starts_inside = bool(hot[0]) or bool(np.isin(origin[i], wnet.link_tail[links[hot]]))
        if not starts_inside:
            outside += 1
            entered += bool(hot.any())
    assert outside > 100 and entered <= 0.02 * outside

    _, ev3 = walkers(width_m=1.0)
    ok3 = np.isfinite(ev3.w_done)
    crowd_s = float(np.mean(ev3.w_done[ok3] - ev3.w_start[ok3]))
    print(f"mean walk to a shelter: free {free_s:.0f} s, crowded (1 m wide) {crowd_s:.0f} s")
    assert crowd_s > free_s


def test_shallow_water_slows_cars_and_deep_water_closes(shared):
    """effect: slow: links under 0.2 m of water get the safe speed of Pregnolato et al.'s
    depth-disruption function (12.4 km/h) from onset; at 0.35 m (the second stage) they close."""
    from twin.domains.evacuation.hazards import flood_speed_mps

    assert float(flood_speed_mps(0.0)) * 3.6 == pytest.approx(86.9448)
    assert float(flood_speed_mps(0.1)) * 3.6 == pytest.approx(0.0009 * 100**2 - 0.5529 * 100 + 86.9448)
    assert float(flood_speed_mps(0.3)) == 0.0 and float(flood_speed_mps(0.29)) > 0
    hazard = {"points": [list(CENTRE)], "radius_m": 600, "onset_s": "08:30", "effect": "slow", "depth_m": 0.2,
              "stages": [{"at_s": "09:30", "grow_m": 0, "depth_m": 0.35}]}
    m, ev, seen = run(scenario(shared, residents=1200, hazard=hazard), subscribe=("enter_link",))
    mob, net = m.domain("mobility"), m.network
    reached = ev.link_stage[0] >= 0
    v = float(flood_speed_mps(0.2))
    free_v = net.link_length_m / net.link_fftt_s
    fast = reached & (free_v > v)
    assert fast.sum() > 10 and np.array_equal(ev.slowed, fast)
    np.testing.assert_allclose(mob.sim.fftt_s[fast], net.link_length_m[fast] / v, rtol=1e-9)
    np.testing.assert_array_equal(mob.sim.fftt_s[~fast], net.link_fftt_s[~fast])
    # the second stage closes every reached link at 09:30, and nobody enters one afterwards
    assert np.array_equal(np.isfinite(ev.closed_at_s), reached) and np.all(ev.closed_at_s[reached] == 9.5 * 3600)
    t = np.concatenate([b["t_s"] for b in seen["enter_link"]])
    link = np.concatenate([b["link_id"] for b in seen["enter_link"]])
    assert not np.any(reached[link] & (t >= 9.5 * 3600))
    k = m.kpis()
    assert k["evacuation_links_closed"] == reached.sum() and k["evacuation_links_slowed"] == 0


def test_routes_planned_after_the_order_avoid_the_announced_area(shared):
    """From the first order every stage's area is announced: evacuees' car routes avoid the links
    the later stages will reach (their cost × avoid_factor), so less of their driving is there."""

    def announced_km(factor):
        sc = scenario(shared, residents=2000, orders={"at_s": "08:30", "zone_m": 1200, "avoid_factor": factor})
        m, ev, _ = run(sc)
        mob = m.domain("mobility")
        hit = np.any([ls >= 0 for ls in ev.link_stage], axis=0)
        tr = ev.trip[ev.evacuee & (ev.trip >= 0)]
        tr = tr[mob.trip_mode[tr] == 0]  # by car
        ip = mob.route_indptr
        links = np.concatenate([mob.route_links[ip[i]:ip[i + 1]] for i in tr])
        return float(m.network.link_length_m[links][hit[links]].sum() / 1000), tr.size

    plain, n1 = announced_km(1.0)
    avoid, n2 = announced_km(10.0)
    print(f"evacuees' car km inside the announced area: {plain:.1f} (not avoided), {avoid:.1f} (x10)")
    assert n1 > 100 and n2 > 100 and avoid < 0.8 * plain


def test_shelters_by_zone_take_their_zones_evacuees(shared):
    """choice: by_zone: an evacuee setting out inside a shelter's zone goes to that shelter, even
    when another is nearer; outside every zone, to the nearest."""
    west = [[140.0, 36.0], [140.1209, 36.0], [140.1209, 36.2], [140.0, 36.2]]  # about half the evacuees
    # the west half is the north-east shelter's zone, though most of it is nearer the west one
    sh = {"listed": [{**SHELTERS[0]}, {**SHELTERS[1], "zone": west}, {**SHELTERS[2]}], "from_map": False,
          "choice": "by_zone"}
    m, ev, _ = run(scenario(shared, shelters=sh))
    net = m.network
    go = np.flatnonzero(ev.evacuee & (ev.start_node >= 0))
    in_west = net.node_lon[ev.start_node[go]] < 140.1209
    zone_shelter = int(ev.node_zone[ev.start_node[go][in_west][0]])
    assert in_west.sum() > 50 and (~in_west).sum() > 50
    # the first choice of everyone in the zone is its shelter (some are sent on when it is full)
    first = ev.first_target[go]
    assert np.all(first[in_west] == zone_shelter)
    # without zones most of the zone's evacuees would go elsewhere, and so do the others
    assert np.mean(first[~in_west] == zone_shelter) < 0.5
    _, ev2, _ = run(scenario(shared, shelters={**sh, "choice": "capacity_aware"}))
    assert np.mean(ev2.first_target[go][in_west] == zone_shelter) < 0.5


def test_shuttles_carry_evacuees_without_a_car(shared):
    """orders.shuttles with a MaaS fleet: evacuees who would walk request rides instead; those
    picked up ride to their shelter and are admitted there; rejected ones walk."""
    sc = scenario(shared, residents=1500, car_ownership=0.3, modes={"available": ["car", "walk", "maas"]},
                  orders={"at_s": "08:30", "zone_m": 300, "shuttles": True})
    d = sc.model_dump(mode="json")
    d["maas"] = {"operators": [{"name": "shuttle", "fleet_size": 40, "seats": 4, "dispatcher": "immediate",
                                "depots": [{"lon": SHELTERS[0]["lon"], "lat": SHELTERS[0]["lat"]}],
                                "shift_start_s": "05:00", "shift_end_s": "13:00", "max_wait_s": 1800}]}
    m, ev, _ = run(scenario_from_dict(d))
    mob, maas = m.domain("mobility"), m.domain("maas")
    tr = ev.trip[ev.evacuee & (ev.trip >= 0)]
    rq = maas.request_columns()
    evac_rq = np.isin(rq["trip_id"], tr)
    assert evac_rq.sum() > 20
    served = evac_rq & np.isfinite(rq["dropoff_s"])
    assert served.sum() > 10
    riders = rq["resident_id"][served]
    assert np.all(mob.trip_mode[rq["trip_id"][served]] == 3)  # the maas mode
    assert np.all(np.isfinite(ev.safe_s[riders]) | (ev.turned[riders] > 0))
    # a rejected ride walks; the other walkers left a car or were sent on from a full shelter
    walking = np.unique(tr[mob.trip_mode[tr] == 1])
    rejected = np.unique(rq["trip_id"][evac_rq & rq["rejected"]])
    assert rejected.size and np.all(np.isin(rejected, walking))
    other = mob.trips.person[np.setdiff1d(walking, rejected)]
    assert np.all(ev.walked_out[other] | (ev.turned[other] > 0))


def test_shelters_from_osm_tags_on_the_default_map():
    """from_osm_tags adds the map's tagged places (central Helsinki: three community centres and a
    civil-defence shelter) to its education buildings, each at its nearest node, with the default
    capacity scaled to the sample."""
    from pathlib import Path

    from twin.maps import resolve_source
    from twin.maps._osm import read_shelter_places
    from twin.scenario import load_scenario

    base = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "helsinki_flood.yaml")
    d = base.model_dump(mode="json")
    d["population"]["residents"] = 1000
    d["evacuation"]["shelters"]["from_osm_tags"] = True
    d["output"] = {"events": False, "geopackage": False, "report": False}
    m = CityModel(scenario_from_dict(d))
    ev = m.domain("evacuation")
    places = read_shelter_places(resolve_source("helsinki").path)
    assert len(places.tag) == 4
    tagged = [k for k, n in enumerate(ev.shelter_name) if n.split(" ")[0] in set(places.tag)]
    assert 1 <= len(tagged) <= 4
    share = m.scenario.population.sample_share
    assert all(ev.shelter_cap[k] == int(np.floor(200 * share + 1e-9)) for k in tagged)
    d["evacuation"]["shelters"]["from_osm_tags"] = False
    n_without = CityModel(scenario_from_dict(d)).domain("evacuation").shelter_node.size
    assert ev.shelter_node.size == n_without + len(tagged)


def test_shelters_from_a_csv_or_geojson_file(shared, tmp_path):
    """A CSV of the listed shelters gives the same shelters; a GeoJSON polygon without a capacity
    holds its area / m2_per_person; a bad row is a preflight problem naming the row and column."""
    import json

    from twin.domains.evacuation.domain import EvacuationDomain

    csv = tmp_path / "shelters.csv"
    csv.write_text("name,lon,lat,capacity\n" + "".join(f"s{k},{s['lon']},{s['lat']},{s['capacity']}\n"
                                                       for k, s in enumerate(SHELTERS)))
    listed = CityModel(scenario(shared, residents=300)).domain("evacuation")
    from_csv = CityModel(scenario(shared, residents=300, shelters={"file": str(csv), "from_map": False}))
    ev = from_csv.domain("evacuation")
    np.testing.assert_array_equal(ev.shelter_node, listed.shelter_node)
    np.testing.assert_array_equal(ev.shelter_cap, listed.shelter_cap)
    # a 100 m x 100 m square (about) at 36.04 N, no capacity: 10,000 m² / 2 m² a person
    dlat, dlon = 100 / 111_000, 100 / (111_000 * np.cos(np.radians(36.04)))
    ring = [[140.105, 36.04], [140.105 + dlon, 36.04], [140.105 + dlon, 36.04 + dlat], [140.105, 36.04 + dlat],
            [140.105, 36.04]]
    gj = tmp_path / "shelters.geojson"
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "gym"}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    sc = scenario(shared, residents=300, shelters={"file": str(gj), "from_map": False, "scale_capacity": False})
    ev2 = CityModel(sc).domain("evacuation")
    assert ev2.shelter_cap.tolist() == [pytest.approx(5000, rel=0.01)]
    bad = tmp_path / "bad.csv"
    bad.write_text("lon,lat,capacity\n140.1,36.0,100\n140.1,36.0,lots\n")
    sc = scenario(shared, residents=300, shelters={"file": str(bad), "from_map": False})
    probs = EvacuationDomain.preflight(sc.section("evacuation"), sc, load_network(sc))
    assert [p[0] for p in probs] == ["evacuation.shelters.file"] and "row 2: capacity" in probs[0][1]


def test_staged_orders_by_zone_polygons(shared):
    """orders.zones: residents inside each polygon are told at its time (where they are then), and
    nobody outside the zones is told."""
    west = [[140.0, 36.0], [140.1209, 36.0], [140.1209, 36.2], [140.0, 36.2]]
    east = [[140.1209, 36.0], [140.3, 36.0], [140.3, 36.2], [140.1209, 36.2]]
    orders = {"mode": "staged", "zones": [{"polygon": east, "at_s": "09:00"}, {"polygon": west, "at_s": "08:30"}]}
    m, ev, _ = run(scenario(shared, residents=1500, orders=orders))
    told = np.isfinite(ev.ordered_s)
    assert set(np.unique(ev.ordered_s[told]).tolist()) == {8.5 * 3600, 9 * 3600}
    # the zone is where they were when told: an evacuee's trip starts there, or they were at an
    # activity inside it
    west_ring = int(np.flatnonzero(ev.ring_order_s == 8.5 * 3600)[0])
    go = np.flatnonzero(ev.evacuee & (ev.ordered_s == 8.5 * 3600) & (ev.start_node >= 0))
    assert go.size > 50
    assert np.mean(ev.node_ring[ev.start_node[go]] == west_ring) > 0.7  # a trip under way ends first elsewhere
    # the map lies inside the two rectangles: west of the line is the west zone's (east is listed first)
    lon = m.network.node_lon
    assert np.all(ev.node_ring >= 0)
    np.testing.assert_array_equal(ev.node_ring == west_ring, lon < 140.1209)


def test_shuttle_priority_serves_evacuees_first(shared):
    """A small fleet that residents also ride on their day: with shuttle_priority the evacuees'
    requests go first, so more of them are served and fewer of the others after the order."""

    def served(prio):
        sc = scenario(shared, residents=1500, car_ownership=0.3,
                      modes={"available": ["car", "walk", "maas"], "plugins": {"maas": {"asc": 2.0}}},
                      orders={"at_s": "08:30", "zone_m": 300, "shuttles": True, "shuttle_priority": prio})
        d = sc.model_dump(mode="json")
        d["maas"] = {"operators": [{"name": "shuttle", "fleet_size": 15, "seats": 4, "dispatcher": "immediate",
                                    "depots": [{"lon": SHELTERS[0]["lon"], "lat": SHELTERS[0]["lat"]}],
                                    "shift_start_s": "05:00", "shift_end_s": "13:00", "max_wait_s": 1800}]}
        m, ev, _ = run(scenario_from_dict(d))
        rq = m.domain("maas").request_columns()
        evac = np.isin(rq["trip_id"], ev.trip[ev.evacuee & (ev.trip >= 0)])
        after = rq["request_s"] >= 8.5 * 3600
        ok = np.isfinite(rq["dropoff_s"])
        return int((evac & ok).sum()), int((~evac & after & ok).sum()), int(evac.sum())

    e0, o0, n0 = served(False)
    e1, o1, n1 = served(True)
    print(f"evacuee rides served {e0} -> {e1} (of {n1}), others after the order {o0} -> {o1}")
    assert n0 == n1 > 100 and e1 > e0 and o1 < o0


def test_missing_section_files_are_named(shared, tmp_path):
    from twin.scenario import load_scenario

    for key, body, field in (
            ("hazards", '[{file: nowhere.geojson, onset_s: "08:00"}]', "hazards.0.file"),
            ("shelters", "{file: nowhere.csv}", "shelters.file")):
        y = tmp_path / f"{key}.yaml"
        hz = "" if key == "hazards" else '  hazards: [{points: [[140.13, 36.06]], onset_s: "08:00"}]\n'
        y.write_text(f"name: x\nmap: {{source: {shared / 'maps' / TSUKUBA}}}\nevacuation:\n{hz}  {key}: {body}\n")
        with pytest.raises(ScenarioError) as e:
            load_scenario(y)
        assert field in str(e.value) and "nowhere" in str(e.value)
