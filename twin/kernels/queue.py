"""MATSim-QSim-style spatial-queue traffic kernel (Numba) and its Python driver.

Model
-----
Time advances in fixed steps of ``dt_s`` seconds; step ``k`` happens at time
``t = t_start_s + k * dt_s``.  A link ``l`` has a free-flow travel time
``fftt_s[l]``, a flow capacity ``cap_veh_per_step[l] = capacity_veh_per_s * dt_s``
(> 0) and a storage capacity ``storage_veh[l]`` (float, >= 1).  Every trip is one
vehicle with a route ``route_links[route_indptr[i]:route_indptr[i + 1]]`` (at
least one link) and a departure time ``depart_s[i]``.

State (all in arrays, owned by the caller):

* per link: a FIFO queue kept as an intrusive linked list (``q_head``, ``q_tail``,
  ``-1`` when empty, per-trip successor ``nxt``), a departure waiting list
  (``w_head``, ``w_tail``, also chained through ``nxt`` since a trip is in at most
  one list), the occupancy ``occ_veh`` (vehicles on the link), the flow
  accumulator ``acc_veh`` and ``last_exit_s`` (continuous time of the last exit,
  initially ``-inf``);
* per trip: ``pos`` (index of the current link within the route), the time it
  entered each link of its route (``route_enter_s``, aligned with ``route_links``;
  ``enter_s`` below is the entry of the current link), ``ready_s = enter_s + fftt``
  of the current link, ``held`` (1 when it was denied while eligible), ``held_since_s`` (time it
  was first blocked by storage, ``nan`` otherwise), ``moved_step``, ``status``
  (0 not departed, 1 waiting to enter its first link, 2 on a link, 3 arrived) and
  ``arrive_s`` (``nan`` until arrival).

Each step at time ``t``:

1. *Refill* every link's flow accumulator:
   ``acc[l] = min(acc[l] + cap[l], cap[l])``; initially ``acc[l] = cap[l]``.
2. *Departures*: the scheduled trips with ``depart_s <= t`` that have not departed
   are appended, in ``(depart_s, trip id)`` order, to the waiting list of their first
   link (status 1).
3. *Link exits*: for ``l = 0 .. L-1`` in index order, look repeatedly at the head
   vehicle ``v`` of ``l``'s queue; stop if there is none, if ``ready_s[v] > t`` or if
   ``v`` already moved in this step.  If ``acc[l] <= ACC_EPS_VEH`` (``1e-9``, i.e.
   ``<= 0`` up to round-off) the flow capacity is used up: mark ``v`` held and stop.  The node-passage time is
   ``x = t if held[v] else max(ready_s[v], last_exit_s[l])`` (continuous time, so
   free-flow travel is exact rather than rounded to steps; ``last_exit_s`` keeps the
   FIFO exit times monotone).  If ``l`` is the last link of the route, ``v`` arrives
   at ``x``.  Otherwise, with next link ``m``: when ``occ[m] >= storage[m]`` or ``l``
   is *asleep* on ``m`` (below) the vehicle is blocked by storage (spillback): it is
   marked held, ``held_since_s`` is set to ``t`` if unset, and unless
   ``t - held_since_s[v] >= stuck_time_s`` (then ``l`` wakes up, the move is forced and
   counted in ``n_forced[0]``) ``l`` falls (or stays) asleep on ``m`` and processing of
   ``l`` stops.  An exit pops ``v``, decrements ``occ[l]`` and ``acc[l]``, sets
   ``last_exit_s[l] = x`` and records the statistics of ``l``; a move then appends
   ``v`` to ``m``'s queue with ``enter_s = x``, ``ready_s = x + fftt[m]``, clears
   ``held``/``held_since_s`` and sets ``moved_step = k``.
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
   after each exit).  A woken link can always use its slot: a link falls asleep only
   when its head has flow capacity but no space, and its accumulator only refills
   while it sleeps; only a head that becomes eligible, or a departure entering from
   the waiting list (step 4), before the woken link is looked at again (first come)
   can take the slot instead, and the woken link then sleeps again.  Asleep links
   stay asleep across calls.
4. *Entering from waiting lists*: for ``l`` in index order, while the waiting
   list head ``w`` exists and ``occ[l] < storage[l]`` (no stuck rule here), it
   enters ``l`` with ``enter_s = t if held[w] else depart_s[w]`` (status 2,
   ``moved_step = k``); when the link is full the head is marked held.

Statistics (:func:`link_stats`, computed from the recorded times, not in the loop):
every exit from a link ``l`` at time ``x`` (a move, whose ``x`` is the entry time of the
next link, or an arrival at ``x = arrive_s``) counts in the bin
``h = min(max(b, 0), n_hours - 1)``, where ``b`` is the integer with
``b * bin_s <= x < (b + 1) * bin_s`` (products in floating point; ``x // bin_s`` for the
usual whole-second widths): ``link_volume[l, h] += 1`` and
``link_tt_sum_s[l, h] += x - enter_s`` (its travel time on ``l``).  The sums run over trips
in index order and, within a trip, along its route, so they do not depend on how the
run was split into calls nor on when they are read.

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
  stuck time is reached, whichever is first.

A held link is still looked at in the last step of every call, and the calendar is
rebuilt from the queues at the start of every call, so that changes of
``cap_veh_per_step`` / ``fftt_s`` / ``storage_veh`` between calls act as with a
look at every link in every step.  Step 4 only looks at the waiting lists that
received a departure or whose link's ``occ`` dropped in the step (a blocked head
stays blocked until then); links are independent in step 4, so their order does
not matter.  The links with a non-empty queue / waiting list are also kept in the
bitsets ``q_bits`` / ``w_bits``.  A step with nothing due costs ``O(1)``; a
call costs ``O(L / 64 + W + steps + links looked at + moves)``.  The kernel
allocates nothing (except to sort a step's departures when there are more than 32).
Departures are filed by :func:`file_departures` when they are scheduled, in a second
timing wheel (``dep_*``, one bucket per step, a day and more around), so that neither a
call nor a step looks at the trips that do not depart in it.  Memory: a trip's state and route are touched once per move, by
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
arrived, and ``sum(occ) == count(status == 2)``.  With ``stuck_time_s = inf``,
``occ[l] <= ceil(storage_veh[l])`` always.

The pure-Python twin of the kernel is ``advance_queue.py_func`` (the identical
code run by the interpreter); :class:`QueueSim` selects it with
``backend="python"``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.extending import overload, register_jitable

from twin.kernels._intrinsics import ctz as _ctz
from twin.kernels._intrinsics import prefetch as _prefetch
from twin.kernels._intrinsics import uidx as _u

__all__ = ["advance_queue", "file_departures", "link_stats", "QueueSim", "merge_key", "ACC_EPS_VEH", "STATUS_NOT_DEPARTED", "STATUS_WAITING",
           "STATUS_ON_LINK", "STATUS_ARRIVED", "STATUS_REMOVED"]

STATUS_NOT_DEPARTED = 0
STATUS_WAITING = 1
STATUS_ON_LINK = 2
STATUS_ARRIVED = 3
STATUS_REMOVED = 4  # removed after being stuck (stuck_action="remove")

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


@numba.njit(cache=True)
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
    route_indptr,
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
    pos,
    ready_s,
    held,
    held_since_s,
    moved_step,
    status,
    arrive_s,
    route_enter_s,
    n_forced,
    n_removed,
    fin_log,
    fin_n,
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
        Storage capacity of each link in vehicles (>= 1).
    route_indptr : int64[N + 1]
        CSR pointer of the routes into ``route_links``.
    route_links : int32[R]
        Link indices of all routes, concatenated.
    depart_s : float64[N]
        Departure time of each trip, in seconds.
    dep_head : int64[W2]
        Departure calendar: bucket ``k % W2`` lists the trips due to depart at step ``k``
        (and, for trips more than ``W2 - 1`` steps ahead when filed, those to file again
        when the bucket is popped); filled by :func:`file_departures`; updated.
    dep_next, dep_prev, dep_bkt, dep_step : int64[N]
        Successor and predecessor of each trip in its bucket, the bucket and the step at
        which it departs (the first step with ``depart_s <= t``; ``-1`` when not filed);
        updated.
    dep_buf : int64[N]
        Scratch: the trips departing at a step, sorted by ``(depart_s, trip id)``.
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
        Successor of each trip in its queue or waiting list (``-1`` if last).
    pos : int64[N]
        Index of each trip's current link within its route.
    ready_s : float64[N]
        Time each trip may leave its current link.
    held : uint8[N]
        1 when the trip was denied while eligible to move.
    held_since_s : float64[N]
        Time the trip was first blocked by storage (``nan`` if not blocked).
    moved_step : int64[N]
        Last step in which the trip moved.
    status : int8[N]
        0 not departed, 1 waiting, 2 on a link, 3 arrived.
    arrive_s : float64[N]
        Arrival time (``nan`` until arrived).
    route_enter_s : float64[R]
        Time each trip entered each link of its route, aligned with ``route_links``
        (left untouched for links not reached); written.
    n_forced : int64[1]
        Count of forced (stuck) moves; incremented.
    n_removed : int64[1]
        Count of stuck vehicles removed (``stuck_remove``); incremented.
    fin_log : int64[N]
        The trips that arrived or were removed, in the order they did (each once);
        ``fin_log[:fin_n[0]]`` is filled, appended to.
    fin_n : int64[1]
        Number of entries of ``fin_log``; updated.
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
        Number of trips that arrived during this call.
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
                rp = route_indptr[_u(v)] + pos[_u(v)]
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
            _prefetch(route_indptr, i)
            _prefetch(depart_s, i)
        i = dep_head[_u(db1)]
        if i != -1:
            _prefetch(route_links, route_indptr[_u(i)])
            _prefetch(nxt, i)
            _prefetch(pos, i)
            _prefetch(status, i)
            i = dep_next[_u(i)]
            if i != -1:
                _prefetch(dep_next, i)
                _prefetch(dep_step, i)
                _prefetch(route_indptr, i)
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
            # the trips departing next read their routes for the first time today: prefetch
            # them a few departures ahead (route_indptr first, then the first link)
            if p + 16 < nd:
                _prefetch(route_indptr, dep_buf[p + 16])
            if p + 8 < nd:
                _prefetch(route_links, route_indptr[dep_buf[p + 8]])
            l = route_links[_u(route_indptr[_u(i)])]
            nxt[_u(i)] = -1
            if w_tail[_u(l)] == -1:
                w_head[_u(l)] = i
                w_bits[_u(l >> 6)] |= one << np.uint64(l & 63)
            else:
                nxt[_u(w_tail[_u(l)])] = i
            w_tail[_u(l)] = i
            pos[_u(i)] = 0
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
                            r0 = route_indptr[_u(v)]
                            rp = r0 + pos[_u(v)]
                            is_last = rp + 1 >= route_indptr[_u(v + 1)]
                            m = -1
                            if not is_last:
                                m = route_links[_u(rp + 1)]
                                if mb != -1 or occ_veh[_u(m)] >= storage_veh[_u(m)]:
                                    held[_u(v)] = 1
                                    if np.isnan(held_since_s[_u(v)]):
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
                                status[_u(v)] = 3
                                held[_u(v)] = 0
                                held_since_s[_u(v)] = np.nan
                                n_arrived += 1
                                fin_log[fin_n[0]] = v
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
                                pos[_u(v)] += 1
                                route_enter_s[_u(rp + 1)] = x
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
                xw = t if held[_u(w)] != 0 else depart_s[_u(w)]
                route_enter_s[_u(route_indptr[_u(w)])] = xw
                ready_s[_u(w)] = xw + fftt_s[_u(l)]
                held[_u(w)] = 0
                held_since_s[_u(w)] = np.nan
                moved_step[_u(w)] = k
        n_wd = 0
    return n_arrived


@numba.njit(cache=True)
def _schedule_problem(ids, dep_s, n_trips, t_now, status, mark):
    """First problem of a :meth:`QueueSim.schedule` call, as ``(code, j)`` (``code`` 0: none; 1 a
    trip id out of range, 2 repeated, 3 a departure time not finite, 4 in the past, 5 a trip that
    departed already; ``j`` the offending position).  One pass; ``mark`` (uint8[N], all 0) is
    scratch and left all 0."""
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
    for j in range(ids.shape[0]):
        i = ids[j]
        if 0 <= i < n_trips:
            mark[i] = 0
    return code, at


@numba.njit(cache=True)
def file_departures(ids, dep_s, k_now, t_start_s, dt_s, depart_s, dep_head, dep_next, dep_prev, dep_bkt, dep_step):
    """Set departure times and file the trips in the departure calendar of :func:`advance_queue`.

    Trip ``ids[j]`` gets ``depart_s = dep_s[j]`` and is filed for the first step
    ``e >= k_now`` whose time ``t_start_s + e * dt_s`` (the kernel's floating-point
    expression) is ``>= dep_s[j]``; a trip already filed is first taken out of its bucket
    (rescheduled).  ``O(len(ids))``: no pass over all trips.  The arrays are those of
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
def link_stats(route_indptr, route_links, route_enter_s, pos, status, arrive_s, bin_s, n_links, n_hours,
               link_volume, link_tt_sum_s):
    """Link statistics of the exits so far, from the recorded entry and arrival times.

    For each trip in index order and each link ``j`` of its route that it has left (the
    links before its current one; all of them once it arrived), in route order: the exit
    time ``x`` is the entry time of the next link (``arrive_s`` for the last), the bin
    ``h = min(max(b, 0), n_hours - 1)`` with ``b * bin_s <= x < (b + 1) * bin_s``, and
    ``link_volume[l, h] += 1``, ``link_tt_sum_s[l, h] += x - route_enter_s[j]``.
    A trip removed when stuck (status 4) has left the links before the one it was
    removed from.

    Parameters
    ----------
    route_indptr, route_links, route_enter_s, pos, status, arrive_s
        As in :func:`advance_queue`.
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
    n = route_indptr.shape[0] - 1
    for v in range(n):
        st = status[v]
        if st < 2:
            continue
        r0 = route_indptr[v]
        n_left = pos[v]
        if st == 3:
            n_left = route_indptr[v + 1] - r0
        for j in range(r0, r0 + n_left):
            if j + 1 < r0 + n_left or st != 3:
                x = route_enter_s[j + 1]
            else:
                x = arrive_s[v]
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
        CSR pointer of the trip routes into ``route_links`` (starts at 0, strictly
        increasing: every route has at least one link, ends at ``len(route_links)``).
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

    Notes
    -----
    Trips are not departed until :meth:`schedule` gives them a departure time;
    ``depart_s`` is ``inf`` for unscheduled trips (read-only: :meth:`schedule` files the
    trip in the departure calendar, see :func:`file_departures`).  ``t_s`` is the time of
    the next step to run.  ``link_volume`` / ``link_tt_sum_s`` are derived from the
    recorded times when read (:func:`link_stats`), ``enter_s`` from ``route_enter_s``.
    """

    def __init__(self, *, fftt_s, cap_veh_per_s, storage_veh, route_indptr, route_links,
                 dt_s=1.0, t_start_s=0.0, stuck_time_s=np.inf, n_hours=24, bin_s=3600.0,
                 stuck_action="force", merge_seed=0, backend="numba"):
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

        indptr = _as_1d("route_indptr", route_indptr, np.int64)
        links = _as_1d("route_links", route_links, np.int64)
        if indptr.shape[0] < 1 or indptr[0] != 0:
            raise ValueError("route_indptr must start with 0")
        if np.any(np.diff(indptr) < 1):
            raise ValueError("every route must have at least one link (route_indptr strictly increasing)")
        if indptr[-1] != links.shape[0]:
            raise ValueError(
                f"route_indptr[-1] ({indptr[-1]}) must equal len(route_links) ({links.shape[0]})")
        if links.size and (links.min() < 0 or links.max() >= n_links):
            raise ValueError(f"route_links must be link indices in [0, {n_links})")

        self.fftt_s = fftt
        self.cap_veh_per_s = cap
        self.cap_veh_per_step = cap * dt_s
        self.storage_veh = storage
        self.route_indptr = indptr
        self.route_links = links.astype(np.int32)
        self.dt_s = dt_s
        self.t_start_s = t_start_s
        self.stuck_time_s = stuck_time_s
        self.n_hours = n_hours
        self.bin_s = bin_s
        self.stuck_action = stuck_action
        self.merge_seed = int(merge_seed)
        self.backend = backend
        self._kernel = advance_queue if backend == "numba" else advance_queue.py_func
        self._stats_kernel = link_stats if backend == "numba" else link_stats.py_func
        self._file_kernel = file_departures if backend == "numba" else file_departures.py_func

        n_trips = indptr.shape[0] - 1
        self.n_links = n_links
        self.n_trips = n_trips
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
        # trip state
        self._depart_s = np.full(n_trips, np.inf)
        self.nxt = np.full(n_trips, -1, np.int64)
        self.pos = np.zeros(n_trips, np.int64)
        self.ready_s = np.full(n_trips, np.nan)
        self.held = np.zeros(n_trips, np.uint8)
        self.held_since_s = np.full(n_trips, np.nan)
        self.moved_step = np.full(n_trips, -1, np.int64)
        self.status = np.zeros(n_trips, np.int8)
        self.arrive_s = np.full(n_trips, np.nan)
        self.route_enter_s = np.full(links.shape[0], np.nan)
        # link statistics: derived from route_enter_s / arrive_s when read (link_stats)
        self._stats = None
        self._n_forced = np.zeros(1, np.int64)
        self._n_removed = np.zeros(1, np.int64)
        self._fin_log = np.zeros(max(n_trips, 1), np.int64)
        self._fin_n = np.zeros(1, np.int64)
        # departure calendar (file_departures / advance_queue)
        self._dep_head = np.full(DEPARTURE_CALENDAR_STEPS, -1, np.int64)
        self._dep_next = np.full(n_trips, -1, np.int64)
        self._dep_prev = np.full(n_trips, -1, np.int64)
        self._dep_bkt = np.zeros(n_trips, np.int64)
        self._dep_step = np.full(n_trips, -1, np.int64)
        self._dep_buf = np.zeros(max(n_trips, 1), np.int64)
        self._mark = np.zeros(max(n_trips, 1), np.uint8)  # scratch of schedule()
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

    # -------------------------------------------------------------- actions
    def schedule(self, trip_ids, depart_s):
        """Set the departure times of trips that have not departed yet.

        Parameters
        ----------
        trip_ids : int or array_like of int
            Trips to schedule (distinct, not yet departed; may be rescheduled).
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
        code, j = _schedule_problem(ids, dep, self.n_trips, t_now, self.status, self._mark)
        if code == 1:
            raise ValueError(f"trip_ids must be in [0, {self.n_trips}), got {ids[j]}")
        if code == 2:
            raise ValueError(f"trip_ids must be distinct: trip {ids[j]} is given twice")
        if code == 3:
            raise ValueError(f"depart_s must be finite: trip {ids[j]} has {dep[j]}")
        if code == 4:
            raise ValueError(
                f"cannot schedule a departure in the past: min depart_s {dep.min()} < t_s {t_now}")
        if code == 5:
            bad = ids[self.status[ids] != STATUS_NOT_DEPARTED]
            raise ValueError(f"trips already departed cannot be scheduled: {bad[:10].tolist()}")
        self._file_kernel(ids, dep, np.int64(self._k), self.t_start_s, self.dt_s,
                          self._depart_s, self._dep_head, self._dep_next, self._dep_prev, self._dep_bkt,
                          self._dep_step)

    def advance(self, t_end_s):
        """Run every step with time ``< t_end_s``.

        Returns
        -------
        int
            Number of trips that arrived during the call.
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
        n_arr = self._kernel(
            np.int64(self._k), np.int64(n_steps), self.t_start_s, self.dt_s, self.stuck_time_s,
            self.stuck_action == "remove", np.uint64(self.merge_seed),
            self.fftt_s, self.cap_veh_per_step, self.storage_veh,
            self.route_indptr, self.route_links, self._depart_s,
            self._dep_head, self._dep_next, self._dep_prev, self._dep_bkt, self._dep_step, self._dep_buf,
            self.acc_veh, self.acc_step, self.occ, self.last_exit_s,
            self.q_head, self.q_tail, self.w_head, self.w_tail, self.q_bits, self.w_bits,
            self.nxt, self.pos, self.ready_s, self.held, self.held_since_s,
            self.moved_step, self.status, self.arrive_s, self.route_enter_s,
            self._n_forced, self._n_removed, self._fin_log, self._fin_n,
            self._cal_head, self._cal_next, self._cal_prev, self._cal_bkt, self._cal_due,
            self._blk_head, self._blk_next, self._blk_prev, self._blk_on,
            self._due_bits, self._due_sum,
            self._pend, self._wd_list, self._wd_flag,
        )
        self._k = k_end
        self._stats = None
        return int(n_arr)

    def finished(self, start=0):
        """The trips that arrived or were removed (status 3 or 4), in the order they did, from the
        ``start``-th one on: a caller keeps ``start`` to see each trip once, without a pass over
        all trips."""
        return self._fin_log[start:self._fin_n[0]]

    @property
    def n_finished(self):
        """Number of trips that arrived or were removed so far."""
        return int(self._fin_n[0])

    # ------------------------------------------------------------ statistics
    @property
    def depart_s(self):
        """Departure time of each trip, seconds (``inf`` until scheduled); read-only: set it with
        :meth:`schedule`, which also files the trip in the departure calendar."""
        v = self._depart_s.view()
        v.flags.writeable = False
        return v

    @property
    def enter_s(self):
        """Time each trip entered its current link, seconds (``nan`` before it entered one)."""
        out = np.full(self.n_trips, np.nan)
        on = self.status >= STATUS_ON_LINK
        idx = np.flatnonzero(on)
        out[idx] = self.route_enter_s[self.route_indptr[idx] + self.pos[idx]]
        return out

    def _link_stats(self):
        if self._stats is None:
            vol = np.zeros((self.n_links, self.n_hours), np.int64)
            tt = np.zeros((self.n_links, self.n_hours), np.float64)
            self._stats_kernel(self.route_indptr, self.route_links, self.route_enter_s, self.pos, self.status,
                               self.arrive_s, self.bin_s, self.n_links, self.n_hours, vol, tt)
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
