"""Named random streams: one ``numpy.random.SeedSequence`` per purpose, keyed by name.

Every random draw of a run comes from the scenario seed through :func:`stream`: the population, the
demand, mode choice, replanning, the queue kernel's merges, plug-in modes and, next, each domain.
A stream is found by its *name*, not by its position in a ``spawn(n)`` list, so adding a stream (a
new domain) changes no existing one. The streams citytwin had before names existed keep their
original spawn keys (:data:`LEGACY_KEYS`), so results are unchanged; every other name gets a key
derived from its SHA-256, under a prefix no legacy key uses.

Example::

    rng = np.random.default_rng(stream(seed, "maas.dispatch"))
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["stream", "spawn_key", "LEGACY_KEYS"]

#: The spawn keys of the streams that existed before streams had names (``SeedSequence(seed).spawn(5)``
#: gives keys (0,) .. (4,); plug-in modes used (1000, hash) and (1001,)). Never change these.
LEGACY_KEYS: dict[str, tuple[int, ...]] = {
    "population": (0,),
    "demand": (1,),
    "mode_choice": (2,),
    "replanning": (3,),
    "merge": (4,),
    "plugin_mode_choice": (1001,),
}
_NAMED_PREFIX = 2**32 - 1  # first word of every name-derived key: no legacy key starts with it
_PLUGIN_PREFIX = 1000


def spawn_key(name: str) -> tuple[int, ...]:
    """The spawn key of stream ``name`` (legacy names keep theirs; ``mode:NAME`` is a plug-in mode's)."""
    if name in LEGACY_KEYS:
        return LEGACY_KEYS[name]
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    if name.startswith("mode:"):  # plug-in modes' own streams, as they were keyed before
        mode = name[len("mode:"):]
        return (_PLUGIN_PREFIX, int.from_bytes(hashlib.sha256(mode.encode()).digest()[:4], "little"))
    return (_NAMED_PREFIX,) + tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))


def stream(seed: int, name: str) -> np.random.SeedSequence:
    """The seed sequence of stream ``name`` of a run with root ``seed``."""
    if not name:
        raise ValueError("a random stream needs a name")
    return np.random.SeedSequence(seed, spawn_key=spawn_key(name))
