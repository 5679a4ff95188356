"""The layers import only what is below them (docs/architecture.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TWIN = ROOT / "twin"


def _imports(path: Path) -> set[str]:
    """Every twin module a file imports, at the top level or inside functions (TYPE_CHECKING blocks
    excluded: they are not run)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("twin"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("twin"):
            out.add(node.module)
    return out


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module(p): _imports(p) for p in TWIN.rglob("*.py")}


def _under(mod: str, pkg: str) -> bool:
    return mod == pkg or mod.startswith(pkg + ".")


@pytest.mark.parametrize(("pkg", "forbidden"), [
    ("twin.kernels", ("twin.model", "twin.domains", "twin.agents", "twin.network", "twin.maps", "twin.scenario",
                      "twin.run", "twin.cli")),
    ("twin.maps", ("twin.network", "twin.model", "twin.domains", "twin.kernels")),
    ("twin.network", ("twin.model", "twin.domains", "twin.run", "twin.cli", "twin.sweep")),
    ("twin.model", ("twin.cli", "twin.sweep", "twin.run", "twin.report", "twin.app")),
    ("twin.domains", ("twin.cli", "twin.sweep", "twin.run", "twin.app", "twin.model")),
    ("twin.report", ("twin.model", "twin.domains", "twin.kernels", "twin.run", "twin.sweep")),
    ("twin.scenario", ("twin.model", "twin.domains", "twin.network", "twin.kernels")),
    ("twin.registry", ("twin.model", "twin.network", "twin.kernels", "twin.scenario")),
])
def test_layer_does_not_import(pkg, forbidden):
    bad = sorted(f"{m} imports {i}" for m, imps in MODULES.items() if _under(m, pkg)
                 for i in imps if any(_under(i, f) for f in forbidden))
    # the registry imports its built-in providers' module lazily, by name (not an import statement)
    assert not bad, bad


def test_validating_a_scenario_imports_no_model_network_or_kernel():
    code = ("import sys, twin.scenario as s; s.scenario_from_dict({'modes': {'available': ['car', 'taxi'], "
            "'plugins': {'taxi': {'wait_s': 60}}}}); "
            "print(sorted(m for m in sys.modules if m.startswith(('twin.model', 'twin.network', 'twin.kernels', "
            "'twin.domains.mobility.domain', 'networkx', 'numba'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout
