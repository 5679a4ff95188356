"""Every bad input gets a clear error: the acceptance test (generated cases, see tests/fuzz_cases.py).

Each case holds when the command exits with code 2 (a sweep whose every run fails: non-zero), within
10 s, without a traceback, with exactly one line on stderr, ``error: FILE: FIELD: message``, naming
the file (and the dotted field, for field-level problems), and leaves nothing behind in its folder
(no run folder, no hidden ``.partial-`` folder, no store, no file changed).

The default run takes a fixed 50-case subset covering every class; ``pytest -m slow
tests/test_fuzz.py`` runs them all. Set ``TWIN_FUZZ_LOG=FILE`` to get one JSON line per case
(id, class, argv, problems, stderr) for triage.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import fuzz_cases as fc
import pytest

ALL = fc.build_cases()
BY_ID = {c.id: c for c in ALL}
SUBSET = fc.default_subset(ALL)

#: Cases also run through the real entry point (a new interpreter each: slow, but what users see).
SUBPROCESS_IDS = (
    "validate-keys-duplicate-flow-population.residents",
    "validate-values-nan-modes.asc_walk",
    "validate-yaml-unclosed-bracket",
    "validate-paths-scenario-fifo",
    "validate-paths-scenario-dev-zero",
    "validate-markup-bad-file-m0",
    "run-outputs-under-file",
    "compare-runs-missing-kpis",
    "run-cli-run-seed-abc",
    "sweep-experiments-helsinki_pricing-override-into-scalar",
    "sweep-cli-sweep-executor-nope",
)
#: Of those, the ones in the default run.
SUBPROCESS_DEFAULT = ("validate-keys-duplicate-flow-population.residents", "validate-paths-scenario-fifo",
                      "run-cli-run-seed-abc")


def _clip(s: str, n: int = 1500) -> str:
    return s if len(s) <= n else s[:n] + f"... [{len(s) - n} more characters]"


@pytest.fixture(scope="session")
def zygote():
    z = fc.Zygote(env=os.environ.copy())
    yield z
    z.close()


@pytest.fixture(scope="session")
def fuzz_run_dir(tmp_path_factory) -> Path:
    """A real run folder (small Helsinki day, every output) that the damaged-run cases copy."""
    d = tmp_path_factory.mktemp("fuzz_run")
    sc = d / "small.yaml"
    sc.write_text(
        "name: small\nseed: 3\nmap: {source: helsinki}\npopulation: {residents: 150}\n"
        "modes: {available: [car, walk]}\nsimulation: {start_s: \"05:00\", end_s: \"28:00\", record_interval_s: 600}\n",
        encoding="utf-8",
    )
    out = d / "run"
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "run", str(sc), "--out", str(out), "-q"], cwd=d,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    if proc.returncode != 0 or not (out / "kpis.json").exists():
        pytest.fail(f"could not make the run folder the damaged-run cases start from:\n{proc.stdout}\n{proc.stderr}")
    return out


def _log(case: fc.Case, res: dict, probs: list[str]) -> None:
    path = os.environ.get("TWIN_FUZZ_LOG")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": case.id, "cls": case.cls, "command": case.command, "argv": list(case.argv),
                            "problems": probs, "exit_code": res.get("exit_code"),
                            "exception": res.get("exception"), "where": res.get("where"),
                            "stderr": _clip(res.get("stderr", ""), 600), "stdout": _clip(res.get("stdout", ""), 300),
                            "wall_s": round(res.get("wall_s", 0.0), 3)}) + "\n")


def _report(case: fc.Case, res: dict, probs: list[str]) -> str:
    lines = [f"case {case.id} ({case.cls}): twin {' '.join(_clip(a, 80) for a in case.argv)}",
             *(f"  - {p}" for p in probs),
             f"  exit code: {res.get('exit_code')}", f"  stderr: {_clip(res.get('stderr', ''))!r}",
             f"  stdout: {_clip(res.get('stdout', ''), 500)!r}"]
    if case.file is not None or case.field is not None:
        lines.append(f"  expected: error: ...{case.file or ''}...: {case.field or ''}...: message")
    if res.get("traceback"):
        lines.append("  traceback:\n" + res["traceback"])
    return "\n".join(lines)


def _run_case(case: fc.Case, zygote: fc.Zygote, request, tmp_path: Path) -> None:
    run_dir = request.getfixturevalue("fuzz_run_dir") if case.uses_run else None
    folder = tmp_path / "case"
    fc.materialize(case, folder, run_dir)
    before = fc.snapshot(folder)
    res = zygote.run(case.argv, folder, tmp_path / "capture")
    after = fc.snapshot(folder)
    probs = fc.check(case, res, before, after)
    replaced = fc.system_devices_replaced()
    if replaced:  # stop at once: every later case (and the machine) would see a file there
        pytest.exit(f"case {case.id} replaced {', '.join(replaced)} (a device) with something else; restore it "
                    "(as root: rm /dev/full && mknod -m 666 /dev/full c 1 7) before running again", returncode=3)
    _log(case, res, probs)
    assert not probs, _report(case, res, probs)


# ------------------------------------------------------------------------------ the generator


def test_case_count_and_coverage():
    assert len(ALL) >= 300, len(ALL)
    assert len(BY_ID) == len(ALL), "case ids are not unique"
    per_class = {cls: sum(c.cls == cls for c in ALL) for cls in fc.CLASSES}
    assert all(n >= 10 for n in per_class.values()), per_class
    commands = {c.command for c in ALL}
    for cmd in ("validate", "run", "sweep", "sweep report", "compare", "report", "animate", "assign", "maps info",
                "schema", "new"):
        assert cmd in commands, cmd
    assert len(SUBSET) == 50 and {c.cls for c in SUBSET} == set(fc.CLASSES)
    assert set(SUBPROCESS_IDS) <= set(BY_ID)


def test_cases_are_deterministic():
    again = fc.build_cases()
    assert [(c.id, c.argv, c.files) for c in again] == [(c.id, c.argv, c.files) for c in ALL]
    assert [c.id for c in fc.default_subset(again)] == [c.id for c in SUBSET]


def test_rendered_yaml_round_trips():
    """The YAML writer of the generator says what it means (checked with PyYAML on valid data)."""
    import math

    import yaml

    doc = {"a": 1, "b": [1.5, 1e-300, 1e12, -2.0], "c": {"d": "08:00", "e": None, "f": True, "on": "x"},
           "g": [{"h": 1, "i": [1, 2]}, {"j": "k"}], "nan": math.inf, "empty": {}, "l": []}
    assert yaml.safe_load(fc.render(doc)) == doc
    assert math.isnan(yaml.safe_load(fc.render({"x": math.nan}))["x"])
    dup = fc.render(fc.Pairs([("residents", 3000), ("residents", 25)]))
    assert dup.count("residents") == 2


# ------------------------------------------------------------------------------ the cases


@pytest.mark.parametrize("case", SUBSET, ids=[c.id for c in SUBSET])
def test_bad_input_subset(case, zygote, request, tmp_path):
    _run_case(case, zygote, request, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_bad_input(case, zygote, request, tmp_path):
    _run_case(case, zygote, request, tmp_path)


# ------------------------------------------------------------------------------ the real entry point


def _twin_command() -> list[str]:
    script = Path(sys.executable).with_name("twin")
    return [str(script)] if script.exists() else [sys.executable, "-m", "twin.cli"]


def _subprocess_case(case: fc.Case, request, tmp_path: Path, monkeypatch) -> None:
    run_dir = request.getfixturevalue("fuzz_run_dir") if case.uses_run else None
    folder = tmp_path / "case"
    fc.materialize(case, folder, run_dir)
    monkeypatch.chdir(folder)
    before = fc.snapshot(folder)
    proc = subprocess.Popen([*_twin_command(), *case.argv], cwd=folder, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    res: dict = {}
    try:
        out, err = proc.communicate(timeout=fc.CASE_TIMEOUT_S)
        res["exit_code"] = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        res["timeout"] = True
        res["where"] = "(a subprocess: no stack)"
    res["stdout"] = out.decode("utf-8", "backslashreplace")
    res["stderr"] = err.decode("utf-8", "backslashreplace")
    after = fc.snapshot(folder)
    probs = fc.check(case, res, before, after)
    assert not fc.system_devices_replaced(), f"case {case.id} replaced a device of the machine"
    assert not probs, _report(case, res, probs)


@pytest.mark.parametrize("case_id", SUBPROCESS_DEFAULT)
def test_bad_input_real_entry_point(case_id, request, tmp_path, monkeypatch):
    _subprocess_case(BY_ID[case_id], request, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("case_id", [i for i in SUBPROCESS_IDS if i not in SUBPROCESS_DEFAULT])
def test_bad_input_real_entry_point_more(case_id, request, tmp_path, monkeypatch):
    _subprocess_case(BY_ID[case_id], request, tmp_path, monkeypatch)
