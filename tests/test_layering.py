"""The import direction util <- nn <- chem <- models <- evaluate <- cli is enforced here,
and so is the absence of import cycles between the modules inside a package."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "stoichnet"
# a package may import packages of a lower level only; "images" (datasets that are
# not compositions) sits beside "chem": neither imports the other
LEVEL = {"util": 0, "nn": 1, "chem": 2, "images": 2, "models": 3, "evaluate": 4, "cli": 5}
ORDER = ["util", "nn", "chem", "models", "evaluate", "cli"]


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "stoichnet" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LEVEL else None


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, root: Path) -> list[tuple[str, str | None]]:
    """(module, name) for each name imported by ``path``, relative imports resolved:
    ``import M`` gives (M, None), ``from M import x`` gives (M, "x")."""
    package = _module_name(path, root)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((a.name, None) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.extend((module, a.name) for a in node.names)
    return [(m, n) for m, n in found if m.startswith("stoichnet")]


def stoichnet_imports(path: Path, root: Path) -> set[str]:
    """Absolute module names imported by ``path``; for ``from M import x`` both ``M``
    and ``M.x`` are listed (x may be a submodule)."""
    found = set()
    for module, name in _imported(path, root):
        found.add(module)
        if name is not None:
            found.add(f"{module}.{name}")
    return found


def upward_imports(root: Path) -> list[str]:
    bad = set()
    for path in sorted(root.rglob("*.py")):
        own = path.relative_to(root).parts[0].removesuffix(".py")
        if own not in LEVEL:
            continue
        for module in stoichnet_imports(path, root):
            target = _layer_of(module)
            if target and target != own and LEVEL[target] >= LEVEL[own]:
                bad.add(f"{path.relative_to(root)} imports stoichnet.{target}")
    return sorted(bad)


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the modules of the tree it imports: ``from M import x`` is an import of
    the submodule ``M.x`` when there is one, else of ``M`` (its ``__init__``)."""
    paths = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph = {}
    for name, path in paths.items():
        targets = set()
        for module, imported in _imported(path, root):
            sub = f"{module}.{imported}"
            targets.add(sub if sub in paths else module)
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def import_cycles(root: Path) -> list[list[str]]:
    """Each cycle of imports among the modules of one top-level package, as the list of
    modules around it (found by a depth-first search; one cycle per back edge)."""
    graph = import_graph(root)

    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if package(target) != package(node):
                continue
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_no_upward_imports():
    assert upward_imports(SRC) == []


def test_no_import_cycles():
    assert import_cycles(SRC) == []


def _tree(tmp_path, files: dict[str, str]) -> Path:
    root = tmp_path / "stoichnet"
    for layer in LEVEL:
        if layer != "cli":
            (root / layer).mkdir(parents=True, exist_ok=True)
            (root / layer / "__init__.py").write_text("")
    for where, text in files.items():
        (root / where).write_text(text)
    return root


@pytest.mark.parametrize(
    ("where", "statement"),
    [
        ("util/probe.py", "from stoichnet.nn import Sequential\n"),
        ("nn/probe.py", "from stoichnet.chem import formula\n"),
        ("chem/probe.py", "import stoichnet.models\n"),
        ("chem/probe.py", "from stoichnet.images import mnist\n"),
        ("images/probe.py", "from ..chem import formula\n"),
        ("models/probe.py", "from ..evaluate import metrics\n"),
        ("evaluate/probe.py", "from stoichnet import cli\n"),
    ],
)
def test_checker_catches_an_upward_import(tmp_path, where, statement):
    assert len(upward_imports(_tree(tmp_path, {where: statement}))) == 1


def test_checker_allows_downward_imports(tmp_path):
    root = _tree(tmp_path, {
        "models/probe.py": "from stoichnet.nn import Sequential\nfrom ..chem import x\n",
        "nn/probe.py": "from stoichnet.util.files import atomic_file\n",
        "images/probe.py": "from stoichnet.nn import Dense\n",
    })
    assert upward_imports(root) == []


def test_checker_catches_a_cycle_inside_a_package(tmp_path):
    root = _tree(tmp_path, {
        "nn/a.py": "from . import b\n",
        "nn/b.py": "from .c import thing\n",
        "nn/c.py": "from stoichnet.nn.a import other\n",
    })
    assert import_cycles(root) == [["stoichnet.nn.a", "stoichnet.nn.b", "stoichnet.nn.c",
                                    "stoichnet.nn.a"]]


def test_checker_catches_a_module_importing_its_own_package(tmp_path):
    root = _tree(tmp_path, {
        "nn/__init__.py": "from .a import thing\n",
        "nn/a.py": "from stoichnet.nn import other\n",
    })
    assert import_cycles(root) == [["stoichnet.nn", "stoichnet.nn.a", "stoichnet.nn"]]


def test_checker_allows_a_package_importing_its_modules(tmp_path):
    root = _tree(tmp_path, {
        "nn/__init__.py": "from . import a\nfrom .b import thing\n",
        "nn/a.py": "from . import b\n",
        "nn/b.py": "import numpy\n",
    })
    assert import_cycles(root) == []
