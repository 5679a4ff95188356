"""MATSim-QSim-style spatial-queue traffic kernel (Numba) and its Python driver.

Model
-----
Time advances in fixed steps of ``dt_s`` seconds; step ``k`` happens at time
``t = t_start_s + k * dt_s``.  A link ``l`` has a free-flow travel time
``fftt_s[l]``, a flow capacity ``cap_veh_per_step[l] = capacity_veh_per_s * dt_s``
(> 0), a storage capacity ``storage_veh[l]`` (float, >= 1) and may be *closed* to
entry.  A vehicle has an owner (a resident's car trip, a vehicle of a domain's
fleet: an integer of the caller) and performs *legs*, one after the other: a leg
has a route (at least one link) and a departure time ``depart_s``.  Routes live in
one buffer (``route_links``, with the entry time of each position in
``route_enter_s``); the kernel sees, per vehicle, its current leg only: ``rpos``, the
buffer position of its current link (the link it is on, waits for or departs
onto), and ``r_end``, the end of the leg's route, whose rest is
``route_links[rpos + 1:r_end]``.  The constructor's vehicles ``i = 0 .. N-1`` have
one leg each (leg ``i``) with the route ``route_links[route_indptr[i]:route_indptr[i + 1]]``.

State (all in arrays, owned by the caller):

* per link: a FIFO queue kept as an intrusive linked list (``q_head``, ``q_tail``,
  ``-1`` when empty, per-vehicle successor ``nxt``), a departure waiting list
  (``w_head``, ``w_tail``, also chained through ``nxt`` since a vehicle is in at most
  one list), the occupancy ``occ_veh`` (vehicles on the link), the flow
  accumulator ``acc_veh``, ``last_exit_s`` (continuous time of the last exit,
  initially ``-inf``) and ``closed``;
* per vehicle: ``rpos`` / ``r_end``, the time it entered each position
  (``route_enter_s``; ``enter_s`` below is the entry of the current link),
  ``ready_s = enter_s + fftt`` of the current link, ``held`` (1 when it was denied
  while eligible), ``held_since_s`` (time it was first blocked by storage, ``nan``
  otherwise), ``moved_step``, ``status`` of its current leg (0 not departed or no
  leg, 1 waiting to enter its first link, 2 on a link, 3 arrived, 4 removed),
  ``take_off`` (1: leave the network at the end of the current link) and
  ``arrive_s`` (``nan`` until the leg left the network).

Each step at time ``t``:

1. *Refill* every link's flow accumulator:
   ``acc[l] = min(acc[l] + cap[l], cap[l])``; initially ``acc[l] = cap[l]``.
2. *Departures*: the vehicles with a leg that has not departed and ``depart_s <= t``
   are appended, in ``(depart_s, vehicle id)`` order, to the waiting list of their
   first link ``route_links[rpos]`` (status 1).
3. *Link exits*: for ``l = 0 .. L-1`` in index order, look repeatedly at the head
   vehicle ``v`` of ``l``'s queue; stop if there is none, if ``ready_s[v] > t`` or if
   ``v`` already moved in this step.  If ``acc[l] <= ACC_EPS_VEH`` (``1e-9``, i.e.
   ``<= 0`` up to round-off) the flow capacity is used up: mark ``v`` held and stop.  The node-passage time is
   ``x = t if held[v] else max(ready_s[v], last_exit_s[l])`` (continuous time, so
   free-flow travel is exact rather than rounded to steps; ``last_exit_s`` keeps the
   FIFO exit times monotone).  If ``l`` is the last link of the leg's route
   (``rpos + 1 == r_end``), ``v`` leaves the network at ``x`` (``arrive_s = x``): it
   arrives (status 3), or, when it is to be taken off (``take_off``), its leg ends with
   status 4 (counted in ``n_taken_off``).  Otherwise, with next link
   ``m = route_links[rpos + 1]``: when ``occ[m] >= storage[m]``, ``m`` is closed or ``l``
   is *asleep* on ``m`` (below) the vehicle is blocked (spillback, or closure): it is
   marked held; if ``m`` is closed ``held_since_s`` is set to ``nan`` (a closure stops
   the stuck clock: a vehicle is never forced into a closed link nor removed at one),
   else it is set to ``t`` if unset; and unless ``t - held_since_s[v] >= stuck_time_s``
   (then ``l`` wakes up and the move is forced, counted in ``n_forced[0]``, or with
   ``stuck_remove`` ``v`` is popped from ``l`` and removed, status 4, counted in
   ``n_removed[0]``, without using flow capacity) ``l`` falls (or stays) asleep on ``m``
   and processing of ``l`` stops.  An exit pops ``v``, decrements ``occ[l]`` and ``acc[l]``, sets
   ``last_exit_s[l] = x`` and records the statistics of ``l``; a move then appends
   ``v`` to ``m``'s queue with ``enter_s = x``, ``rpos += 1``, ``ready_s = x + fftt[m]``,
   clears ``held``/``held_since_s`` and sets ``moved_step = k``.
   *Merges.*  When ``n`` vehicles left ``l`` in this look (moves, arrivals, removals)
   and links are asleep on ``l``, each of the ``n`` freed slots wakes one of them: the
   asleep link ``u`` with the smallest ``merge_key(merge_seed, k, l, u, cap[u])``, an
   exponential draw of rate ``cap[u]``, so ``u`` wins with probability
   ``cap[u] / sum(cap)`` over the asleep links (MATSim's capacity-weighted random
   choice among a node's in-links).  A woken link is looked at again in this step if
   ``u > l`` (still to come in the index order), else in the next step.  The other
   asleep links do not compete for the slot, so upstream links fed into one full link
   get its freed space in proportion to their flow capacities, whatever their
   indices (a scan in index order alone would give it to the first link looked at
   after each exit).  A woken link can always use its slot unless its head's next link
   is closed (it then sleeps again): a link falls asleep only
   when its head has flow capacity but no space, and its accumulator only refills
   while it sleeps; only a head that becomes eligible, or a departure entering from
   the waiting list (step 4), before the woken link is looked at again (first come)
   can take the slot instead, and the woken link then sleeps again.  Asleep links
   stay asleep across calls.
4. *Entering from waiting lists*: for ``l`` in index order, while the waiting
   list head ``w`` exists, ``l`` is open and ``occ[l] < storage[l]`` (no stuck rule here), it
   enters ``l`` with ``enter_s = depart_s[w]`` if it departed in this step and was not
   held (``depart_s[w] > t - dt``), else ``enter_s = t`` (a vehicle that waited, behind a full
   link or behind the vehicles ahead of it in the list, enters when it enters) (status 2,
   ``moved_step = k``); when the link is full or closed the head is marked held.

Between calls (:class:`QueueSim`'s methods; each acts from the next step on, so at step
resolution):

* *vehicles and legs*: :meth:`QueueSim.add_vehicles` adds vehicles (without a leg, or
  with a first one); :meth:`QueueSim.append_legs` gives a vehicle whose leg is over
  (status 3 or 4), or that has none, a new leg: its route is written at the end of the
  buffer (``rpos``, ``r_end`` point there), status 0, and at its departure time
  (``>= t``) it departs from where it stands like a scheduled trip (step 2);
* *diversion* (:meth:`QueueSim.divert`): for a vehicle on a link, the rest of its route
  (the part it has not entered) is replaced: a copy of the current link (with its entry
  time) and the new rest are written at the end of the buffer and ``rpos``, ``r_end``
  point to the copy, so the next link is always ``route_links[rpos + 1]`` and the
  diversion takes effect at the vehicle's next node (step 3 reads the next link when the
  vehicle leaves).  If the vehicle is the head of a link asleep on its old next link and
  its next link changes, that link wakes up (no longer listed as asleep).  A vehicle not
  departed or waiting gets a whole new route from the same start node; a waiting one
  whose first link changes moves to the end of the new first link's waiting list, held;
* *removal* (:meth:`QueueSim.remove`): a vehicle on a link gets ``r_end = rpos + 1`` and
  ``take_off``: it leaves the network at its next node (step 3: as an arrival, with flow
  capacity and in its turn, but not waiting for space downstream; a head asleep on its old
  next link wakes its link).  A waiting or not-departed vehicle is taken off at once
  (status 4, ``arrive_s = nan``).  Removals count in ``n_taken_off``, not in ``n_removed``
  (stuck removals), and appear in the finish log;
* *closures* (:meth:`QueueSim.close_links`, :meth:`QueueSim.open_links`): a closed link
  admits no vehicle (steps 3 and 4).  A vehicle whose route enters a closed link waits at
  its upstream end (the end of the current link, held, at the head of its queue, which
  waits behind it), and a departure whose first link is closed waits in the waiting list,
  until the link opens again or the caller (the owner's domain) diverts it; vehicles on a
  closed link drive off it as usual.  Opening a link wakes the links asleep on it;
* *capacities*: changes of ``cap_veh_per_step``, ``fftt_s`` and ``storage_veh`` act from
  the next step on; :meth:`QueueSim.set_storage` also wakes the links asleep on a link
  whose storage it raises (a raise seen by direct writes waits for a merge wake-up).

A woken link's head is looked at in the next step, first come in link index order.

Statistics (:func:`link_stats`, computed from the recorded times, not in the loop):
every exit from a link ``l`` at time ``x`` (a move, whose ``x`` is the entry time of the
next link, or an arrival or take-off at ``x = arrive_s``) counts in the bin
``h = min(max(b, 0), n_hours - 1)``, where ``b`` is the integer with
``b * bin_s <= x < (b + 1) * bin_s`` (products in floating point; ``x // bin_s`` for the
usual whole-second widths): ``link_volume[l, h] += 1`` and
``link_tt_sum_s[l, h] += x - enter_s`` (its travel time on ``l``).  The sums run over legs
in index order and, within a leg, along its route (the pieces of a diverted route in the
order driven), so they do not depend on how the run was split into calls nor on when
they are read; with one leg per vehicle, over trips in index order along their routes.

Flow capacity.  The accumulator follows MATSim: a vehicle may leave while
``acc > 0`` and each exit subtracts one vehicle, so ``acc`` may become negative
(never ``<= -1``) and the debt is repaid by later refills.  This discharges a
queue at exactly ``cap`` vehicles per step on average for any ``cap`` (also
non-integer ``1/cap`` and ``cap > 1``), and any window of ``w`` steps carries
fewer than ``cap * w + 1`` exits.  (A rule "exit only if ``acc >= 1``" with the
accumulator capped at ``max(1, cap)`` would throw away the fractional part and
discharge e.g. ``cap = 1.8`` at 1 veh/step and ``cap = 0.3`` at 0.25 veh/step.)

Implementation notes.  The result is identical to the literal per-step
description above, but cheaper.  Step 1 is applied lazily (``acc_step[l]`` is the
last step whose refill has been applied to ``acc_veh[l]``; the pending refills are
replayed one by one when the link is next looked at, so the floating-point values
are bit-identical; within a call the replay does not depend on when it is done).
Step 3 only looks at a link in the steps in which something can happen there, which
it finds with a calendar (timing wheel of ``W`` buckets, ``cal_*``): every link with
a non-empty queue is filed for one step, and the links due at step ``k`` are
looked at in link index order (bitset ``due_bits``, bit ``l`` of word ``l >> 6``,
and its summary ``due_sum``).  A link is due

* at the first step ``k`` with ``ready_s[v] <= t`` (the same floating-point test)
  and ``moved_step[v] < k`` for its head ``v``, since the head of a link only
  changes while the link is looked at or when the empty link receives a vehicle;
* when the head was denied for lack of flow capacity: at the first later step at
  which the replayed refills bring ``acc`` above ``ACC_EPS_VEH``;
* when the head was blocked by storage of ``m``: when a slot freed on ``m`` is given
  to ``l`` (``l`` is listed under ``m``, ``blk_*``, while asleep) or at the step the
  stuck time is reached, whichever is first (never, while ``m`` is closed:
  ``held_since_s`` is ``nan``).

A held link is still looked at in the last step of every call, and the calendar is
rebuilt from the queues at the start of every call, so that changes of
``cap_veh_per_step`` / ``fftt_s`` / ``storage_veh`` and the actions between calls act
as with a look at every link in every step.  Step 4 only looks at the waiting lists that
received a departure or whose link's ``occ`` dropped in the step (a blocked head
stays blocked until then) and, in the first step of a call, at every non-empty one;
links are independent in step 4, so their order does
not matter.  The links with a non-empty queue / waiting list are also kept in the
bitsets ``q_bits`` / ``w_bits``.  A step with nothing due costs ``O(1)``; a
call costs ``O(L / 64 + W + steps + links looked at + moves)``.  The kernel
allocates nothing (except to sort a step's departures when there are more than 32).
Departures are filed by :func:`file_departures` when they are scheduled, in a second
timing wheel (``dep_*``, one bucket per step, a day and more around), so that neither a
call nor a step looks at the vehicles that do not depart in it.

Closures cost nothing in the loop: :meth:`QueueSim.advance` passes ``storage_veh`` with
``-inf`` for the closed links (when there are any), so the storage test that every move
makes anyway fails, and ``closed`` is read only on the rare blocked path.  Legs,
diversions and removals cost nothing either: the route buffer, the leg record
(per leg: vehicle, route pieces, and when its vehicle has moved on to another leg its
outcome) and the per-position leg ``route_leg`` are kept by :class:`QueueSim` between calls
(buffers doubled when full); the loop reads ``rpos`` and ``r_end`` (interleaved in one
array ``vpos``, one cache line per vehicle) where one leg per vehicle needed
``route_indptr[v]``, ``route_indptr[v + 1]`` and ``pos[v]``.  Each move also stores the
position it entered in the enter log ``ent_log`` (a position is entered at most once, so
the log has the buffer's size), from which :meth:`QueueSim.entries` gives a call's link
entries without a pass over the vehicles.  Memory: a vehicle's state and route are
touched once per move, by
then long out of cache; when the links due at a step are taken from the calendar,
the state and next route entries of their heads are prefetched (``llvm.prefetch``,
a hint without effect on results; nothing in the Python twin), so that these
loads overlap.  Array indices are passed through ``_u`` (:func:`twin.kernels._intrinsics.uidx`):
compiled, an index typed ``uint64``, for which Numba leaves out its handling of negative indices
(a sign test and an add at every access, about 15% of the loop's time); every index used is a
valid one (the code tests ``!= -1`` before it indexes), and in the Python twin ``_u`` is the
identity.  The link statistics are not updated in the loop (each exit would
touch two more counters): :func:`link_stats` derives them from ``route_enter_s`` and
``arrive_s`` in one sequential pass when they are read.

Conservation: no vehicle is lost or duplicated; departed = waiting + on links +
arrived + removed (status 1 + 2 + 3 + 4), and ``sum(occ) == count(status == 2)``.  With
``stuck_time_s = inf``, ``occ[l] <= ceil(storage_veh[l])`` always (for storage lowered
between calls: once the link has emptied below it).

The pure-Python twin of the kernel is ``advance_queue.py_func`` (the identical
code run by the interpreter); :class:`QueueSim` selects it with
``backend="python"``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
from numba.extending import overload, register_jitable

from twin.kernels._intrinsics import ctz as _ctz
from twin.kernels._intrinsics import prefetch as _prefetch
from twin.kernels._intrinsics import uidx as _u

__all__ = ["advance_queue", "file_departures", "link_stats", "QueueSim", "Legs", "Entries", "merge_key", "ACC_EPS_VEH",
           "STATUS_NOT_DEPARTED", "STATUS_WAITING", "STATUS_ON_LINK", "STATUS_ARRIVED", "STATUS_REMOVED"]

STATUS_NOT_DEPARTED = 0
STATUS_WAITING = 1
STATUS_ON_LINK = 2
STATUS_ARRIVED = 3
STATUS_REMOVED = 4  # removed: after being stuck (stuck_action="remove"), or taken off (QueueSim.remove)

#: A link has flow capacity left while ``acc_veh > ACC_EPS_VEH``; the tolerance
#: absorbs round-off of the repeated ``+ cap - 1`` updates (e.g. ``1e-16`` for 0).
ACC_EPS_VEH = 1e-9

#: Ring size (steps) of the calendar of links due at a step; a link due later is
#: kept in the last bucket and filed again when that bucket is popped.
CALENDAR_STEPS = 1024

#: Ring size (steps) of the departure calendar: a day at dt = 1 s and more, so that a trip is
#: filed once (a departure further ahead is filed again when its bucket comes round).
DEPARTURE_CALENDAR_STEPS = 1 << 17


_M64 = (1 << 64) - 1


def _mix64(z):
    """SplitMix64 step (Python ints): the finalizer of ``z + golden ratio``."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def merge_key(seed, k, m, u, cap_u):
    """Priority key of upstream link ``u`` for a slot freed on link ``m`` in step ``k``.

    ``U = (h + 1) / 2**53`` with ``h`` the top 53 bits of SplitMix64 hashes of
    ``(seed, k, m, u)``, so ``0 < U <= 1``; the key is ``-log(U) / cap_u``, an exponential
    draw of rate ``cap_u``.  The smallest key among the links waiting for ``m`` wins:
    link ``u`` is chosen with probability ``cap_u / sum(cap)`` (Efraimidis-Spirakis), and
    the draw depends only on its arguments (not on list order, threads or calls).
    """
    z = _mix64((int(seed) ^ int(k)) & _M64)
    z = _mix64(z ^ int(m))
    z = _mix64(z ^ int(u))
    return -math.log(((z >> 11) + 1) * 2.0**-53) / cap_u


@numba.njit(cache=True, inline="always")
def _mix64_nb(z):
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@overload(merge_key, inline="always")
def _merge_key_numba(seed, k, m, u, cap_u):
    # compiled code: the same hash in wrapping uint64 arithmetic
    def impl(seed, k, m, u, cap_u):
        z = _mix64_nb(np.uint64(seed) ^ np.uint64(k))
        z = _mix64_nb(z ^ np.uint64(m))
        z = _mix64_nb(z ^ np.uint64(u))
        h = (z >> np.uint64(11)) + np.uint64(1)
        return -math.log(float(h) * 2.0**-53) / cap_u
    return impl


def _merge_winner(blk_head, blk_next, cap_veh_per_step, merge_seed, k, m):
    """The link asleep on ``m`` with the smallest :func:`merge_key` (ties: lowest index)."""
    u = blk_head[m]
    best = u
    best_key = merge_key(merge_seed, k, m, u, cap_veh_per_step[u])
    u = blk_next[u]
    while u != -1:
        key = merge_key(merge_seed, k, m, u, cap_veh_per_step[u])
        if key < best_key or (key == best_key and u < best):
            best = u
            best_key = key
        u = blk_next[u]
    return best


# compiled code calls this out of line: it only runs when a full link frees a slot, and
# inlining it into the kernel's hot loop slows the loop down (~8% on Baltimore)
_merge_winner_nb = numba.njit(cache=True)(_merge_winner)


@overload(_merge_winner)
def _merge_winner_numba(blk_head, blk_next, cap_veh_per_step, merge_seed, k, m):
    return lambda blk_head, blk_next, cap_veh_per_step, merge_seed, k, m: _merge_winner_nb(
        blk_head, blk_next, cap_veh_per_step, merge_seed, k, m)


# The kernel itself writes these list operations out: a call with array arguments, even
# inlined, makes Numba count references to them, and the kernel ran 10-25% slower with them.
@register_jitable(inline="always")
def _list_push(head, nxt, prev, where, x, b):
    """Put ``x`` first in the doubly linked list ``b`` (``head[b]``, chained by ``nxt``/``prev``)
    and note ``where[x] = b``: the calendar buckets and the lists of asleep links."""
    where[x] = b
    prev[x] = -1
    h = head[b]
    nxt[x] = h
    if h != -1:
        prev[h] = x
    head[b] = x



@register_jitable(inline="always")
def _list_unlink(head, nxt, prev, where, x):
    """Take ``x`` out of the doubly linked list ``where[x]`` it is in (``where[x]`` is kept)."""
    p = prev[x]
    n = nxt[x]
    if p == -1:
        head[where[x]] = n
    else:
        nxt[p] = n
    if n != -1:
        prev[n] = p



@register_jitable(inline="always")
def _first_step_at(r, lo, hi, t_start_s, dt_s, inv_dt):
    """The first step ``e`` in ``[lo, hi]`` whose time ``t_start_s + e * dt_s`` (the kernel's
    floating-point expression) is ``>= r``; the caller ensures that step ``hi`` is."""
    e = int(math.ceil((r - t_start_s) * inv_dt))
    if e < lo:
        e = lo
    if e > hi:
        e = hi
    while e > lo and t_start_s + (e - 1) * dt_s >= r:
        e -= 1
    while t_start_s + e * dt_s < r:
        e += 1
    return e



def _blk_unlink(blk_head, blk_next, blk_prev, blk_on, m, u):
    """Take link ``u`` off the list of the links asleep on ``m``."""
    _list_unlink(blk_head, blk_next, blk_prev, blk_on, u)
    blk_on[u] = -1


# out of line in compiled code too (rare paths: a stuck vehicle, a merge)
_blk_unlink_nb = numba.njit(cache=True)(_blk_unlink)


@overload(_blk_unlink)
def _blk_unlink_numba(blk_head, blk_next, blk_prev, blk_on, m, u):
    return lambda blk_head, blk_next, blk_prev, blk_on, m, u: _blk_unlink_nb(blk_head, blk_next, blk_prev,
                                                                             blk_on, m, u)


@numba.njit(cache=True, nogil=True)  # the events writer thread runs beside it
def advance_queue(
    k0,
    n_steps,
    t_start_s,
    dt_s,
    stuck_time_s,
    stuck_remove,
    merge_seed,
    fftt_s,
    cap_veh_per_step,
    storage_veh,
    closed,
    vpos,
    route_links,
    depart_s,
    dep_head,
    dep_next,
    dep_prev,
    dep_bkt,
    dep_step,
    dep_buf,
    acc_veh,
    acc_step,
    occ_veh,
    last_exit_s,
    q_head,
    q_tail,
    w_head,
    w_tail,
    q_bits,
    w_bits,
    nxt,
    ready_s,
    held,
    held_since_s,
    moved_step,
    status,
    arrive_s,
    take_off,
    leg_of,
    route_enter_s,
    n_forced,
    n_removed,
    n_taken_off,
    fin_log,
    fin_leg,
    fin_n,
    ent_log,
    ent_n,
    cal_head,
    cal_next,
    cal_prev,
    cal_bkt,
    cal_due,
    blk_head,
    blk_next,
    blk_prev,
    blk_on,
    due_bits,
    due_sum,
    pend,
    wd_list,
    wd_flag,
):
    """Advance the spatial-queue model by ``n_steps`` steps, in place.

    Parameters
    ----------
    k0 : int
        Index of the first step to run; step ``k`` is at ``t_start_s + k * dt_s``.
    n_steps : int
        Number of steps to run (``k0 .. k0 + n_steps - 1``).
    t_start_s, dt_s : float
        Time of step 0 and step length, in seconds.
    stuck_time_s : float
        A vehicle blocked by storage for at least this long is moved anyway
        (``inf`` disables forced moves).
    stuck_remove : bool
        Instead of moving a stuck vehicle on, remove it from the network (status 4,
        counted in ``n_removed``; MATSim's ``removeStuckVehicles``).
    merge_seed : uint64
        Seed of the merge draws (:func:`merge_key`).
    fftt_s : float64[L]
        Free-flow travel time of each link, in seconds.
    cap_veh_per_step : float64[L]
        Flow capacity of each link in vehicles per step (> 0).
    storage_veh : float64[L]
        Storage capacity of each link in vehicles (>= 1), ``-inf`` for a closed link.
    closed : uint8[L]
        1 for a link closed to entry (its ``storage_veh`` is ``-inf`` in this call).
    vpos : int64[2 N]
        Route position of each vehicle, interleaved: ``vpos[2 v]`` (``rpos``) is the buffer
        position of its current link (the link it is on, waits for or departs onto) and
        ``vpos[2 v + 1]`` (``r_end``) the end of its current leg's route, so that the rest of
        the leg is ``route_links[rpos + 1:r_end]``; ``rpos`` is updated.
    route_links : int32[R]
        Route buffer: the link of each position (the routes of all legs, in pieces).
    depart_s : float64[N]
        Departure time of each vehicle's current leg, in seconds.
    dep_head : int64[W2]
        Departure calendar: bucket ``k % W2`` lists the trips due to depart at step ``k``
        (and, for trips more than ``W2 - 1`` steps ahead when filed, those to file again
        when the bucket is popped); filled by :func:`file_departures`; updated.
    dep_next, dep_prev, dep_bkt, dep_step : int64[N]
        Successor and predecessor of each trip in its bucket, the bucket and the step at
        which it departs (the first step with ``depart_s <= t``; ``-1`` when not filed);
        updated.
    dep_buf : int64[N]
        Scratch: the vehicles departing at a step, sorted by ``(depart_s, vehicle id)``.
    acc_veh : float64[L]
        Flow accumulator of each link, valid as of step ``acc_step``; updated.
    acc_step : int64[L]
        Last step whose refill has been applied to ``acc_veh``; updated.
    occ_veh : int64[L]
        Vehicles on each link; updated.
    last_exit_s : float64[L]
        Time of the last exit from each link (``-inf`` if none); updated.
    q_head, q_tail : int64[L]
        Head and tail trip of each link's queue (``-1`` if empty); updated.
    w_head, w_tail : int64[L]
        Head and tail trip of each link's waiting list (``-1`` if empty); updated.
    q_bits, w_bits : uint64[ceil(L / 64)]
        Bitsets of the links with a non-empty queue / waiting list; updated.
    nxt : int64[N]
        Successor of each vehicle in its queue or waiting list (``-1`` if last).
    ready_s : float64[N]
        Time each trip may leave its current link.
    held : uint8[N]
        1 when the trip was denied while eligible to move.
    held_since_s : float64[N]
        Time the trip was first blocked by storage (``nan`` if not blocked).
    moved_step : int64[N]
        Last step in which the trip moved.
    status : int8[N]
        0 not departed, 1 waiting, 2 on a link, 3 arrived, 4 removed (stuck, or taken off).
    arrive_s : float64[N]
        Time the vehicle left the network at the end of its current leg's route: its arrival,
        or its exit where it was taken off (``nan`` until then); written.
    take_off : uint8[N]
        1 for a vehicle to take off the network when it leaves the last link of its route
        (status 4 instead of 3).
    leg_of : int64[N]
        Current leg of each vehicle (written to ``fin_leg``).
    route_enter_s : float64[R]
        Time each buffer position was entered, aligned with ``route_links`` (left
        untouched for positions not reached); written.
    n_forced : int64[1]
        Count of forced (stuck) moves; incremented.
    n_removed : int64[1]
        Count of stuck vehicles removed (``stuck_remove``); incremented.
    n_taken_off : int64[1]
        Count of vehicles taken off where ``take_off`` said; incremented.
    fin_log, fin_leg : int64[G]
        The vehicles that arrived or were removed, in the order they did, and their legs
        (each leg once); ``[:fin_n[0]]`` is filled, appended to.
    fin_n : int64[1]
        Number of entries of ``fin_log``; updated.
    ent_log : int64[R]
        Enter log: the buffer position of every link entry, in the order they happened (a
        position is entered at most once); ``ent_log[:ent_n[0]]`` is filled, appended to.
    ent_n : int64[1]
        Number of entries of ``ent_log``; updated.
    cal_head : int64[W]
        Bucket heads of the calendar of links due at a step (any ``W >= 1``);
        scratch, rebuilt by every call.
    cal_next, cal_prev, cal_bkt, cal_due : int64[L]
        Successor and predecessor of each link in its calendar bucket, the bucket
        and the step it is due at; scratch.
    blk_head, blk_next, blk_prev, blk_on : int64[L]
        Links asleep, waiting for a slot on a full link, listed per downstream link
        (``blk_head[m]``, doubly linked), and the link each is listed under
        (``-1`` if none); state, kept between calls.
    due_bits : uint64[ceil(L / 64)]
        Bitset of the links due at the current step; scratch.
    due_sum : uint64[ceil(L / 4096)]
        Bitset of the non-zero words of ``due_bits``; scratch.
    pend : int64[L]
        Links to file in the calendar at the start of the next step; scratch.
    wd_list : int64[L]
        Links whose waiting list is looked at in step 4 of the current step; scratch.
    wd_flag : uint8[L]
        1 for the links in ``wd_list``; scratch, all 0 between calls.

    Returns
    -------
    n_arrived : int
        Number of vehicles that arrived (status 3) during this call.
    """
    inv_dt = 1.0 / dt_s
    n_words = q_bits.shape[0]
    n_sum = due_sum.shape[0]
    n_cal = cal_head.shape[0]
    n_dcal = dep_head.shape[0]
    one = np.uint64(1)
    zero = np.uint64(0)
    n_arrived = 0
    k_end = k0 + n_steps
    if n_steps <= 0:
        return n_arrived
    t_last = t_start_s + (k_end - 1) * dt_s

    # Set-up of the calendar of this call (see "Implementation notes"): empty buckets
    # and due sets; every link with a non-empty queue is filed in the first loop
    # iteration, every link with a non-empty waiting list is due for step 4.
    for b in range(min(n_cal, n_steps)):
        cal_head[_u(b)] = -1
    for wi in range(n_sum):
        due_sum[_u(wi)] = zero
    for wi in range(n_words):
        due_bits[_u(wi)] = zero
    n_pend = 0
    n_wd = 0
    n_ent = ent_n[0]
    for wi in range(n_words):
        word = q_bits[_u(wi)]
        while word != zero:
            b = _ctz(word)
            word &= word - one
            pend[_u(n_pend)] = wi * 64 + b
            n_pend += 1
        word = w_bits[_u(wi)]
        while word != zero:
            b = _ctz(word)
            word &= word - one
            l = wi * 64 + b
            wd_flag[_u(l)] = 1
            wd_list[_u(n_wd)] = l
            n_wd += 1

    for k in range(k0, k_end):
        t = t_start_s + k * dt_s

        # file the links whose head changed (or became eligible to be looked at) in
        # the previous step, for the first step >= k at which the head is eligible
        for pi in range(n_pend):
            l = pend[_u(pi)]
            v = q_head[_u(l)]
            j = k
            if moved_step[_u(v)] >= j:
                j = moved_step[_u(v)] + 1
            r = ready_s[_u(v)]
            e = j
            if r > t_start_s + j * dt_s:
                if r > t_last:
                    e = k_end
                else:
                    e = _first_step_at(r, j + 1, k_end - 1, t_start_s, dt_s, inv_dt)
            if e < k_end:
                fe = e
                if fe > k + n_cal - 1:
                    fe = k + n_cal - 1
                b = (fe - k0) % n_cal
                cal_due[_u(l)] = e
                cal_bkt[_u(l)] = b
                cal_prev[_u(l)] = -1
                nl = cal_head[_u(b)]
                cal_next[_u(l)] = nl
                if nl != -1:
                    cal_prev[_u(nl)] = l
                cal_head[_u(b)] = l
        n_pend = 0

        # pop the links due at step k into the due set (re-file those due later)
        b = (k - k0) % n_cal
        l = cal_head[_u(b)]
        cal_head[_u(b)] = -1
        n_due = 0
        while l != -1:
            nl = cal_next[_u(l)]
            if cal_due[_u(l)] > k:
                fe = cal_due[_u(l)]
                if fe > k + n_cal - 1:
                    fe = k + n_cal - 1
                bb = (fe - k0) % n_cal
                cal_bkt[_u(l)] = bb
                cal_prev[_u(l)] = -1
                nb = cal_head[_u(bb)]
                cal_next[_u(l)] = nb
                if nb != -1:
                    cal_prev[_u(nb)] = l
                cal_head[_u(bb)] = l
            else:
                due_bits[_u(l >> 6)] |= one << np.uint64(l & 63)
                due_sum[_u(l >> 12)] |= one << np.uint64((l >> 6) & 63)
                n_due += 1
                # the head of l is looked at soon; its trip's state and route were last
                # touched at its previous move, long out of cache by now: fetch them while
                # the other due links are filed (the loads then overlap instead of waiting
                # one after the other in the looks)
                v = q_head[_u(l)]
                rp = vpos[_u(2 * v)]
                _prefetch(route_links, rp + 1)
                _prefetch(route_enter_s, rp + 1)
                _prefetch(ready_s, v)
                _prefetch(nxt, v)
                _prefetch(held_since_s, v)
            l = nl

        # 1. refill: applied lazily (see module docstring).

        # 2. departures -> waiting lists: the trips filed for step k, in (depart_s, id) order.
        # A trip's calendar entry and route were last touched when it was scheduled: fetch
        # them for the first trips of the next two steps' buckets (loads that then overlap
        # with this step's work instead of stalling the next ones).
        db = k % n_dcal
        db1 = db + 1 if db + 1 < n_dcal else 0
        db2 = db1 + 1 if db1 + 1 < n_dcal else 0
        i = dep_head[_u(db2)]
        if i != -1:
            _prefetch(dep_next, i)
            _prefetch(dep_step, i)
            _prefetch(vpos, 2 * i)
            _prefetch(depart_s, i)
        i = dep_head[_u(db1)]
        if i != -1:
            _prefetch(route_links, vpos[_u(2 * i)])
            _prefetch(nxt, i)
            _prefetch(status, i)
            i = dep_next[_u(i)]
            if i != -1:
                _prefetch(dep_next, i)
                _prefetch(dep_step, i)
                _prefetch(vpos, 2 * i)
                _prefetch(depart_s, i)
        i = dep_head[_u(db)]
        dep_head[_u(db)] = -1
        nd = 0
        while i != -1:
            ni = dep_next[_u(i)]
            if dep_step[_u(i)] > k:
                # filed more than n_dcal - 1 steps ahead: file again, as far as the ring reaches
                fb = dep_step[_u(i)]
                if fb > k + n_dcal - 1:
                    fb = k + n_dcal - 1
                fb = fb % n_dcal
                dep_bkt[_u(i)] = fb
                dep_prev[_u(i)] = -1
                nb = dep_head[_u(fb)]
                dep_next[_u(i)] = nb
                if nb != -1:
                    dep_prev[_u(nb)] = i
                dep_head[_u(fb)] = i
            else:
                dep_buf[_u(nd)] = i
                nd += 1
                dep_step[_u(i)] = -1
            i = ni
        if nd > 1:
            if nd <= 32:
                # insertion sort by (depart_s, id): a step has few departures
                for a in range(1, nd):
                    i = dep_buf[_u(a)]
                    di = depart_s[_u(i)]
                    c = a - 1
                    while c >= 0 and (depart_s[dep_buf[_u(c)]] > di or (depart_s[dep_buf[_u(c)]] == di and dep_buf[_u(c)] > i)):
                        dep_buf[c + 1] = dep_buf[_u(c)]
                        c -= 1
                    dep_buf[c + 1] = i
            else:
                ids = np.sort(dep_buf[:nd])
                order = np.argsort(depart_s[ids], kind="mergesort")
                for a in range(nd):
                    dep_buf[_u(a)] = ids[order[a]]
        for p in range(nd):
            i = dep_buf[_u(p)]
            # the vehicles departing next read their routes for the first time today: prefetch
            # them a few departures ahead (the route position first, then the first link)
            if p + 16 < nd:
                _prefetch(vpos, 2 * dep_buf[p + 16])
            if p + 8 < nd:
                _prefetch(route_links, vpos[2 * dep_buf[p + 8]])
            l = route_links[_u(vpos[_u(2 * i)])]
            nxt[_u(i)] = -1
            if w_tail[_u(l)] == -1:
                w_head[_u(l)] = i
                w_bits[_u(l >> 6)] |= one << np.uint64(l & 63)
            else:
                nxt[_u(w_tail[_u(l)])] = i
            w_tail[_u(l)] = i
            status[_u(i)] = 1
            if wd_flag[_u(l)] == 0:
                wd_flag[_u(l)] = 1
                wd_list[_u(n_wd)] = l
                n_wd += 1

        # 3. link exits, links with a possibly eligible head in index order
        if n_due > 0:
            for si in range(n_sum):
                sword = due_sum[_u(si)]
                if sword == zero:
                    continue
                due_sum[_u(si)] = zero
                while sword != zero:
                    b = _ctz(sword)
                    sword &= sword - one
                    wi = si * 64 + b
                    word = due_bits[_u(wi)]
                    due_bits[_u(wi)] = zero
                    while word != zero:
                        b = _ctz(word)
                        word &= word - one
                        l = wi * 64 + b
                        # mb != -1: l is asleep, its head waits for a slot on mb
                        # (merge rule: only a wake-up or the stuck time lets it on)
                        mb = blk_on[_u(l)]
                        refilled = False
                        exited = False
                        n_left = 0
                        blocked = 0
                        mblk = -1
                        while True:
                            v = q_head[_u(l)]
                            if v == -1:
                                break
                            if ready_s[_u(v)] > t or moved_step[_u(v)] == k:
                                break
                            if not refilled:
                                # lazy replay of the pending per-step refills of link l
                                pending = k - acc_step[_u(l)]
                                if pending > 0:
                                    a = acc_veh[_u(l)]
                                    c = cap_veh_per_step[_u(l)]
                                    for _ in range(pending):
                                        if a >= c:
                                            break
                                        a = min(a + c, c)
                                    acc_veh[_u(l)] = a
                                    acc_step[_u(l)] = k
                                refilled = True
                            if acc_veh[_u(l)] <= ACC_EPS_VEH:
                                held[_u(v)] = 1
                                blocked = 1
                                break
                            if held[_u(v)] != 0:
                                x = t
                            else:
                                x = max(ready_s[_u(v)], last_exit_s[_u(l)])
                            rp = vpos[_u(2 * v)]
                            is_last = rp + 1 >= vpos[_u(2 * v + 1)]
                            m = -1
                            if not is_last:
                                m = route_links[_u(rp + 1)]
                                # a closed link has storage -inf here (QueueSim.advance)
                                if mb != -1 or occ_veh[_u(m)] >= storage_veh[_u(m)]:
                                    held[_u(v)] = 1
                                    if closed[_u(m)] != 0:
                                        # waits for the reopening (or a diversion): no stuck clock
                                        held_since_s[_u(v)] = np.nan
                                    elif np.isnan(held_since_s[_u(v)]):
                                        held_since_s[_u(v)] = t
                                    if t - held_since_s[_u(v)] >= stuck_time_s:
                                        if mb != -1:
                                            # stuck: no longer waiting for a slot on mb
                                            _blk_unlink(blk_head, blk_next, blk_prev, blk_on, mb, l)
                                            mb = -1
                                        if stuck_remove:
                                            nh = nxt[_u(v)]
                                            q_head[_u(l)] = nh
                                            if nh == -1:
                                                q_tail[_u(l)] = -1
                                                q_bits[_u(l >> 6)] &= ~(one << np.uint64(l & 63))
                                            occ_veh[_u(l)] -= 1
                                            exited = True
                                            n_left += 1
                                            nxt[_u(v)] = -1
                                            status[_u(v)] = 4
                                            held[_u(v)] = 0
                                            held_since_s[_u(v)] = np.nan
                                            n_removed[0] += 1
                                            fin_log[fin_n[0]] = v
                                            fin_leg[fin_n[0]] = leg_of[_u(v)]
                                            fin_n[0] += 1
                                            continue
                                        n_forced[0] += 1
                                    else:
                                        blocked = 2
                                        mblk = m
                                        break
                            # pop v from l
                            nh = nxt[_u(v)]
                            q_head[_u(l)] = nh
                            if nh == -1:
                                q_tail[_u(l)] = -1
                                q_bits[_u(l >> 6)] &= ~(one << np.uint64(l & 63))
                            occ_veh[_u(l)] -= 1
                            exited = True
                            n_left += 1
                            acc_veh[_u(l)] -= 1.0
                            last_exit_s[_u(l)] = x
                            nxt[_u(v)] = -1
                            if is_last:
                                arrive_s[_u(v)] = x
                                if take_off[_u(v)] != 0:
                                    status[_u(v)] = 4
                                    n_taken_off[0] += 1
                                else:
                                    status[_u(v)] = 3
                                    n_arrived += 1
                                held[_u(v)] = 0
                                held_since_s[_u(v)] = np.nan
                                fin_log[fin_n[0]] = v
                                fin_leg[fin_n[0]] = leg_of[_u(v)]
                                fin_n[0] += 1
                            else:
                                tl = q_tail[_u(m)]
                                if tl == -1:
                                    q_head[_u(m)] = v
                                    q_bits[_u(m >> 6)] |= one << np.uint64(m & 63)
                                    if m != l:
                                        # m was empty: file it (next step) for its new head
                                        pend[_u(n_pend)] = m
                                        n_pend += 1
                                else:
                                    nxt[_u(tl)] = v
                                q_tail[_u(m)] = v
                                occ_veh[_u(m)] += 1
                                vpos[_u(2 * v)] = rp + 1
                                route_enter_s[_u(rp + 1)] = x
                                ent_log[_u(n_ent)] = rp + 1
                                n_ent += 1
                                ready_s[_u(v)] = x + fftt_s[_u(m)]
                                held[_u(v)] = 0
                                held_since_s[_u(v)] = np.nan
                                moved_step[_u(v)] = k
                        if q_head[_u(l)] != -1:
                            if blocked != 0:
                                # An eligible head that was denied is looked at every step,
                                # except that with the flow capacity used up nothing can
                                # happen before the step at which the (replayed) refills
                                # bring acc above ACC_EPS_VEH; the link is still looked
                                # at in the last step of the call, so acc_veh/acc_step
                                # end each call as with a look at every step.
                                fe = k + 1
                                if blocked == 1:
                                    a = acc_veh[_u(l)]
                                    c = cap_veh_per_step[_u(l)]
                                    while fe < k_end - 1:
                                        if a < c:
                                            a = min(a + c, c)
                                        if a > ACC_EPS_VEH:
                                            break
                                        fe += 1
                                else:
                                    # Blocked by storage: nothing changes until a slot on
                                    # mblk is given to l (a wake-up, below) or the stuck time
                                    # is reached; the refill replay does not depend on when
                                    # it is done.  The link is still looked at in the last
                                    # step of the call.  l stays listed under mblk (asleep)
                                    # across calls.
                                    if fe < k_end:
                                        hs = held_since_s[q_head[_u(l)]]
                                        fe = k_end - 1
                                        if t_last - hs >= stuck_time_s:
                                            e = int(math.ceil((hs + stuck_time_s - t_start_s) * inv_dt))
                                            if e < k + 1:
                                                e = k + 1
                                            if e > k_end - 1:
                                                e = k_end - 1
                                            while e > k + 1 and (t_start_s + (e - 1) * dt_s) - hs >= stuck_time_s:
                                                e -= 1
                                            while not ((t_start_s + e * dt_s) - hs >= stuck_time_s):
                                                e += 1
                                            fe = e
                                    if mb == -1:
                                        nb = blk_head[_u(mblk)]
                                        blk_next[_u(l)] = nb
                                        blk_prev[_u(l)] = -1
                                        if nb != -1:
                                            blk_prev[_u(nb)] = l
                                        blk_head[_u(mblk)] = l
                                        blk_on[_u(l)] = mblk
                                if fe < k_end:
                                    bb = fe
                                    if bb > k + n_cal - 1:
                                        bb = k + n_cal - 1
                                    bb = (bb - k0) % n_cal
                                    cal_due[_u(l)] = fe
                                    cal_bkt[_u(l)] = bb
                                    cal_prev[_u(l)] = -1
                                    nb = cal_head[_u(bb)]
                                    cal_next[_u(l)] = nb
                                    if nb != -1:
                                        cal_prev[_u(nb)] = l
                                    cal_head[_u(bb)] = l
                            else:
                                pend[_u(n_pend)] = l
                                n_pend += 1
                        while n_left > 0 and blk_head[_u(l)] != -1:
                            # n_left slots freed on l: each goes to one of the links asleep on
                            # l, drawn with probability proportional to its flow capacity
                            # (smallest merge_key); the winner is looked at in this step if
                            # it comes after l, else in the next one
                            n_left -= 1
                            u = _merge_winner(blk_head, blk_next, cap_veh_per_step, merge_seed, k, l)
                            _blk_unlink(blk_head, blk_next, blk_prev, blk_on, l, u)
                            if cal_due[_u(u)] > k:
                                # take u out of its calendar bucket
                                pc = cal_prev[_u(u)]
                                nc = cal_next[_u(u)]
                                if pc == -1:
                                    cal_head[_u(cal_bkt[_u(u)])] = nc
                                else:
                                    cal_next[_u(pc)] = nc
                                if nc != -1:
                                    cal_prev[_u(nc)] = pc
                                if u > l:
                                    uw = u >> 6
                                    ubit = one << np.uint64(u & 63)
                                    if uw == wi:
                                        word |= ubit
                                    else:
                                        due_bits[_u(uw)] |= ubit
                                        if (uw >> 6) == si:
                                            sword |= one << np.uint64(uw & 63)
                                        else:
                                            due_sum[_u(uw >> 6)] |= one << np.uint64(uw & 63)
                                    cal_due[_u(u)] = k
                                elif k + 1 < k_end:
                                    bb = (k + 1 - k0) % n_cal
                                    cal_due[_u(u)] = k + 1
                                    cal_bkt[_u(u)] = bb
                                    cal_prev[_u(u)] = -1
                                    nb = cal_head[_u(bb)]
                                    cal_next[_u(u)] = nb
                                    if nb != -1:
                                        cal_prev[_u(nb)] = u
                                    cal_head[_u(bb)] = u
                            # else: u is due in this step and not looked at yet (u > l), or
                            # this is the last step (the next call files every queue)
                        if exited and w_head[_u(l)] != -1 and wd_flag[_u(l)] == 0:
                            # a slot may have freed up for the waiting list of l
                            wd_flag[_u(l)] = 1
                            wd_list[_u(n_wd)] = l
                            n_wd += 1

        # 4. waiting lists -> first link (links are independent here: any order)
        for wj in range(n_wd):
            l = wd_list[_u(wj)]
            wd_flag[_u(l)] = 0
            if q_head[_u(l)] == -1 and w_head[_u(l)] != -1 and occ_veh[_u(l)] < storage_veh[_u(l)]:
                # the queue of l becomes non-empty: file it (next step) for its head
                pend[_u(n_pend)] = l
                n_pend += 1
            while True:
                w = w_head[_u(l)]
                if w == -1:
                    break
                if occ_veh[_u(l)] >= storage_veh[_u(l)]:
                    held[_u(w)] = 1
                    break
                nw = nxt[_u(w)]
                w_head[_u(l)] = nw
                if nw == -1:
                    w_tail[_u(l)] = -1
                    w_bits[_u(l >> 6)] &= ~(one << np.uint64(l & 63))
                nxt[_u(w)] = -1
                tl = q_tail[_u(l)]
                if tl == -1:
                    q_head[_u(l)] = w
                    q_bits[_u(l >> 6)] |= one << np.uint64(l & 63)
                else:
                    nxt[_u(tl)] = w
                q_tail[_u(l)] = w
                occ_veh[_u(l)] += 1
                status[_u(w)] = 2
                # its departure time if it enters in the step it departed in (not delayed by a full
                # link or by vehicles ahead of it in the list), else the step's time
                xw = depart_s[_u(w)] if held[_u(w)] == 0 and depart_s[_u(w)] > t_start_s + (k - 1) * dt_s else t
                rw = vpos[_u(2 * w)]
                route_enter_s[_u(rw)] = xw
                ent_log[_u(n_ent)] = rw
                n_ent += 1
                ready_s[_u(w)] = xw + fftt_s[_u(l)]
                held[_u(w)] = 0
                held_since_s[_u(w)] = np.nan
                moved_step[_u(w)] = k
        n_wd = 0
    ent_n[0] = n_ent
    return n_arrived


@numba.njit(cache=True)
def _schedule_problem(ids, dep_s, n_trips, t_now, status, leg_of, mark):
    """First problem of a :meth:`QueueSim.schedule` call, as ``(code, j)`` (``code`` 0: none; 1 a
    vehicle id out of range, 2 repeated, 3 a departure time not finite, 4 in the past, 5 a vehicle
    that departed already, 6 a vehicle without a leg; ``j`` the offending position).  One pass;
    ``mark`` (uint8[N], all 0) is scratch and left all 0."""
    code = 0
    at = -1
    for j in range(ids.shape[0]):
        i = ids[j]
        if i < 0 or i >= n_trips:
            code, at = 1, j
            break
        if mark[i] != 0:
            code, at = 2, j
            break
        mark[i] = 1
        d = dep_s[j]
        if not math.isfinite(d):
            code, at = 3, j
            break
        if d < t_now:
            code, at = 4, j
            break
        if status[i] != 0:
            code, at = 5, j
            break
        if leg_of[i] < 0:
            code, at = 6, j
            break
    for j in range(ids.shape[0]):
        i = ids[j]
        if 0 <= i < n_trips:
            mark[i] = 0
    return code, at


@numba.njit(cache=True)
def file_departures(ids, dep_s, k_now, t_start_s, dt_s, depart_s, dep_head, dep_next, dep_prev, dep_bkt, dep_step):
    """Set departure times and file the vehicles in the departure calendar of :func:`advance_queue`.

    Vehicle ``ids[j]`` gets ``depart_s = dep_s[j]`` and is filed for the first step
    ``e >= k_now`` whose time ``t_start_s + e * dt_s`` (the kernel's floating-point
    expression) is ``>= dep_s[j]``; a vehicle already filed is first taken out of its bucket
    (rescheduled).  ``O(len(ids))``: no pass over all vehicles.  The arrays are those of
    :func:`advance_queue`; ``k_now`` is the next step to run.
    """
    n_dcal = dep_head.shape[0]
    inv_dt = 1.0 / dt_s
    never = 1 << 62
    for j in range(ids.shape[0]):
        i = ids[j]
        r = dep_s[j]
        depart_s[i] = r
        if dep_step[i] != -1:
            # rescheduled: take it out of its bucket
            _list_unlink(dep_head, dep_next, dep_prev, dep_bkt, i)
        if (r - t_start_s) * inv_dt >= never:
            e = never
        else:
            e = _first_step_at(r, k_now, never, t_start_s, dt_s, inv_dt)
        dep_step[i] = e
        fb = e
        if fb > k_now + n_dcal - 1:
            fb = k_now + n_dcal - 1
        _list_push(dep_head, dep_next, dep_prev, dep_bkt, i, fb % n_dcal)


@numba.njit(cache=True)
def link_stats(route_links, route_enter_s, n_legs, leg_vehicle, leg_first_piece, leg_status, leg_arrive_s,
               leg_last_pos, piece_start, piece_end, piece_next, leg_of, vpos, status, arrive_s, bin_s, n_links,
               n_hours, link_volume, link_tt_sum_s):
    """Link statistics of the exits so far, from the recorded entry and arrival times.

    For each leg in index order, and each buffer position ``j`` of its route that it has left,
    in route order (its pieces in chain order): the exit time ``x`` is the entry time of the next
    position, ``route_enter_s[j + 1]`` (``arrive_s`` for the position it left the network from),
    the bin ``h = min(max(b, 0), n_hours - 1)`` with ``b * bin_s <= x < (b + 1) * bin_s``, and
    ``link_volume[l, h] += 1``, ``link_tt_sum_s[l, h] += x - route_enter_s[j]`` with
    ``l = route_links[j]``.  The positions left: all of a piece that is followed by another (it
    was cut where the vehicle was diverted, ``piece_end``), and in the last piece those before
    the vehicle's position ``p`` (``rpos``, or ``leg_last_pos`` for a leg that is no longer its
    vehicle's current one), and ``p`` itself when the leg arrived (status 3) or was taken off at
    a node (status 4 with a finite ``arrive_s``).  A leg removed when stuck, or taken off before
    it entered a link, has left the positions before ``p``.  With one leg per vehicle (leg
    ``i`` = vehicle ``i``, one piece each) this is the sum over trips in index order along their
    routes.

    Parameters
    ----------
    route_links, route_enter_s : int32[R], float64[R]
        The route buffer and its entry times (:func:`advance_queue`).
    n_legs : int
        Number of legs.
    leg_vehicle, leg_first_piece, leg_status, leg_arrive_s, leg_last_pos : arrays[G]
        Per leg: its vehicle, its first route piece and, for a leg that is no longer its
        vehicle's current one, its final status, arrival time and last position.
    piece_start, piece_end, piece_next : int64[P]
        Route pieces: buffer positions ``[piece_start, piece_end)`` and the next piece of the
        same leg (``-1`` for the last).
    leg_of, vpos, status, arrive_s
        Per vehicle, as in :func:`advance_queue`.
    bin_s : float
        Width of the time bins, seconds.
    n_links, n_hours : int
        Shape of the outputs.
    link_volume : int64[n_links, n_hours]
        Exits per link and bin; zeroed, then filled.
    link_tt_sum_s : float64[n_links, n_hours]
        Sum of the link travel times of those exits, seconds; zeroed, then filled.
    """
    inv_bin = 1.0 / bin_s
    for l in range(n_links):
        for h in range(n_hours):
            link_volume[l, h] = 0
            link_tt_sum_s[l, h] = 0.0
    for g in range(n_legs):
        v = leg_vehicle[g]
        if leg_of[v] == g:
            st = status[v]
            arr = arrive_s[v]
            lp = vpos[2 * v]
        else:
            st = leg_status[g]
            arr = leg_arrive_s[g]
            lp = leg_last_pos[g]
        if st < 2:
            continue
        left_last = st == 3 or (st == 4 and not np.isnan(arr))
        pc = leg_first_piece[g]
        while pc != -1:
            r0 = piece_start[pc]
            nx = piece_next[pc]
            if nx != -1:
                e = piece_end[pc]
            elif left_last:
                e = lp + 1
            else:
                e = lp
            for j in range(r0, e):
                if nx == -1 and left_last and j == lp:
                    x = arr
                else:
                    x = route_enter_s[j + 1]
                # the bin of x: x // bin_s with a multiplication and one correction
                h = int(x * inv_bin)
                if h * bin_s > x:
                    h -= 1
                elif (h + 1) * bin_s <= x:
                    h += 1
                if h < 0:
                    h = 0
                if h > n_hours - 1:
                    h = n_hours - 1
                l = route_links[j]
                link_volume[l, h] += 1
                link_tt_sum_s[l, h] += x - route_enter_s[j]
            pc = nx


def _wait_unlink(w_head, w_tail, w_bits, nxt, l, v):
    """Take vehicle ``v`` out of the waiting list of link ``l`` (singly linked: a walk from its head)."""
    p = -1
    c = w_head[l]
    while c != v:
        p = c
        c = nxt[c]
    n = nxt[v]
    if p == -1:
        w_head[l] = n
    else:
        nxt[p] = n
    if w_tail[l] == v:
        w_tail[l] = p
    nxt[v] = -1
    if w_head[l] == -1:
        w_bits[l >> 6] &= ~(np.uint64(1) << np.uint64(l & 63))


def _wait_append(w_head, w_tail, w_bits, nxt, l, v):
    """Append vehicle ``v`` to the waiting list of link ``l``."""
    nxt[v] = -1
    if w_tail[l] == -1:
        w_head[l] = v
        w_bits[l >> 6] |= np.uint64(1) << np.uint64(l & 63)
    else:
        nxt[w_tail[l]] = v
    w_tail[l] = v


_wait_unlink_nb = numba.njit(cache=True)(_wait_unlink)
_wait_append_nb = numba.njit(cache=True)(_wait_append)


def _routed_through(mask, n_veh, vpos, status, leg_of, route_links, out):
    """The vehicles (into ``out``, ascending) whose current leg has a link with ``mask`` set among
    the positions it has not entered yet; returns their number."""
    n = 0
    for v in range(n_veh):
        if leg_of[v] < 0:
            continue
        st = status[v]
        if st >= 3:
            continue
        a = vpos[2 * v]
        if st == 2:
            a += 1
        for p in range(a, vpos[2 * v + 1]):
            if mask[route_links[p]] != 0:
                out[n] = v
                n += 1
                break
    return n


_routed_through_nb = numba.njit(cache=True)(_routed_through)


def _as_1d(name, a, dtype):
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "b":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.dtype(dtype).kind in "iu":
        if arr.size and arr.dtype.kind not in "iu":
            if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _ids_1d(name, a):
    """A scalar or 1-D array of integer ids as int64[:]."""
    arr = np.atleast_1d(np.asarray(a))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a scalar or 1-D")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


class Legs(NamedTuple):
    """Legs (see :meth:`QueueSim.legs`), one element per leg asked for."""

    vehicle: np.ndarray
    """Vehicle of the leg (int64)."""
    status: np.ndarray
    """Status of the leg (as ``QueueSim.status``; int8)."""
    depart_s: np.ndarray
    """Departure time, seconds (``inf`` until scheduled)."""
    arrive_s: np.ndarray
    """Time the leg left the network (arrival, or exit where it was taken off), ``nan`` until then."""


class Entries(NamedTuple):
    """Link entries (see :meth:`QueueSim.entries`), one element per entry, in the order they happened."""

    pos: np.ndarray
    """Buffer position entered (int64)."""
    link: np.ndarray
    """Link entered, ``route_links[pos]`` (int64)."""
    enter_s: np.ndarray
    """Entry time, ``route_enter_s[pos]``, seconds."""
    leg: np.ndarray
    """Leg of the vehicle that entered, ``route_leg[pos]`` (int64)."""
    vehicle: np.ndarray
    """Vehicle that entered (int64)."""


# Per-vehicle, per-leg, per-piece and per-position buffers of QueueSim: (attribute, dtype, fill).
# They have a capacity (doubled when exceeded, between calls); the kernels get the whole buffers.
_VEHICLE_FIELDS = (
    ("_depart_s", np.float64, np.inf), ("_nxt", np.int64, -1), ("_ready_s", np.float64, np.nan),
    ("_held", np.uint8, 0), ("_held_since_s", np.float64, np.nan), ("_moved_step", np.int64, -1),
    ("_status", np.int8, 0), ("_arrive_s", np.float64, np.nan), ("_take_off", np.uint8, 0),
    ("_leg_of", np.int64, -1), ("_cur_piece", np.int64, -1), ("_owner", np.int64, -1),
    ("_dep_next", np.int64, -1), ("_dep_prev", np.int64, -1), ("_dep_bkt", np.int64, 0),
    ("_dep_step", np.int64, -1), ("_dep_buf", np.int64, 0), ("_mark", np.uint8, 0),
)
_LEG_FIELDS = (
    ("_leg_vehicle", np.int64, -1), ("_leg_first_piece", np.int64, -1), ("_leg_depart_s", np.float64, np.nan),
    ("_leg_arrive_s", np.float64, np.nan), ("_leg_status", np.int8, 0), ("_leg_last_pos", np.int64, -1),
    ("_fin_log", np.int64, 0), ("_fin_leg", np.int64, 0),
)
_PIECE_FIELDS = (("_piece_start", np.int64, 0), ("_piece_end", np.int64, 0), ("_piece_next", np.int64, -1))
_ROUTE_FIELDS = (("_route_links", np.int32, 0), ("_route_enter_s", np.float64, np.nan),
                 ("_route_leg", np.int32, -1), ("_ent_log", np.int64, 0))


def _grown(arr, n, fill):
    out = np.full(n, fill, dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


def _vehicle_view(name, doc):
    def get(self):
        return getattr(self, name)[: self._n_veh]
    return property(get, doc=doc)


class QueueSim:
    """Spatial-queue traffic simulation owning the state arrays of :func:`advance_queue`.

    Parameters
    ----------
    fftt_s : array_like of float, shape (L,)
        Free-flow travel time of each link, seconds (>= 0, finite).
    cap_veh_per_s : array_like of float, shape (L,)
        Flow capacity of each link, vehicles per second (> 0, finite).
    storage_veh : array_like of float, shape (L,)
        Storage capacity of each link, vehicles (>= 1).
    route_indptr : array_like of int, shape (N + 1,)
        CSR pointer of the routes of the first ``N`` vehicles into ``route_links`` (starts at 0,
        strictly increasing: every route has at least one link, ends at ``len(route_links)``).
        Vehicle ``i`` gets one leg (leg ``i``) whose route occupies the buffer positions
        ``route_indptr[i]:route_indptr[i + 1]``; it departs once :meth:`schedule` gives it a time.
        ``N = 0`` is allowed (vehicles are then added with :meth:`add_vehicles`).
    route_links : array_like of int, shape (R,)
        Link indices of all routes, concatenated (``0 <= link < L``).
    dt_s : float, default 1.0
        Step length, seconds.
    t_start_s : float, default 0.0
        Time of the first step, seconds.
    stuck_time_s : float, default inf
        Time after which a vehicle blocked by storage is moved anyway.
    n_hours : int, default 24
        Number of time bins of the link statistics (later exits go to the last).
    bin_s : float, default 3600.0
        Width of those bins, seconds.
    stuck_action : {"force", "remove"}, default "force"
        What happens to a vehicle blocked by a full link for ``stuck_time_s``: moved
        on regardless (counted in ``n_forced_moves``) or removed from the network
        (status 4, counted in ``n_removed``).
    merge_seed : int, default 0
        Seed (0 <= seed < 2**64) of the draws that give a slot freed on a full link to one
        of the links waiting for it (see :func:`merge_key`); part of the run's RNG tree.
    backend : {"numba", "python"}, default "numba"
        ``"python"`` runs the identical kernel code in the interpreter
        (``advance_queue.py_func``).
    link_from_node, link_to_node : array_like of int, shape (L,), optional
        The nodes each link starts and ends at.  When given, :meth:`append_legs`,
        :meth:`add_vehicles` and :meth:`divert` check that the routes they get are connected
        and start where the vehicle stands; the constructor's routes are not checked.

    Notes
    -----
    Vehicles are not departed until :meth:`schedule` gives them a departure time;
    ``depart_s`` is ``inf`` for unscheduled ones (read-only: :meth:`schedule` files the
    vehicle in the departure calendar, see :func:`file_departures`).  ``t_s`` is the time of
    the next step to run.  ``link_volume`` / ``link_tt_sum_s`` are derived from the
    recorded times when read (:func:`link_stats`), ``enter_s`` from ``route_enter_s``.

    Between calls of :meth:`advance` the caller may also add vehicles (:meth:`add_vehicles`),
    give a vehicle that finished its leg a new one (:meth:`append_legs`), divert a vehicle
    (:meth:`divert`), take it off the network (:meth:`remove`), close links to entry and open
    them again (:meth:`close_links`, :meth:`open_links`) and change storage capacities
    (:meth:`set_storage`; writes to ``cap_veh_per_step``, ``fftt_s`` and ``storage_veh`` act
    from the next call on as well).  The per-vehicle arrays (``status``, ``arrive_s``, ...) and
    ``route_links`` / ``route_enter_s`` are views of buffers that grow when vehicles or routes
    are added: read them again after such a call instead of keeping them.
    """

    def __init__(self, *, fftt_s, cap_veh_per_s, storage_veh, route_indptr, route_links,
                 dt_s=1.0, t_start_s=0.0, stuck_time_s=np.inf, n_hours=24, bin_s=3600.0,
                 stuck_action="force", merge_seed=0, backend="numba", link_from_node=None,
                 link_to_node=None):
        fftt = _as_1d("fftt_s", fftt_s, np.float64)
        cap = _as_1d("cap_veh_per_s", cap_veh_per_s, np.float64)
        storage = _as_1d("storage_veh", storage_veh, np.float64)
        n_links = fftt.shape[0]
        if n_links == 0:
            raise ValueError("the network must have at least one link")
        if cap.shape[0] != n_links or storage.shape[0] != n_links:
            raise ValueError(
                f"fftt_s, cap_veh_per_s and storage_veh must have the same length, got "
                f"{n_links}, {cap.shape[0]}, {storage.shape[0]}")
        if not np.all(np.isfinite(fftt)) or np.any(fftt < 0):
            raise ValueError("fftt_s must be finite and >= 0")
        if not np.all(np.isfinite(cap)) or np.any(cap <= 0):
            raise ValueError("cap_veh_per_s must be finite and > 0")
        if np.any(np.isnan(storage)) or np.any(storage < 1):
            raise ValueError("storage_veh must be >= 1")
        dt_s = float(dt_s)
        t_start_s = float(t_start_s)
        stuck_time_s = float(stuck_time_s)
        if not (math.isfinite(dt_s) and dt_s > 0):
            raise ValueError(f"dt_s must be finite and > 0, got {dt_s}")
        if not math.isfinite(t_start_s):
            raise ValueError(f"t_start_s must be finite, got {t_start_s}")
        if math.isnan(stuck_time_s) or stuck_time_s < 0:
            raise ValueError(f"stuck_time_s must be >= 0 (inf disables), got {stuck_time_s}")
        if int(n_hours) != n_hours or n_hours < 1:
            raise ValueError(f"n_hours must be a positive integer, got {n_hours}")
        n_hours = int(n_hours)
        bin_s = float(bin_s)
        if not (math.isfinite(bin_s) and bin_s > 0):
            raise ValueError(f"bin_s must be finite and > 0, got {bin_s}")
        if stuck_action not in ("force", "remove"):
            raise ValueError(f"stuck_action must be 'force' or 'remove', got {stuck_action!r}")
        if int(merge_seed) != merge_seed or not 0 <= int(merge_seed) < 2**64:
            raise ValueError(f"merge_seed must be an integer in [0, 2**64), got {merge_seed!r}")
        if backend not in ("numba", "python"):
            raise ValueError(f"backend must be 'numba' or 'python', got {backend!r}")
        if (link_from_node is None) != (link_to_node is None):
            raise ValueError("link_from_node and link_to_node go together")
        if link_from_node is not None:
            link_from_node = _as_1d("link_from_node", link_from_node, np.int64)
            link_to_node = _as_1d("link_to_node", link_to_node, np.int64)
            if link_from_node.shape[0] != n_links or link_to_node.shape[0] != n_links:
                raise ValueError(f"link_from_node and link_to_node must have {n_links} entries (one per link)")

        indptr = _as_1d("route_indptr", route_indptr, np.int64)
        links = _as_1d("route_links", route_links, np.int64)
        self._check_csr("route_indptr", "route_links", indptr, links, n_links)

        self.fftt_s = fftt
        self.cap_veh_per_s = cap
        self.cap_veh_per_step = cap * dt_s
        self.storage_veh = storage
        self.route_indptr = indptr
        self.link_from_node = link_from_node
        self.link_to_node = link_to_node
        self.dt_s = dt_s
        self.t_start_s = t_start_s
        self.stuck_time_s = stuck_time_s
        self.n_hours = n_hours
        self.bin_s = bin_s
        self.stuck_action = stuck_action
        self.merge_seed = int(merge_seed)
        self.backend = backend
        nb = backend == "numba"
        self._kernel = advance_queue if nb else advance_queue.py_func
        self._stats_kernel = link_stats if nb else link_stats.py_func
        self._file_kernel = file_departures if nb else file_departures.py_func
        self._wait_unlink = _wait_unlink_nb if nb else _wait_unlink
        self._wait_append = _wait_append_nb if nb else _wait_append
        self._blk_unlink = _blk_unlink_nb if nb else _blk_unlink
        self._routed_kernel = _routed_through_nb if nb else _routed_through

        n = indptr.shape[0] - 1
        n_route = int(indptr[-1])
        self.n_links = n_links
        self._k = 0
        n_words = (n_links + 63) // 64
        # link state
        self.acc_veh = self.cap_veh_per_step.copy()
        self.acc_step = np.full(n_links, -1, np.int64)
        self.occ = np.zeros(n_links, np.int64)
        self.last_exit_s = np.full(n_links, -np.inf)
        self.q_head = np.full(n_links, -1, np.int64)
        self.q_tail = np.full(n_links, -1, np.int64)
        self.w_head = np.full(n_links, -1, np.int64)
        self.w_tail = np.full(n_links, -1, np.int64)
        self.q_bits = np.zeros(n_words, np.uint64)
        self.w_bits = np.zeros(n_words, np.uint64)
        self._closed = np.zeros(n_links, np.uint8)
        self._n_closed = 0
        # vehicles, legs, route pieces, route buffer (grown between calls)
        self._n_veh = self._n_legs = self._n_pieces = n
        self._n_route = n_route
        self._alloc(_VEHICLE_FIELDS, "_cap_veh", max(n, 1))
        self._vpos = np.full(2 * max(n, 1), -1, np.int64)
        self._alloc(_LEG_FIELDS, "_cap_legs", max(n, 1))
        self._alloc(_PIECE_FIELDS, "_cap_pieces", max(n, 1))
        self._alloc(_ROUTE_FIELDS, "_cap_route", max(n_route, 1))
        ids = np.arange(n, dtype=np.int64)
        self._route_links[:n_route] = links
        self._route_leg[:n_route] = np.repeat(ids, np.diff(indptr)).astype(np.int32)
        self._vpos[0:2 * n:2] = indptr[:-1]
        self._vpos[1:2 * n:2] = indptr[1:]
        self._leg_of[:n] = ids
        self._cur_piece[:n] = ids
        self._leg_vehicle[:n] = ids
        self._leg_first_piece[:n] = ids
        self._piece_start[:n] = indptr[:-1]
        self._piece_end[:n] = indptr[1:]
        # link statistics: derived from route_enter_s / arrive_s when read (link_stats)
        self._stats = None
        self._n_forced = np.zeros(1, np.int64)
        self._n_removed = np.zeros(1, np.int64)
        self._n_taken_off = np.zeros(1, np.int64)
        self._fin_n = np.zeros(1, np.int64)
        self._ent_n = np.zeros(1, np.int64)
        # departure calendar (file_departures / advance_queue)
        self._dep_head = np.full(DEPARTURE_CALENDAR_STEPS, -1, np.int64)
        # kernel scratch: calendar of the links due at a step, due sets, pending filings
        self._cal_head = np.full(CALENDAR_STEPS, -1, np.int64)
        self._cal_next = np.full(n_links, -1, np.int64)
        self._cal_prev = np.full(n_links, -1, np.int64)
        self._cal_bkt = np.zeros(n_links, np.int64)
        self._cal_due = np.zeros(n_links, np.int64)
        self._blk_head = np.full(n_links, -1, np.int64)
        self._blk_next = np.full(n_links, -1, np.int64)
        self._blk_prev = np.full(n_links, -1, np.int64)
        self._blk_on = np.full(n_links, -1, np.int64)
        self._due_bits = np.zeros(n_words, np.uint64)
        self._due_sum = np.zeros((n_words + 63) // 64, np.uint64)
        self._pend = np.zeros(n_links, np.int64)
        self._wd_list = np.zeros(n_links, np.int64)
        self._wd_flag = np.zeros(n_links, np.uint8)

    # --------------------------------------------------------------- buffers
    @staticmethod
    def _check_csr(indptr_name, links_name, indptr, links, n_links, *, allow_empty_route=False):
        if indptr.shape[0] < 1 or indptr[0] != 0:
            raise ValueError(f"{indptr_name} must start with 0")
        if allow_empty_route and np.any(np.diff(indptr) < 0):
            raise ValueError(f"{indptr_name} must be non-decreasing")
        if not allow_empty_route and np.any(np.diff(indptr) < 1):
            raise ValueError(f"every route must have at least one link ({indptr_name} strictly increasing)")
        if indptr[-1] != links.shape[0]:
            raise ValueError(
                f"{indptr_name}[-1] ({indptr[-1]}) must equal len({links_name}) ({links.shape[0]})")
        if links.size and (links.min() < 0 or links.max() >= n_links):
            raise ValueError(f"{links_name} must be link indices in [0, {n_links})")

    def _alloc(self, fields, cap_attr, cap):
        for name, dtype, fill in fields:
            setattr(self, name, np.full(cap, fill, dtype=dtype))
        setattr(self, cap_attr, cap)

    def _reserve(self, fields, cap_attr, need):
        cap = getattr(self, cap_attr)
        if need <= cap:
            return
        new = max(need, 2 * cap)
        for name, _dtype, fill in fields:
            setattr(self, name, _grown(getattr(self, name), new, fill))
        if fields is _VEHICLE_FIELDS:
            self._vpos = _grown(self._vpos, 2 * new, -1)
        setattr(self, cap_attr, new)

    def _reserve_route(self, n_more):
        self._reserve(_ROUTE_FIELDS, "_cap_route", self._n_route + n_more)
        if self._n_route + n_more >= 2**62:
            raise ValueError("route buffer too large")

    def _reserve_legs(self, n_more):
        if self._n_legs + n_more >= 2**31:
            raise ValueError("too many legs (route_leg is int32)")
        self._reserve(_LEG_FIELDS, "_cap_legs", self._n_legs + n_more)

    def _wake(self, u):
        """Link ``u`` stops sleeping on the full (or closed) link it waits on: in the next call its
        head is looked at like any other (first come in link index order)."""
        m = self._blk_on[u]
        if m != -1:
            self._blk_unlink(self._blk_head, self._blk_next, self._blk_prev, self._blk_on, m, u)

    def _wake_all_on(self, m):
        while self._blk_head[m] != -1:
            self._wake(int(self._blk_head[m]))

    def _check_vehicles(self, name, ids):
        if ids.size and (ids.min() < 0 or ids.max() >= self._n_veh):
            raise ValueError(f"{name} must be vehicle ids in [0, {self._n_veh})")
        if np.unique(ids).size != ids.size:
            raise ValueError(f"{name} must be distinct")

    def _check_connected(self, indptr, links):
        """Each route (CSR) is a connected chain of links."""
        if self.link_to_node is None or links.size < 2:
            return
        ok = self.link_to_node[links[:-1]] == self.link_from_node[links[1:]]
        ok[indptr[1:-1] - 1] = True  # leg boundaries
        if not ok.all():
            j = int(np.flatnonzero(~ok)[0])
            raise ValueError(f"route not connected: link {links[j]} ends at node {self.link_to_node[links[j]]}, "
                             f"link {links[j + 1]} starts at node {self.link_from_node[links[j + 1]]}")

    def standing_node(self, vehicles):
        """The node each vehicle stands at once its current leg is over (arrived: the end of its
        last link; removed: the end of the link it was removed from, or the start of its first
        link if it was removed before it entered it); ``-1`` for a vehicle without a leg.  Needs
        ``link_from_node`` / ``link_to_node``."""
        if self.link_to_node is None:
            raise ValueError("standing_node needs link_from_node and link_to_node")
        v = _ids_1d("vehicles", vehicles)
        self._check_vehicles("vehicles", v)
        out = np.full(v.size, -1, np.int64)
        has = self._leg_of[v] >= 0
        p = self._vpos[2 * v[has]]
        link = self._route_links[p]
        entered = np.isfinite(self._route_enter_s[p])
        out[has] = np.where(entered, self.link_to_node[link], self.link_from_node[link])
        return out

    # ------------------------------------------------------------------ time
    def _t_of(self, k):
        return self.t_start_s + k * self.dt_s

    @property
    def t_s(self):
        """Time of the next step to run, seconds."""
        return self._t_of(self._k)

    @property
    def step(self):
        """Index of the next step to run."""
        return self._k

    # ----------------------------------------------------- per-vehicle views
    status = _vehicle_view("_status", "Status of each vehicle's current leg: 0 not departed (or no leg), 1 waiting "
                           "to enter its first link, 2 on a link, 3 arrived, 4 removed (stuck, or taken off).")
    arrive_s = _vehicle_view("_arrive_s", "Time each vehicle left the network at the end of its current leg "
                             "(arrival, or exit where it was taken off), seconds; ``nan`` until then.")
    nxt = _vehicle_view("_nxt", "Successor of each vehicle in its queue or waiting list (``-1`` if last).")
    ready_s = _vehicle_view("_ready_s", "Time each vehicle may leave its current link, seconds.")
    held = _vehicle_view("_held", "1 when the vehicle was denied while eligible to move.")
    held_since_s = _vehicle_view("_held_since_s", "Time the vehicle was first blocked by storage (``nan`` if not).")
    moved_step = _vehicle_view("_moved_step", "Last step in which the vehicle moved.")
    take_off = _vehicle_view("_take_off", "1 for a vehicle that :meth:`remove` takes off the network.")
    leg_of = _vehicle_view("_leg_of", "Current leg of each vehicle (``-1`` for a vehicle without a leg).")
    owner = _vehicle_view("_owner", "Owner of each vehicle, a free integer of the caller (e.g. a trip or a fleet "
                          "vehicle id; ``-1`` unless given to :meth:`add_vehicles`); writable.")

    @property
    def rpos(self):
        """Buffer position of each vehicle's current link (the link it is on, waits for or departs
        onto; ``-1`` without a leg); read-only view."""
        v = self._vpos[0:2 * self._n_veh:2]
        v.flags.writeable = False
        return v

    @property
    def r_end(self):
        """End (exclusive buffer position) of each vehicle's current leg route; read-only view."""
        v = self._vpos[1:2 * self._n_veh:2]
        v.flags.writeable = False
        return v

    @property
    def pos(self):
        """Index of each vehicle's current link within the current piece of its leg's route (a
        copy): for a vehicle of the constructor that was not diverted nor given another leg, the
        index within its route ``route_links[route_indptr[i]:route_indptr[i + 1]]``."""
        n = self._n_veh
        cp = self._cur_piece[:n]
        out = self._vpos[0:2 * n:2] - self._piece_start[np.maximum(cp, 0)]
        out[cp < 0] = 0
        return out

    @property
    def current_link(self):
        """Each vehicle's current link, ``route_links[rpos]`` (``-1`` without a leg)."""
        n = self._n_veh
        p = self._vpos[0:2 * n:2]
        out = np.full(n, -1, np.int64)
        has = p >= 0
        out[has] = self._route_links[p[has]]
        return out

    @property
    def route_links(self):
        """The route buffer: the link of each position (int32; the constructor's routes first, at
        ``route_indptr``, then the routes added later, in pieces)."""
        return self._route_links[: self._n_route]

    @property
    def route_enter_s(self):
        """Entry time of each buffer position, seconds (``nan`` until entered), aligned with
        ``route_links``."""
        return self._route_enter_s[: self._n_route]

    @property
    def route_leg(self):
        """Leg each buffer position belongs to (int32), aligned with ``route_links``."""
        return self._route_leg[: self._n_route]

    @property
    def route_vehicle(self):
        """Vehicle each buffer position belongs to (a gather over the whole buffer, ``O(R)``: for a
        few positions use ``leg_vehicle[route_leg[p]]``, or :meth:`entries`)."""
        return self._leg_vehicle[self._route_leg[: self._n_route]]

    @property
    def n_vehicles(self):
        return self._n_veh

    @property
    def n_trips(self):
        """Number of vehicles (the name from the time when every vehicle made one trip)."""
        return self._n_veh

    @property
    def n_route(self):
        """Number of positions in use in the route buffer."""
        return self._n_route

    # ---------------------------------------------------------------- counts
    @property
    def n_forced_moves(self):
        """Number of moves forced by the stuck-time rule so far."""
        return int(self._n_forced[0])

    @property
    def n_removed(self):
        """Number of stuck vehicles removed (``stuck_action="remove"``)."""
        return int(self._n_removed[0])

    @property
    def n_taken_off(self):
        """Number of legs ended by :meth:`remove` so far (at a node, or at once before entering)."""
        return int(self._n_taken_off[0])

    def earliest_pending_entry_s(self):
        """A lower bound of the times later calls record as link entries (``route_enter_s``): a
        vehicle on a link enters its next link at a step time (``>= t_s``); one that has not entered
        its leg's first link (status 0 or 1) enters at its departure time only in its departure
        step, else at the step's time, so never before ``min(depart_s)`` nor ``t_s - dt_s``."""
        n = self._n_veh
        w = self._status[:n] <= STATUS_WAITING
        first = float(self._depart_s[:n][w].min()) if w.any() else float("inf")
        return min(self.t_s, max(first, self.t_s - self.dt_s))

    @property
    def n_departed(self):
        return int(np.count_nonzero(self.status >= STATUS_WAITING))

    @property
    def n_waiting(self):
        return int(np.count_nonzero(self.status == STATUS_WAITING))

    @property
    def n_on_links(self):
        return int(np.count_nonzero(self.status == STATUS_ON_LINK))

    @property
    def n_arrived(self):
        return int(np.count_nonzero(self.status == STATUS_ARRIVED))

    @property
    def n_closed(self):
        """Number of links closed to entry."""
        return self._n_closed

    @property
    def closed(self):
        """1 for each link closed to entry (read-only; see :meth:`close_links`)."""
        v = self._closed.view()
        v.flags.writeable = False
        return v

    # -------------------------------------------------------------- actions
    def schedule(self, trip_ids, depart_s):
        """Set the departure times of vehicles whose current leg has not departed yet.

        Parameters
        ----------
        trip_ids : int or array_like of int
            Vehicles to schedule (distinct, with a leg that has not departed; may be
            rescheduled).
        depart_s : float or array_like of float
            Departure times, seconds, broadcast against ``trip_ids``; each must be
            finite and ``>= t_s``.
        """
        ids = np.atleast_1d(np.asarray(trip_ids))
        if ids.ndim != 1:
            raise ValueError("trip_ids must be a scalar or 1-D")
        if ids.size and ids.dtype.kind not in "iu":
            raise ValueError(f"trip_ids must be integers, got dtype {ids.dtype}")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        dep = np.asarray(depart_s, dtype=np.float64)
        dep = np.ascontiguousarray(dep if dep.shape == ids.shape else np.broadcast_to(dep, ids.shape))
        if ids.size == 0:
            return
        # validated in one compiled pass (this runs at every model step: numpy's per-call costs
        # of unique/isfinite/... added up to ~0.1 ms a call)
        t_now = self.t_s
        code, j = _schedule_problem(ids, dep, self._n_veh, t_now, self._status, self._leg_of, self._mark)
        if code == 1:
            raise ValueError(f"trip_ids must be in [0, {self._n_veh}), got {ids[j]}")
        if code == 2:
            raise ValueError(f"trip_ids must be distinct: trip {ids[j]} is given twice")
        if code == 3:
            raise ValueError(f"depart_s must be finite: trip {ids[j]} has {dep[j]}")
        if code == 4:
            raise ValueError(
                f"cannot schedule a departure in the past: min depart_s {dep.min()} < t_s {t_now}")
        if code == 5:
            bad = ids[self._status[ids] != STATUS_NOT_DEPARTED]
            raise ValueError(f"trips already departed cannot be scheduled: {bad[:10].tolist()}")
        if code == 6:
            raise ValueError(f"vehicle {ids[j]} has no leg to depart on (give it one with append_legs)")
        self._file_kernel(ids, dep, np.int64(self._k), self.t_start_s, self.dt_s,
                          self._depart_s, self._dep_head, self._dep_next, self._dep_prev, self._dep_bkt,
                          self._dep_step)

    def _prepare_legs(self, vehicles, route_indptr, route_links, depart_s, *, new):
        """Validated arrays of an :meth:`append_legs` call (nothing changed yet)."""
        indptr = _as_1d("route_indptr", route_indptr, np.int64)
        links = _as_1d("route_links", route_links, np.int64)
        self._check_csr("route_indptr", "route_links", indptr, links, self.n_links)
        n = indptr.shape[0] - 1
        if vehicles is not None and vehicles.size != n:
            raise ValueError(f"route_indptr has {n} routes for {vehicles.size} vehicles")
        dep = None
        if depart_s is not None:
            dep = np.asarray(depart_s, dtype=np.float64)
            dep = np.ascontiguousarray(np.broadcast_to(dep, (n,)))
            if not np.all(np.isfinite(dep)):
                raise ValueError("depart_s must be finite")
            if n and dep.min() < self.t_s:
                raise ValueError(f"cannot schedule a departure in the past: min depart_s {dep.min()} < t_s {self.t_s}")
        self._check_connected(indptr, links)
        if not new:
            self._check_vehicles("vehicles", vehicles)
            lo = self._leg_of[vehicles]
            st = self._status[vehicles]
            busy = (lo >= 0) & (st < STATUS_ARRIVED)
            if busy.any():
                v = int(vehicles[np.flatnonzero(busy)[0]])
                raise ValueError(f"vehicle {v} has not finished its current leg (status {int(self._status[v])})")
            has = lo >= 0
            if self.link_to_node is not None and has.any():
                at = self.standing_node(vehicles[has])
                first = self.link_from_node[links[indptr[:-1][has]]]
                bad = np.flatnonzero(first != at)
                if bad.size:
                    v = int(vehicles[has][bad[0]])
                    raise ValueError(f"vehicle {v} stands at node {at[bad[0]]}: its new leg must start there, "
                                     f"not at node {first[bad[0]]}")
        return indptr, links, dep

    def _add_legs(self, vehicles, indptr, links, dep):
        n = vehicles.size
        lo = self._leg_of[vehicles]
        has = lo >= 0
        if has.any():  # the previous legs are over: keep their outcome in the leg record
            v = vehicles[has]
            g = lo[has]
            self._leg_depart_s[g] = self._depart_s[v]
            self._leg_arrive_s[g] = self._arrive_s[v]
            self._leg_status[g] = self._status[v]
            self._leg_last_pos[g] = self._vpos[2 * v]
        n_pos = links.shape[0]
        self._reserve_route(n_pos)
        self._reserve_legs(n)
        self._reserve(_PIECE_FIELDS, "_cap_pieces", self._n_pieces + n)
        q0, g0, p0 = self._n_route, self._n_legs, self._n_pieces
        legs = g0 + np.arange(n, dtype=np.int64)
        pieces = p0 + np.arange(n, dtype=np.int64)
        self._route_links[q0:q0 + n_pos] = links
        self._route_enter_s[q0:q0 + n_pos] = np.nan
        self._route_leg[q0:q0 + n_pos] = np.repeat(legs, np.diff(indptr)).astype(np.int32)
        self._leg_vehicle[legs] = vehicles
        self._leg_first_piece[legs] = pieces
        self._piece_start[pieces] = q0 + indptr[:-1]
        self._piece_end[pieces] = q0 + indptr[1:]
        self._piece_next[pieces] = -1
        self._vpos[2 * vehicles] = q0 + indptr[:-1]
        self._vpos[2 * vehicles + 1] = q0 + indptr[1:]
        self._leg_of[vehicles] = legs
        self._cur_piece[vehicles] = pieces
        self._status[vehicles] = STATUS_NOT_DEPARTED
        self._arrive_s[vehicles] = np.nan
        self._take_off[vehicles] = 0
        self._held[vehicles] = 0
        self._held_since_s[vehicles] = np.nan
        self._ready_s[vehicles] = np.nan
        self._nxt[vehicles] = -1
        self._depart_s[vehicles] = np.inf
        self._n_route += n_pos
        self._n_legs += n
        self._n_pieces += n
        self._stats = None
        if dep is not None and n:
            self._file_kernel(vehicles, dep, np.int64(self._k), self.t_start_s, self.dt_s,
                              self._depart_s, self._dep_head, self._dep_next, self._dep_prev, self._dep_bkt,
                              self._dep_step)
        return legs

    def add_vehicles(self, n=None, *, route_indptr=None, route_links=None, depart_s=None, owner=-1):
        """Add vehicles, with no leg or with a first leg each.

        Parameters
        ----------
        n : int, optional
            Number of vehicles without a leg (status 0; give them one with :meth:`append_legs`).
            Leave out when ``route_indptr`` is given.
        route_indptr, route_links : array_like of int, optional
            First legs (CSR as in the constructor): vehicle ``j`` of the call gets the route
            ``route_links[route_indptr[j]:route_indptr[j + 1]]``, connected when the sim knows the
            link nodes.
        depart_s : float or array_like of float, optional
            Departure times of those legs (finite, ``>= t_s``); without it they wait for
            :meth:`schedule`.
        owner : int or array_like of int, default -1
            Owner of each vehicle (see ``owner``).

        Returns
        -------
        numpy.ndarray of int64
            The new vehicles' ids (consecutive, after the existing ones).
        """
        if route_indptr is not None:
            indptr, links, dep = self._prepare_legs(None, route_indptr, route_links, depart_s, new=True)
            if n is not None and n != indptr.shape[0] - 1:
                raise ValueError(f"n ({n}) must equal the number of routes ({indptr.shape[0] - 1})")
            n = indptr.shape[0] - 1
        else:
            if route_links is not None or depart_s is not None:
                raise ValueError("route_links and depart_s need route_indptr")
            if n is None or int(n) != n or n < 0:
                raise ValueError(f"n must be an integer >= 0, got {n!r}")
            n = int(n)
        own = np.broadcast_to(np.asarray(owner, dtype=np.int64), (n,))
        self._reserve(_VEHICLE_FIELDS, "_cap_veh", self._n_veh + n)
        ids = self._n_veh + np.arange(n, dtype=np.int64)
        self._owner[ids] = own
        self._n_veh += n
        if route_indptr is not None:
            self._add_legs(ids, indptr, links, dep)
        return ids

    def append_legs(self, vehicles, route_indptr, route_links, depart_s=None):
        """Give each of ``vehicles`` a new leg (the vectorised :meth:`append_leg`).

        Parameters
        ----------
        vehicles : array_like of int
            Distinct vehicles, each without a leg or with its current leg over (status 3
            arrived or 4 removed).
        route_indptr, route_links : array_like of int
            The new legs' routes, CSR (at least one link each).  When the sim knows the link
            nodes, each route must be connected and start at the node where its vehicle stands
            (:meth:`standing_node`; not checked for a vehicle's first leg).
        depart_s : float or array_like of float, optional
            Departure times (finite, ``>= t_s``); without them the legs wait for :meth:`schedule`.

        Returns
        -------
        numpy.ndarray of int64
            The new legs' ids.

        Notes
        -----
        The previous leg's outcome (status, arrival, position) goes to the leg record; the vehicle
        then has status 0 and, at its departure time, enters the waiting list of the new leg's
        first link like a scheduled trip.  ``arrive_s`` is ``nan`` again until the new leg ends.
        """
        veh = _ids_1d("vehicles", vehicles)
        indptr, links, dep = self._prepare_legs(veh, route_indptr, route_links, depart_s, new=False)
        return self._add_legs(veh, indptr, links, dep)

    def append_leg(self, vehicle, links, depart_s=None):
        """Give ``vehicle`` a new leg with route ``links``, departing at ``depart_s`` (or when
        :meth:`schedule` says); see :meth:`append_legs`.  Returns the leg id."""
        links = _as_1d("links", links, np.int64)
        return int(self.append_legs([int(vehicle)], [0, links.shape[0]], links,
                                    None if depart_s is None else [float(depart_s)])[0])

    def divert(self, vehicle, links):
        """Replace the part of a vehicle's current leg route that it has not entered yet.

        Parameters
        ----------
        vehicle : int
            A vehicle whose leg is not over (status 0 with a leg, 1 or 2), and not being taken
            off (:meth:`remove`).
        links : array_like of int
            On a link (status 2): the links to drive after the current one (possibly none: the
            leg then ends at the end of the current link); the first must start where the current
            link ends.  Not yet on a link (status 0 or 1): the whole new route (at least one
            link), starting at the node where the old one started.  Connected when the sim knows
            the link nodes.

        Notes
        -----
        The new route is written at the end of the route buffer (for a vehicle on a link, after a
        copy of its current link and of its entry time), so that the next link is always the next
        buffer position; the old piece is cut where the vehicle is.  On a link, the diversion takes
        effect at the vehicle's next node: it has not chosen its next link before it leaves the
        current one.  If the vehicle is the head of a link that sleeps on its old next link (see
        the merge rule) and its next link changes, the link wakes up.  A waiting vehicle (status
        1) whose first link changes leaves its waiting list for the end of the new first link's,
        marked held (it enters at the step time, not at its departure time); with the same first
        link it keeps its place.  A vehicle not departed keeps its departure time.
        """
        v = int(vehicle)
        if not 0 <= v < self._n_veh:
            raise ValueError(f"vehicle must be in [0, {self._n_veh}), got {vehicle}")
        g = int(self._leg_of[v])
        st = int(self._status[v])
        if g < 0 or st >= STATUS_ARRIVED:
            raise ValueError(f"vehicle {v} has no leg under way to divert (status {st})")
        if self._take_off[v]:
            raise ValueError(f"vehicle {v} is being taken off the network")
        new = _as_1d("links", links, np.int64)
        if new.size and (new.min() < 0 or new.max() >= self.n_links):
            raise ValueError(f"links must be link indices in [0, {self.n_links})")
        self._check_connected(np.array([0, new.size]), new)
        p = int(self._vpos[2 * v])
        cur = int(self._route_links[p])
        frm, to = self.link_from_node, self.link_to_node
        n_new = new.size
        if st == STATUS_ON_LINK:
            if to is not None and n_new and frm[new[0]] != to[cur]:
                raise ValueError(f"vehicle {v} reaches node {to[cur]} next: the diversion must start there, "
                                 f"not at node {frm[new[0]]}")
            end = int(self._vpos[2 * v + 1])
            old_next = int(self._route_links[p + 1]) if p + 1 < end else -1
            n_pos = 1 + n_new
            self._reserve_route(n_pos)
            self._reserve(_PIECE_FIELDS, "_cap_pieces", self._n_pieces + 1)
            q = self._n_route
            self._route_links[q] = cur
            self._route_links[q + 1:q + n_pos] = new
            self._route_enter_s[q] = self._route_enter_s[p]
            self._route_enter_s[q + 1:q + n_pos] = np.nan
            self._route_leg[q:q + n_pos] = g
            pc = int(self._cur_piece[v])
            npc = self._n_pieces
            self._piece_start[npc] = q
            self._piece_end[npc] = q + n_pos
            self._piece_next[npc] = -1
            self._piece_next[pc] = npc
            self._piece_end[pc] = p
            self._vpos[2 * v] = q
            self._vpos[2 * v + 1] = q + n_pos
            self._cur_piece[v] = npc
            self._n_route += n_pos
            self._n_pieces += 1
            new_next = int(new[0]) if n_new else -1
            if self.q_head[cur] == v and self._blk_on[cur] != -1 and new_next != old_next:
                self._wake(cur)
        else:
            if n_new == 0:
                raise ValueError(f"vehicle {v} is not on a link yet: its new route needs at least one link")
            if frm is not None and frm[new[0]] != frm[cur]:
                raise ValueError(f"vehicle {v} departs from node {frm[cur]}: the new route must start there, "
                                 f"not at node {frm[new[0]]}")
            self._reserve_route(n_new)
            self._reserve(_PIECE_FIELDS, "_cap_pieces", self._n_pieces + 1)
            q = self._n_route
            self._route_links[q:q + n_new] = new
            self._route_enter_s[q:q + n_new] = np.nan
            self._route_leg[q:q + n_new] = g
            npc = self._n_pieces
            self._piece_start[npc] = q
            self._piece_end[npc] = q + n_new
            self._piece_next[npc] = -1
            self._leg_first_piece[g] = npc  # nothing of the old route was entered
            self._vpos[2 * v] = q
            self._vpos[2 * v + 1] = q + n_new
            self._cur_piece[v] = npc
            self._n_route += n_new
            self._n_pieces += 1
            if st == STATUS_WAITING and int(new[0]) != cur:
                self._wait_unlink(self.w_head, self.w_tail, self.w_bits, self._nxt, cur, v)
                self._wait_append(self.w_head, self.w_tail, self.w_bits, self._nxt, int(new[0]), v)
                self._held[v] = 1
        self._stats = None

    def divert_many(self, vehicles, route_indptr, route_links):
        """Divert several vehicles: vehicle ``vehicles[j]`` gets ``route_links[route_indptr[j]:route_indptr[j + 1]]``
        as in :meth:`divert` (one after the other, so a vehicle may not appear twice)."""
        veh = _ids_1d("vehicles", vehicles)
        self._check_vehicles("vehicles", veh)
        indptr = _as_1d("route_indptr", route_indptr, np.int64)
        links = _as_1d("route_links", route_links, np.int64)
        self._check_csr("route_indptr", "route_links", indptr, links, self.n_links, allow_empty_route=True)
        if indptr.shape[0] - 1 != veh.size:
            raise ValueError(f"route_indptr has {indptr.shape[0] - 1} routes for {veh.size} vehicles")
        for j, v in enumerate(veh.tolist()):
            self.divert(v, links[indptr[j]:indptr[j + 1]])

    def remove(self, vehicles):
        """Take vehicles off the network: each at its next node, or at once if not on a link.

        Parameters
        ----------
        vehicles : int or array_like of int
            Vehicles whose leg is not over (status 0 with a leg, 1 or 2).

        Notes
        -----
        A vehicle on a link leaves the network when it exits that link (its next node), as an
        arrival does: it waits for its turn and the link's flow capacity, but not for space
        downstream; its leg then ends with status 4 and ``arrive_s`` the exit time, and the exit
        counts in the link statistics.  (Its route is cut after the current link; a head of a link
        asleep on its old next link wakes that link.)  A vehicle waiting to enter its first link
        leaves the waiting list, and one not departed the departure calendar, at once: status 4,
        ``arrive_s`` ``nan``.  Each removal counts in ``n_taken_off`` (not in ``n_removed``, the
        stuck removals) and the vehicle is listed by :meth:`finished` when it leaves.  A vehicle
        already being taken off is left as it is.
        """
        ids = _ids_1d("vehicles", vehicles)
        self._check_vehicles("vehicles", ids)
        lo = self._leg_of[ids]
        st = self._status[ids]
        bad = (lo < 0) | (st >= STATUS_ARRIVED)
        if bad.any():
            v = int(ids[np.flatnonzero(bad)[0]])
            raise ValueError(f"vehicle {v} has no leg under way to take off (status {int(self._status[v])})")
        for v in ids.tolist():
            if self._take_off[v]:
                continue
            self._take_off[v] = 1
            s = int(self._status[v])
            p = int(self._vpos[2 * v])
            cur = int(self._route_links[p])
            if s == STATUS_ON_LINK:
                had_next = p + 1 < self._vpos[2 * v + 1]
                self._vpos[2 * v + 1] = p + 1
                self._piece_end[self._cur_piece[v]] = p + 1
                if had_next and self.q_head[cur] == v and self._blk_on[cur] != -1:
                    self._wake(cur)
                continue
            if s == STATUS_WAITING:
                self._wait_unlink(self.w_head, self.w_tail, self.w_bits, self._nxt, cur, v)
            elif self._dep_step[v] != -1:
                _list_unlink(self._dep_head, self._dep_next, self._dep_prev, self._dep_bkt, v)
                self._dep_step[v] = -1
            self._status[v] = STATUS_REMOVED
            self._held[v] = 0
            self._held_since_s[v] = np.nan
            f = self._fin_n[0]
            self._fin_log[f] = v
            self._fin_leg[f] = self._leg_of[v]
            self._fin_n[0] = f + 1
            self._n_taken_off[0] += 1
        self._stats = None

    def close_links(self, links):
        """Close links to entry from the next step on.

        A vehicle whose next link is closed waits at the end of its current link (the closed
        link's upstream end), held and keeping its place in the queue; the stuck-time rule does
        not apply to it (neither forced in nor removed; its stuck clock starts afresh when it is
        next blocked by storage after the link opened).  A departure whose first link is closed
        waits in the link's waiting list.  Vehicles on a closed link drive off it as usual.  The
        kernel does not reroute: the caller diverts the vehicles (:meth:`divert`,
        :meth:`routed_through`) or opens the link again (:meth:`open_links`).
        """
        ids = _ids_1d("links", links)
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_links):
            raise ValueError(f"links must be link indices in [0, {self.n_links})")
        self._closed[ids] = 1
        self._n_closed = int(np.count_nonzero(self._closed))

    def open_links(self, links):
        """Open closed links again from the next step on; the links whose heads wait for them
        wake up (their heads are looked at in the next step, in link index order)."""
        ids = _ids_1d("links", links)
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_links):
            raise ValueError(f"links must be link indices in [0, {self.n_links})")
        for m in ids.tolist():
            if self._closed[m]:
                self._closed[m] = 0
                self._wake_all_on(m)
        self._n_closed = int(np.count_nonzero(self._closed))

    def set_storage(self, links, storage_veh):
        """Change the storage capacity of links from the next step on (e.g. contraflow).

        ``storage_veh`` (>= 1, broadcast against ``links``).  A link that gets more room wakes the
        links asleep on it (their heads are looked at in the next step, in link index order); a
        link with less room keeps the vehicles it holds and admits none until ``occ`` falls below
        the new storage.
        """
        ids = _ids_1d("links", links)
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_links):
            raise ValueError(f"links must be link indices in [0, {self.n_links})")
        val = np.ascontiguousarray(np.broadcast_to(np.asarray(storage_veh, dtype=np.float64), ids.shape))
        if np.any(np.isnan(val)) or np.any(val < 1):
            raise ValueError("storage_veh must be >= 1")
        for m, s in zip(ids.tolist(), val.tolist()):
            raised = s > self.storage_veh[m]
            self.storage_veh[m] = s
            if raised:
                self._wake_all_on(m)

    def routed_through(self, links):
        """The vehicles (ascending) whose current leg is still to enter one of ``links``: the
        candidates to divert when they close.  ``O(vehicles + their remaining routes)``."""
        ids = _ids_1d("links", links)
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_links):
            raise ValueError(f"links must be link indices in [0, {self.n_links})")
        mask = np.zeros(self.n_links, np.uint8)
        mask[ids] = 1
        out = np.empty(max(self._n_veh, 1), np.int64)
        n = self._routed_kernel(mask, self._n_veh, self._vpos, self._status, self._leg_of, self._route_links, out)
        return out[:n].copy()

    def advance(self, t_end_s):
        """Run every step with time ``< t_end_s``.

        Returns
        -------
        int
            Number of vehicles that arrived during the call.
        """
        t_end_s = float(t_end_s)
        if not math.isfinite(t_end_s):
            raise ValueError(f"t_end_s must be finite, got {t_end_s}")
        k_end = max(self._k, int(math.ceil((t_end_s - self.t_start_s) / self.dt_s)))
        while k_end > self._k and self._t_of(k_end - 1) >= t_end_s:
            k_end -= 1
        while self._t_of(k_end) < t_end_s:
            k_end += 1
        n_steps = k_end - self._k
        if n_steps <= 0:
            return 0
        # a closed link admits nobody: storage -inf for the kernel (the test it makes anyway)
        storage = self.storage_veh if self._n_closed == 0 else np.where(self._closed != 0, -np.inf, self.storage_veh)
        n_arr = self._kernel(
            np.int64(self._k), np.int64(n_steps), self.t_start_s, self.dt_s, self.stuck_time_s,
            self.stuck_action == "remove", np.uint64(self.merge_seed),
            self.fftt_s, self.cap_veh_per_step, storage, self._closed,
            self._vpos, self._route_links, self._depart_s,
            self._dep_head, self._dep_next, self._dep_prev, self._dep_bkt, self._dep_step, self._dep_buf,
            self.acc_veh, self.acc_step, self.occ, self.last_exit_s,
            self.q_head, self.q_tail, self.w_head, self.w_tail, self.q_bits, self.w_bits,
            self._nxt, self._ready_s, self._held, self._held_since_s,
            self._moved_step, self._status, self._arrive_s, self._take_off, self._leg_of, self._route_enter_s,
            self._n_forced, self._n_removed, self._n_taken_off, self._fin_log, self._fin_leg, self._fin_n,
            self._ent_log, self._ent_n,
            self._cal_head, self._cal_next, self._cal_prev, self._cal_bkt, self._cal_due,
            self._blk_head, self._blk_next, self._blk_prev, self._blk_on,
            self._due_bits, self._due_sum,
            self._pend, self._wd_list, self._wd_flag,
        )
        self._k = k_end
        self._stats = None
        return int(n_arr)

    def finished(self, start=0):
        """The vehicles that arrived or were removed (status 3 or 4), in the order they did, from the
        ``start``-th one on: a caller keeps ``start`` to see each once, without a pass over all
        vehicles.  A vehicle with several legs is listed once per leg (see :meth:`finished_legs`)."""
        return self._fin_log[start:self._fin_n[0]]

    def finished_legs(self, start=0):
        """The legs of :meth:`finished` (same order and length)."""
        return self._fin_leg[start:self._fin_n[0]]

    @property
    def n_finished(self):
        """Number of legs that arrived or were removed so far."""
        return int(self._fin_n[0])

    def entries(self, start=0):
        """The link entries from the ``start``-th one on, in the order they happened (:class:`Entries`).

        A caller keeps ``start`` (``n_entries`` after its last read) to see each entry once; the
        arrays are gathered for those entries only (``O(entries)``).  An entry's exit is the next
        entry of the same leg, or its end (``arrive_s``).  Order: step by step; within a step the
        moves between links in link index order, then the entries from waiting lists, whose order
        among themselves may depend on where calls begin (their times and the set of entries of a
        step do not).  A diversion's copy of the current link is no entry.
        """
        pos = self._ent_log[start:self._ent_n[0]].copy()
        leg = self._route_leg[pos].astype(np.int64)
        return Entries(pos, self._route_links[pos].astype(np.int64), self._route_enter_s[pos], leg,
                       self._leg_vehicle[leg])

    @property
    def n_entries(self):
        """Number of link entries so far."""
        return int(self._ent_n[0])

    # ------------------------------------------------------------------ legs
    @property
    def n_legs(self):
        return self._n_legs

    @property
    def leg_vehicle(self):
        """Vehicle of each leg (read-only view)."""
        v = self._leg_vehicle[: self._n_legs]
        v.flags.writeable = False
        return v

    def legs(self, legs=None):
        """Vehicle, status, departure and arrival of the given legs (all legs by default), as
        :class:`Legs`; ``O(len(legs))``, e.g. for the legs of :meth:`finished_legs`."""
        g = np.arange(self._n_legs) if legs is None else _ids_1d("legs", legs)
        if g.size and (g.min() < 0 or g.max() >= self._n_legs):
            raise ValueError(f"legs must be leg ids in [0, {self._n_legs})")
        v = self._leg_vehicle[g]
        cur = self._leg_of[v] == g
        out = []
        for stored, per_vehicle in ((self._leg_status, self._status), (self._leg_depart_s, self._depart_s),
                                    (self._leg_arrive_s, self._arrive_s)):
            a = stored[g]
            a[cur] = per_vehicle[v[cur]]
            out.append(a)
        return Legs(v, *out)

    def _leg_field(self, stored, per_vehicle):
        g = np.arange(self._n_legs)
        v = self._leg_vehicle[: self._n_legs]
        out = stored[: self._n_legs].copy()
        cur = self._leg_of[v] == g
        out[cur] = per_vehicle[v[cur]]
        return out

    @property
    def leg_depart_s(self):
        """Departure time of each leg, seconds (``inf`` until scheduled); a copy."""
        return self._leg_field(self._leg_depart_s, self._depart_s)

    @property
    def leg_arrive_s(self):
        """Time each leg left the network (see ``arrive_s``), ``nan`` until then; a copy."""
        return self._leg_field(self._leg_arrive_s, self._arrive_s)

    @property
    def leg_status(self):
        """Status of each leg (as ``status``); a copy."""
        return self._leg_field(self._leg_status, self._status)

    def leg_route(self, leg):
        """Buffer positions of a leg's route in driving order (its pieces chained; for a diverted
        leg the positions it drove, then the new rest).  ``route_links[...]`` gives the links and
        ``route_enter_s[...]`` the entry times."""
        g = int(leg)
        if not 0 <= g < self._n_legs:
            raise ValueError(f"leg must be in [0, {self._n_legs}), got {leg}")
        parts = []
        pc = int(self._leg_first_piece[g])
        while pc != -1:
            parts.append(np.arange(self._piece_start[pc], self._piece_end[pc], dtype=np.int64))
            pc = int(self._piece_next[pc])
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    # ------------------------------------------------------------ statistics
    @property
    def depart_s(self):
        """Departure time of each vehicle's current leg, seconds (``inf`` until scheduled);
        read-only: set it with :meth:`schedule`, which also files the vehicle in the departure
        calendar."""
        v = self._depart_s[: self._n_veh]
        v.flags.writeable = False
        return v

    @property
    def enter_s(self):
        """Time each vehicle entered its current link, seconds (``nan`` before it entered one)."""
        out = np.full(self._n_veh, np.nan)
        on = (self.status >= STATUS_ON_LINK) & (self._leg_of[: self._n_veh] >= 0)
        idx = np.flatnonzero(on)
        out[idx] = self._route_enter_s[self._vpos[2 * idx]]
        return out

    def _link_stats(self):
        if self._stats is None:
            vol = np.zeros((self.n_links, self.n_hours), np.int64)
            tt = np.zeros((self.n_links, self.n_hours), np.float64)
            self._stats_kernel(self._route_links, self._route_enter_s, self._n_legs, self._leg_vehicle,
                               self._leg_first_piece, self._leg_status, self._leg_arrive_s, self._leg_last_pos,
                               self._piece_start, self._piece_end, self._piece_next, self._leg_of, self._vpos,
                               self._status, self._arrive_s, self.bin_s, self.n_links, self.n_hours, vol, tt)
            vol.flags.writeable = False
            tt.flags.writeable = False
            self._stats = (vol, tt)
        return self._stats

    @property
    def link_volume(self):
        """Exits per link and time bin so far, shape ``(L, n_hours)`` (read-only; see :func:`link_stats`)."""
        return self._link_stats()[0]

    @property
    def link_tt_sum_s(self):
        """Sum of the link travel times of those exits, seconds, shape ``(L, n_hours)`` (read-only)."""
        return self._link_stats()[1]
