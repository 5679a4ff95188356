"""The student notebooks (notebooks/*.ipynb) run from top to bottom without errors.

Each notebook is executed in a fresh ``python3`` kernel of *this* environment (checked: the kernel
reports this interpreter's ``sys.prefix``), in a temporary working folder, with the checkout on
``PYTHONPATH`` so that the kernel imports the code under test. The kernel inherits the test session's
private ``TWIN_CACHE_DIR`` and ``TWIN_OFFLINE=1`` (see conftest.py): no network access, no user cache.
Skipped only when nbclient/nbformat/ipykernel are not installed (they are in the ``[test]`` extra).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300

_REASON = "notebook tests need nbformat, nbclient and ipykernel: pip install -e '.[test]'"
nbformat = pytest.importorskip("nbformat", reason=_REASON)
nbclient = pytest.importorskip("nbclient", reason=_REASON)
pytest.importorskip("ipykernel", reason=_REASON)

# Prepended to every notebook: reports the kernel's interpreter so the test can check it is ours.
_PROBE = "import json as _j, sys as _s; print('TWIN-KERNEL ' + _j.dumps([_s.executable, _s.prefix]))"


def test_notebooks_exist() -> None:
    assert {"01_getting_started.ipynb", "02_mobility.ipynb", "03_sweep_analysis.ipynb"} <= {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_stored_without_outputs(path: Path) -> None:
    """Notebooks are committed clean (small diffs; CI runs them fresh)."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {i} has outputs"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(_PROBE, id="twin-test-probe"))
    # the kernel imports this checkout, installed or not
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, startup_timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # working folder of the kernel
    )
    t0 = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell failed:\n{exc}", pytrace=False)
    wall = time.perf_counter() - t0

    probe = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream")
    line = next((x for x in probe.splitlines() if x.startswith("TWIN-KERNEL ")), None)
    assert line is not None, f"kernel probe printed nothing: {nb.cells[0].outputs}"
    executable, prefix = json.loads(line.removeprefix("TWIN-KERNEL "))
    assert Path(prefix).resolve() == Path(sys.prefix).resolve(), (
        f"the python3 kernel runs {executable} (prefix {prefix}), not this environment's {sys.executable}; "
        "install ipykernel here (pip install ipykernel) or remove the stray python3 kernelspec "
        "(jupyter kernelspec list)"
    )
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: error outputs {[e.get('ename') for e in errors]}"
    print(f"{path.name}: {wall:.1f} s")
