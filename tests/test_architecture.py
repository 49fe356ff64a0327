"""docs/architecture.md draws the engine's layers; the code keeps to the drawing, and the drawing to the code.

Every engine module and package stands in one layer of the drawing and in the table of jobs, an import never goes to
a layer below its module's, and no engine module grows past 400 lines (a module that does one job stays small). The
app's ui modules are each in the ui table with their job, import one another without cycles and stay under 750
lines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "denoiser"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAX_LINES = 400


def drawn_layers() -> list[set[str]]:
    """The layers as the drawing in docs/architecture.md has them, top (imported by all below) first: each the set
    of engine module and package names it holds (``io/ (image, ...)`` is the package ``io``)."""
    drawing = ARCHITECTURE.read_text(encoding="utf-8").split("Read top to bottom", 1)[1].split("```", 2)[1]
    layers: list[str] = []
    for line in drawing.strip("\n").splitlines():
        if line[:1].isspace():
            layers[-1] += ", " + line.strip()  # a layer's list goes on
        else:
            layers.append(re.split(r"\s{2,}", line.strip(), maxsplit=1)[1])
    names = [re.sub(r"\([^)]*\)", "", layer).split(",") for layer in layers]
    return [{name.strip().rstrip("/") for name in layer if name.strip()} for layer in names]


def engine_parts() -> set[str]:
    """The engine's top-level modules and packages, by name (``inference``, ``batch``...)."""
    return {path.stem for path in ENGINE.glob("*.py") if path.stem not in ("__init__", "__main__")} | {
        path.parent.name for path in ENGINE.glob("*/__init__.py")}


def imported_parts(path: Path, parts: set[str]) -> set[str]:
    """The engine's top-level modules and packages ``path`` imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "denoiser":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("denoiser."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("denoiser."))
    return found & parts


def test_the_drawing_holds_every_engine_module_once_and_nothing_else() -> None:
    layers = drawn_layers()
    assert len(layers) >= 5
    drawn = [name for layer in layers for name in layer]
    assert sorted({name for name in drawn if drawn.count(name) > 1}) == []
    assert sorted(engine_parts() - set(drawn)) == [], "engine modules missing from docs/architecture.md's layers"
    assert sorted(set(drawn) - engine_parts()) == [], "docs/architecture.md's layers name modules that are gone"


def test_no_engine_module_imports_from_a_layer_below_its_own() -> None:
    parts = engine_parts()
    layer_of = {name: index for index, layer in enumerate(drawn_layers()) for name in layer}
    downward = []
    for path in sorted(ENGINE.rglob("*.py")):
        part = path.relative_to(ENGINE).parts[0].removesuffix(".py")
        if part in ("__init__", "__main__"):
            continue
        downward += [f"{path.relative_to(ENGINE)} imports {target}" for target in sorted(imported_parts(path, parts))
                     if layer_of[target] > layer_of[part]]
    assert downward == []


def test_the_table_gives_every_engine_module_its_job() -> None:
    """Each module is named in the first cell of a row of the table of jobs (by its path under ``denoiser/``), or,
    inside a package, in the row of its package's folder."""
    rows = [line.split("|")[1:3] for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines()
            if line.startswith("| `")]
    named = " ".join(first for first, _ in rows)
    unnamed = []
    for path in sorted(ENGINE.rglob("*.py")):
        relative = path.relative_to(ENGINE).as_posix()
        if path.name == "__init__.py" or f"`{relative}`" in named:
            continue
        folder = f"`{path.parent.relative_to(ENGINE).as_posix()}/`"
        if not any(folder in first and f"`{path.name}`" in job for first, job in rows):
            unnamed.append(relative)
    assert unnamed == []


def test_no_engine_module_is_over_400_lines() -> None:
    sizes = {path.relative_to(ENGINE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
             for path in ENGINE.rglob("*.py")}
    assert len(sizes) > 50
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}


UI = ROOT / "ui"
UI_MAX_LINES = 750
"""The window composes the whole app and is the largest; a ui module past this does more than one job."""


def ui_imports(path: Path) -> set[str]:
    """The ui modules ``path`` imports (``from ui.viewer import ...``, ``import ui.state``), at the top or inside
    functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ui."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "ui":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("ui."))
    return found


def test_no_ui_module_is_over_its_size() -> None:
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in UI.glob("*.py")}
    assert len(sizes) > 20
    assert {name: lines for name, lines in sizes.items() if lines > UI_MAX_LINES} == {}


def test_ui_modules_import_each_other_without_cycles() -> None:
    graph = {path.stem: ui_imports(path) - {path.stem} for path in UI.glob("*.py") if path.stem != "__init__"}
    assert any(graph.values())
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> None:
        assert module not in trail, " -> ".join([*trail[trail.index(module):], module])
        if module in done:
            return
        for imported in sorted(graph.get(module, set())):
            visit(imported, [*trail, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_the_table_gives_every_ui_module_its_job() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    missing = [path.name for path in UI.glob("*.py") if path.stem != "__init__" and f"`{path.name}`" not in text]
    assert missing == []
