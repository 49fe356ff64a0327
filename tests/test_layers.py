"""House rule 1: the engine never imports Qt (checked on the source and in a fresh interpreter)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "denoiser"
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "qtpy", "shiboken6")


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module imported anywhere in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_engine_source_imports_no_qt() -> None:
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) > 10
    offenders = {str(f): sorted(imported_modules(f) & set(QT_MODULES)) for f in files}
    assert {f: m for f, m in offenders.items() if m} == {}


def test_importing_the_whole_engine_loads_no_qt() -> None:
    modules = [f"denoiser.{p.stem}" for p in ENGINE.glob("*.py") if p.stem not in ("__init__", "__main__")]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules)
    code += f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\nprint(bad)\nassert not bad\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ENGINE.parent)
    assert result.returncode == 0, result.stderr + result.stdout


def test_engine_modules_import_each_other_without_cycles() -> None:
    """Every import between engine modules, at top level or inside functions, forms no cycle."""
    import ast

    root = Path(__file__).resolve().parent.parent / "denoiser"

    def module_name(path: Path) -> str:
        parts = path.relative_to(root.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {module_name(p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("denoiser"):
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names if alias.name.startswith("denoiser"))
        # A package's own __init__ re-exporting its parts is not a cycle with them.
        graph[name] = {t for t in targets if t in modules and t != name and not name.startswith(t + ".")
                       and not (path.name == "__init__.py" and t.startswith(name + "."))}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, f"import cycles: {cycles}"
