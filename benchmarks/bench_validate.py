"""What strict inputs cost: reading and validating scenarios, refusing hostile YAML, preflight.

    python benchmarks/bench_validate.py [--repeat 200]      # results/validate.txt

Baseline in the same run: PyYAML's plain ``SafeLoader`` followed by the same validation (so the
ratio is the cost of the strict reader: no base-60, duplicate keys, depth and alias bounds, regular
files only), and, for the hostile inputs, what PyYAML alone spends on them.
Figures are the best of ``--repeat`` (per file) on this machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def best(fn, repeat: int) -> float:
    t = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()

    from twin._errors import ScenarioError
    from twin._yaml import load_yaml, load_yaml_text
    from twin.preflight import check_runnable
    from twin.scenario import load_scenario, scenario_from_dict

    print(f"{'file':34s} {'strict read+validate':>22s} {'safe_load+validate':>20s} {'ratio':>6s}")
    for p in sorted((ROOT / "scenarios").glob("*.yaml")):
        t_new = best(lambda: scenario_from_dict(load_yaml(p), p, check_memory=True), args.repeat)
        # PyYAML's SafeLoader (base-60 times, duplicate keys kept, no bounds), the same validator
        t_old = best(lambda: scenario_from_dict(yaml.safe_load(p.read_text()), p, check_memory=True), args.repeat)
        print(f"{p.name:34s} {t_new * 1e3:19.2f} ms {t_old * 1e3:17.2f} ms {t_new / t_old:6.1f}")

    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for n in "bcdefghi":
        bomb += f"{n}: &{n} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = n
    cases = {"alias bomb (9 levels x 9)": bomb, "nesting depth 10,000": "[" * 10_000 + "]" * 10_000,
             "duplicate key": "population: {residents: 3000, residents: 25}\n"}
    print(f"\n{'hostile input':34s} {'refused in':>22s}")
    for name, text in cases.items():
        def refuse(text=text):
            try:
                load_yaml_text(text, "x.yaml")
            except ScenarioError:
                return
            raise AssertionError(name)

        print(f"{name:34s} {best(refuse, 5) * 1e3:19.2f} ms")
    # what the old path did with the bomb: PyYAML builds it (shared objects), then pydantic walks 9^9
    t0 = time.perf_counter()
    data = yaml.safe_load(bomb)
    print(f"{'  PyYAML alone on the bomb':34s} {(time.perf_counter() - t0) * 1e3:19.2f} ms "
          f"(then validating or printing it expands {9 ** 9:,} strings)")
    del data

    sc_path = ROOT / "scenarios" / "helsinki_cordon.yaml"
    sc = load_scenario(sc_path)
    check_runnable(sc, sc_path)  # builds the network cache once
    t = best(lambda: check_runnable(sc, sc_path), 5)
    print(f"\npreflight of {sc_path.name} (map from the cache, policies bound): {t * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
