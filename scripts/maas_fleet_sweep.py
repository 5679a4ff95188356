"""The fleet-size sweep of docs/maas.md: table and plot from a finished `twin sweep` of
experiments/helsinki_maas.yaml.

    twin sweep experiments/helsinki_maas.yaml -e serial --out /tmp/sw_maas
    python scripts/maas_fleet_sweep.py /tmp/sw_maas docs/img/maas_fleet_sweep.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def main(store: str, png: str) -> None:
    k = pd.read_parquet(Path(store) / "kpis.parquet")
    size, disp = "param.maas.operators.0.fleet_size", "param.maas.operators.0.dispatcher"
    cols = {"maas_requests": "requests", "maas_wait_mean_s": "wait mean (s)", "maas_wait_p95_s": "wait p95 (s)",
            "maas_rejection_rate": "rejected", "maas_shared_share": "shared", "maas_utilisation": "utilisation",
            "maas_empty_share": "empty km share", "maas_occupancy": "pass.-km / veh.-km"}
    t = k[[disp, size, *cols]].sort_values([disp, size]).rename(columns={disp: "dispatcher", size: "vehicles", **cols})
    print("| " + " | ".join(t.columns) + " |")
    print("|" + "---|" * len(t.columns))
    for row in t.itertuples(index=False):
        print("| " + " | ".join(f"{x:.3g}" if isinstance(x, float) else str(x) for x in row) + " |")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for name, g in t.groupby("dispatcher"):
        for ax, c in zip(axes, ("wait mean (s)", "rejected", "utilisation"), strict=True):
            ax.plot(g["vehicles"], g[c], marker="o", label=name)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("vehicles")
            ax.set_title(c)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
