"""Dispatchers of an operator's fleet: which vehicle serves which request.

Each is a class with ``dispatch(t_s, t_end_s)``, called once per model step (before the kernel
moves); pick one per operator with ``dispatcher:`` (``immediate``, ``batch``, ``pooling``).

* :class:`ImmediateDispatcher`: each request, in request order, gets the idle vehicle nearest by
  network time (one least-time tree *to* the pick-up on the reverse graph gives every vehicle's
  time at once; ties to the lower vehicle index), if its wait stays within ``max_wait_s``;
* :class:`BatchDispatcher`: every ``batch_s``, the waiting requests and the idle vehicles are
  matched by least total time to the pick-ups (``scipy.optimize.linear_sum_assignment``), pairs
  beyond the maximum wait excluded;
* :class:`PoolingDispatcher`: every ``batch_s``, each waiting request, in request order, is inserted
  where it adds the least drive time into the schedule of an idle vehicle or of a vehicle in
  service (:func:`twin.domains.maas.insertion.best_insertion`: seats, the maximum wait of the
  new request and of those waiting, the maximum ride time of everyone on board).

A request still without a vehicle once its maximum wait is over is rejected
(:meth:`MaasDomain._reject`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from twin.domains.maas.config import Operator
    from twin.domains.maas.domain import MaasDomain

__all__ = ["BatchDispatcher", "Dispatcher", "ImmediateDispatcher", "make_dispatcher"]

#: cost of an infeasible pair in the assignment (seconds; far above any wait)
_BIG_S = 1e9


class Dispatcher:
    """Base class: ``dispatch`` assigns the operator's waiting requests to its vehicles."""

    def __init__(self, op: Operator, domain: MaasDomain, j: int) -> None:
        self.op = op
        self.dom = domain
        self.j = j

    def dispatch(self, t_s: float, t_end_s: float) -> None:
        raise NotImplementedError

    def _expire(self, t_s: float) -> None:
        """Reject the waiting requests whose maximum wait is over by ``t_s``."""
        dom = self.dom
        keep = []
        for r in dom.release(self.j, t_s):
            if t_s >= dom.rq_t_s[r] + self.op.max_wait_s and t_s > dom.rq_t_s[r]:
                dom._reject(r, t_s)
            else:
                keep.append(r)
        dom.waiting[self.j] = keep

    def _serve_alone(self, r: int, i: int, t_s: float) -> None:
        """Vehicle ``i`` picks up request ``r`` and drives it to its drop-off."""
        from twin.domains.maas.domain import _Stop

        dom = self.dom
        stops = [_Stop(dom.rq_pick_node[r], r, True), _Stop(dom.rq_drop_node[r], r, False)]
        dom.assign(i, stops, max(t_s, dom.rq_t_s[r]), t_s)  # leaves at the request, or now


class ImmediateDispatcher(Dispatcher):
    """The nearest idle vehicle by network time, at the request (see the module docstring)."""

    def dispatch(self, t_s: float, t_end_s: float) -> None:
        dom = self.dom
        due = [r for r in dom.release(self.j, t_end_s) if dom.rq_t_s[r] < t_end_s]
        if due:
            idle = dom.idle(self.j)
            if idle:
                nodes = np.array([dom.vehicles[i].node for i in idle], np.int64)
                times = dom.times_to(np.array([dom.rq_pick_node[r] for r in due], np.int64))[:, nodes]
                free = np.ones(len(idle), dtype=bool)
                done = set()
                for k, r in enumerate(due):
                    if not free.any():
                        break
                    tt = np.where(free, times[k], np.inf)
                    b = int(np.argmin(tt))
                    dep = max(t_s, dom.rq_t_s[r])
                    if np.isfinite(tt[b]) and dep - dom.rq_t_s[r] + tt[b] <= self.op.max_wait_s + 1e-9:
                        free[b] = False
                        done.add(r)
                        self._serve_alone(r, idle[b], t_s)
                dom.waiting[self.j] = [r for r in dom.waiting[self.j] if r not in done]
        self._expire(t_s)


class BatchDispatcher(Dispatcher):
    """Optimal matching of waiting requests and idle vehicles every ``batch_s``.

    The batches of a model step (the multiples of ``batch_s`` in ``[t_s, t_end_s)``) are matched in
    turn at the step's start, each with the requests made by its time and vehicles leaving at it;
    vehicles that become idle during the step are seen from the next step on (the fleet's state is
    read once per model step: use a ``simulation.record_interval_s`` of about ``batch_s``).
    """

    def dispatch(self, t_s: float, t_end_s: float) -> None:
        p = self.op.batch_s
        b = np.ceil(t_s / p) * p
        while b < t_end_s:
            self._batch(float(b), t_s)
            b += p
        self._expire(t_s)

    def _batch(self, b_s: float, t_s: float) -> int:
        """Match the batch at ``b_s``; returns the number of requests it saw."""
        from scipy.optimize import linear_sum_assignment

        dom = self.dom
        due = [r for r in dom.release(self.j, b_s) if dom.rq_t_s[r] <= b_s]
        if not due:
            return 0
        n_due = len(due)
        idle = dom.idle(self.j)
        if not idle:
            return n_due
        nodes = np.array([dom.vehicles[i].node for i in idle], np.int64)
        times = dom.times_to(np.array([dom.rq_pick_node[r] for r in due], np.int64))[:, nodes]
        waited = b_s - np.array([dom.rq_t_s[r] for r in due])
        ok = np.isfinite(times) & (waited[:, None] + times <= self.op.max_wait_s + 1e-9)
        cost = np.where(ok, times, _BIG_S)
        rows, cols = linear_sum_assignment(cost)
        done = set()
        for a, c in zip(rows.tolist(), cols.tolist(), strict=True):
            if ok[a, c]:
                done.add(due[a])
                self._serve_alone(due[a], idle[c], b_s)
        dom.waiting[self.j] = [r for r in dom.waiting[self.j] if r not in done]
        return n_due


def make_dispatcher(op: Operator, domain: MaasDomain, j: int) -> Dispatcher:
    """The dispatcher ``op.dispatcher`` names."""
    if op.dispatcher == "immediate":
        return ImmediateDispatcher(op, domain, j)
    if op.dispatcher == "batch":
        return BatchDispatcher(op, domain, j)
    from twin.domains.maas.pooling import PoolingDispatcher

    return PoolingDispatcher(op, domain, j)
