"""Regression guard: the shipped scenarios' outputs, by content, equal those recorded in
``tests/data/output_hashes.json``.

The platform refactor (issue 12: domains, named RNG streams, kernel legs) must change no result;
this test says so at every step. Hashes are of table *contents* (every column's values, in order),
not of file bytes, so a new pyarrow that writes other metadata does not trip it. A deliberate change
of results re-records them (and says why in its commit)::

    TWIN_MAPS_PATH=../shared/maps python tests/test_output_hashes.py --record
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "tests" / "data" / "output_hashes.json"
SCENARIOS = ("helsinki_commute", "helsinki_cordon", "helsinki_taxi")
TABLES = ("trips.parquet", "events.parquet", "links.parquet", "iterations.parquet", "timeseries.parquet")


def content_hashes(run_dir: Path) -> dict[str, str]:
    """sha256 of each table's columns (names, dtypes, values) and of kpis.json's canonical form."""
    import pyarrow.parquet as pq

    out = {}
    for name in TABLES:
        p = run_dir / name
        if not p.exists():
            continue
        t = pq.read_table(p)
        h = hashlib.sha256()
        for col in t.column_names:
            arr = t.column(col).to_numpy(zero_copy_only=False)
            h.update(col.encode())
            if arr.dtype == object:
                h.update(json.dumps([None if v is None else str(v) for v in arr.tolist()]).encode())
            else:
                h.update(str(arr.dtype).encode())
                h.update(np.ascontiguousarray(arr).tobytes())
        out[name] = h.hexdigest()
    kpis = json.loads((run_dir / "kpis.json").read_text())
    out["kpis.json"] = hashlib.sha256(json.dumps(kpis, sort_keys=True).encode()).hexdigest()
    return out


def run_hashes(name: str, tmp: Path) -> dict[str, str]:
    from twin.run import run_scenario
    from twin.scenario import load_scenario

    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    sc = sc.model_copy(update={"output": sc.output.model_copy(update={"report": False, "geopackage": False})})
    res = run_scenario(sc, tmp / name)
    return content_hashes(res.out_dir)


@pytest.mark.parametrize("name", SCENARIOS)
def test_shipped_scenarios_give_the_recorded_outputs(name, tmp_path):
    recorded = json.loads(RECORD.read_text())
    assert name in recorded, f"no recorded hashes for {name}: run {__file__} --record"
    got = run_hashes(name, tmp_path)
    changed = [k for k in recorded[name] if got.get(k) != recorded[name][k]]
    assert not changed, (f"{name}: {', '.join(changed)} differ from the recorded outputs; if the change of "
                         "results is deliberate, re-record (see the module docstring)")


if __name__ == "__main__":  # pragma: no cover
    import tempfile

    if "--record" not in sys.argv:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        data = {name: run_hashes(name, Path(tmp)) for name in SCENARIOS}
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"recorded {RECORD}")


def test_named_streams_keep_the_legacy_keys_and_new_names_collide_with_none():
    from twin._rng import LEGACY_KEYS, spawn_key, stream

    # the five positional streams of SeedSequence(seed).spawn(5), in their old order
    old = np.random.SeedSequence(42).spawn(5)
    for i, name in enumerate(("population", "demand", "mode_choice", "replanning", "merge")):
        assert stream(42, name).generate_state(4).tolist() == old[i].generate_state(4).tolist()
    names = ["maas.dispatch", "maas.rebalance", "evacuation.response", "energy.ev", "mode:taxi", "mode:shuttle"]
    keys = [spawn_key(n) for n in names] + list(LEGACY_KEYS.values())
    assert len(set(keys)) == len(keys)
    assert (stream(42, "maas.dispatch").generate_state(2).tolist()
            == stream(42, "maas.dispatch").generate_state(2).tolist())
    with pytest.raises(ValueError):
        stream(42, "")
