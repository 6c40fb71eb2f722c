"""The package's layers: every import runs downward, none in a circle.

Bottom to top: the ground floor (`errors`, `files`, and the package face, whose API
functions import their stage only when called); `data`, `data_export`, `augment`, `models`,
`corruptions`; `evaluate`, `checkpoint`; `training/`; `analysis/`; `deploy/`; `cli/`. A module
may import its own layer and those below; `analysis/plots/` draws from arrays and imports no
other stage; no module imports another stage's private (underscored) names.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fmnist"
LAYERS = [
    ["fmnist", "fmnist.errors", "fmnist.files"],
    ["fmnist.data", "fmnist.data_export", "fmnist.augment", "fmnist.models", "fmnist.corruptions"],
    ["fmnist.evaluate", "fmnist.checkpoint"],
    ["fmnist.training"],
    ["fmnist.analysis"],
    ["fmnist.deploy"],
    ["fmnist.cli", "fmnist.__main__"],
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> int:
    """The layer of a module: the longest layer prefix that names it."""
    best, depth = None, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = i, len(prefix)
    assert best is not None, module
    return best


def imports(module: str) -> set[str]:
    """Every fmnist module `module` imports, at any depth of its code (lazy imports too)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    nodes = ast.walk(tree)
    if module == "fmnist":
        # the Python API's functions (load_data, load_model, train) import their stage when
        # called: the one place the bottom reaches up, at call time only
        top = [stmt for stmt in tree.body if not isinstance(stmt, ast.FunctionDef)]
        nodes = (n for stmt in top for n in ast.walk(stmt))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from fmnist.x import y` imports the module fmnist.x.y when there is one
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        found.update(n for n in names if n == "fmnist" or n.startswith("fmnist."))
    found.discard(module)
    # importing a.b.c runs a and a.b first: only the named module counts as the edge
    return {n for n in found if n in MODULES}


GRAPH = {m: imports(m) for m in MODULES}


def test_the_package_is_found():
    assert {"fmnist.data", "fmnist.training.train", "fmnist.cli"} <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_downward(module):
    upward = [t for t in GRAPH[module] if layer(t) > layer(module)]
    assert not upward, f"{module} (layer {layer(module)}) imports from above: {upward}"


def test_plots_import_no_other_stage():
    allowed = {"fmnist", "fmnist.data"}
    for module, targets in GRAPH.items():
        if module.startswith("fmnist.analysis.plots"):
            outside = {t for t in targets if not t.startswith("fmnist.analysis.plots")} - allowed
            assert not outside, f"{module} imports {outside}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH))


def test_only_the_api_functions_reach_up():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    reaching = {
        fn.name
        for fn in tree.body
        if isinstance(fn, ast.FunctionDef)
        for n in ast.walk(fn)
        if isinstance(n, ast.ImportFrom) and (n.module or "").startswith(("fmnist.", "fmnist"))
    }
    assert reaching <= {"load_data", "load_model", "train"}


def stage(module: str) -> str:
    """The stage a module belongs to: its subpackage (fmnist.training, ...) or itself."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or module + ".__init__" in MODULES else module


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def private_imports(module: str) -> list[str]:
    """Underscored names `module` imports from another stage."""
    tree = ast.parse(MODULES[module].read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fmnist"):
            source = node.module if node.module in MODULES else node.module.rpartition(".")[0]
            if stage(source) != stage(module):
                found += [f"{node.module}.{a.name}" for a in node.names if is_private(a.name)]
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_names_cross_stages(module):
    assert not private_imports(module), f"{module} imports {private_imports(module)}"


def test_the_face_holds_only_the_public_api():
    import fmnist

    assert sorted(fmnist.__all__) == [
        "FmnistError",
        "__version__",
        "load_data",
        "load_model",
        "train",
    ]
    assert GRAPH["fmnist"] == {"fmnist.errors"}


def test_the_checks_catch_what_they_should():
    # the rules fail on a planted upward import and a planted cycle
    assert layer("fmnist.deploy.serve") > layer("fmnist.training.train")
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert is_private("_captum") and not is_private("__version__")
    assert stage("fmnist.analysis.explain") != stage("fmnist.deploy.serve")
    assert stage("fmnist.training.train") == stage("fmnist.training.epoch")


def layout_tree(text: str) -> set[str]:
    """The files the architecture page's layout block lists under src/fmnist/, as paths."""
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    paths, stack, inside = set(), [], False
    for line in block.splitlines():
        if line.startswith("src/fmnist/"):
            inside, stack = True, ["fmnist"]
            continue
        if not inside or not line.startswith("  "):
            inside = inside and line.startswith(" ")
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        if not line.strip() or line.strip().startswith("@"):
            continue
        name = line.split()[0]
        if depth > len(stack):  # a description's continuation line
            continue
        stack = stack[:depth]
        if name.endswith("/"):
            stack.append(name.rstrip("/"))
        elif name.endswith(".py"):
            paths.add("/".join(stack + [name]))
    return paths


def test_the_documented_layout_matches_the_package():
    page = (PACKAGE.parents[1] / "docs" / "architecture.md").read_text()
    files = {str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")}
    listed = layout_tree(page)
    assert listed == files, (
        f"docs/architecture.md's layout lists {sorted(listed - files)} that do not exist "
        f"and misses {sorted(files - listed)}"
    )
