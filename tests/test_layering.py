"""The house's one-way dependencies, checked from the code's own imports.

Every module of `curate` is parsed (lazy imports inside functions and `TYPE_CHECKING` blocks
count: they are dependencies too) and each import of another curate module must point down
the layers below, or stay inside its own room. A new module that imports upwards, or two
rooms that import each other, fail here with the offending lines named.
"""

from __future__ import annotations

import ast
from pathlib import Path

import curate

PACKAGE = Path(curate.__file__).parent

# Rank of each room (a top-level module or package of `curate`): imports go to a lower rank,
# or stay inside the room. Rooms of the same rank are peers and never import each other.
LAYERS: dict[str, int] = {
    "errors": 0,
    "units": 1, "versions": 1, "console": 1, "text_metrics": 1,
    "schemas": 2,
    "io": 3,
    "models": 4, "runtime": 4,
    "index": 5,
    "report": 6, "subsets": 6, "synthetic": 6,
    "pipelines": 7, "captioner": 7, "prompt_lms": 7,
    "cli": 8,
    "__main__": 9, "__init__": 9,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def curate_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of a curate module anywhere in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("curate.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("curate"):
            base = node.module or ""
            # `from curate.cli import flow` imports the module curate.cli.flow, not only the package
            found += [(node.lineno, f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base) for a in node.names]
    return found


def is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_room_has_a_layer():
    rooms = {room_of(name) for name in all_modules() if name != "curate"}
    assert rooms <= set(LAYERS), f"rooms without a layer: {sorted(rooms - set(LAYERS))}"


def test_imports_point_down_the_layers():
    upward = []
    for name, path in all_modules().items():
        room = room_of(name) if name != "curate" else "__init__"
        for line, target in curate_imports(path):
            other = room_of(target)
            if other != room and LAYERS[other] >= LAYERS[room]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({room}, layer {LAYERS[room]}) "
                              f"imports {target} ({other}, layer {LAYERS[other]})")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(upward)


def test_no_import_circles():
    modules = all_modules()
    graph = {name: {t for _, t in curate_imports(path) if t in modules and t != name} for name, path in modules.items()}
    circles = [cycle for cycle in _cycles(graph)]
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule itself can fail: a schemas module importing io is reported."""
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from curate.io.location import location\n")
    assert curate_imports(module) == [(2, "curate.io.location")]
    assert LAYERS[room_of("curate.io.location")] > LAYERS["schemas"]
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


def test_package_inits_import_nothing():
    """Importing `a.b.c` runs `a/b/__init__.py` first: an init that imports its siblings hides
    circles the graph above cannot see (a format module importing the tables that import it)."""
    heavy = [str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("__init__.py") if curate_imports(p)]
    assert not heavy, f"package inits with imports: {heavy}"
