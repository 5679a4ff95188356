"""Mode choice: a multinomial logit over home-based tours.

The utility of tour ``k`` by mode ``m`` is ``V = ASC_m + beta_time * T_km + beta_cost * C_km`` with
``T`` the tour's travel time in hours (sum over its trips) and ``C`` its money cost (car: cost per km,
tolls, parking). Car is available to residents who can drive. Choices are drawn as
``argmax(V + Gumbel noise)`` with noise from the caller's generator: the MNL probabilities
``exp(V_m) / sum exp(V)``, reproducible for a seed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MODES", "CAR", "WALK", "BIKE", "tour_utilities", "choose_modes", "mnl_probabilities"]

MODES = ("car", "walk", "bike")
CAR, WALK, BIKE = 0, 1, 2


def tour_utilities(
    n_tours: int,
    trip_tour: np.ndarray,
    time_h: np.ndarray,
    money: np.ndarray,
    *,
    asc: np.ndarray,
    beta_time_per_h: float,
    beta_cost_per_money: float,
    available: np.ndarray,
    tour_fixed_money: np.ndarray | None = None,
) -> np.ndarray:
    """Utilities (n_tours, M) from per-trip times (m, M) and money (m, M); -inf where unavailable."""
    n_modes = time_h.shape[1]
    t = np.zeros((n_tours, n_modes))
    c = np.zeros((n_tours, n_modes))
    for m in range(n_modes):
        t[:, m] = np.bincount(trip_tour, weights=time_h[:, m], minlength=n_tours)
        c[:, m] = np.bincount(trip_tour, weights=money[:, m], minlength=n_tours)
    if tour_fixed_money is not None:
        c += tour_fixed_money
    v = asc[None, :] + beta_time_per_h * t + beta_cost_per_money * c
    v[~available] = -np.inf
    v[~np.isfinite(t)] = -np.inf
    return v


def mnl_probabilities(v: np.ndarray) -> np.ndarray:
    """Logit probabilities of utilities ``v`` (rows), robust to -inf."""
    vmax = np.max(v, axis=1, keepdims=True)
    e = np.exp(v - vmax)
    p: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return p


def choose_modes(v: np.ndarray, rng: np.random.Generator, *, n_base: int | None = None,
                 extra_rng: np.random.Generator | None = None) -> np.ndarray:
    """One draw per row: ``argmax(v + Gumbel)`` (int8 mode indices).

    With ``n_base``, the noise of the first ``n_base`` columns comes from ``rng`` and that of the
    others from ``extra_rng``: adding a mode leaves the draws of the built-in modes unchanged
    (common random numbers, so a run with a new mode compares with its baseline tour by tour).
    """
    if n_base is None or n_base >= v.shape[1]:
        g = rng.gumbel(size=v.shape)
    else:
        assert extra_rng is not None, "choose_modes: n_base needs extra_rng"
        g = np.hstack([rng.gumbel(size=(v.shape[0], n_base)),
                       extra_rng.gumbel(size=(v.shape[0], v.shape[1] - n_base))])
    modes: np.ndarray = np.argmax(v + g, axis=1).astype(np.int8)
    return modes
