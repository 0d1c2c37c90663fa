"""The import direction nn <- chem <- models <- evaluate <- cli is enforced here."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "stoichnet"
ORDER = ["nn", "chem", "models", "evaluate", "cli"]


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "stoichnet" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in ORDER else None


def stoichnet_imports(path: Path, root: Path) -> set[str]:
    """Absolute module names imported by ``path`` (relative imports resolved)."""
    package = ".".join(path.relative_to(root.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("stoichnet")}


def upward_imports(root: Path) -> list[str]:
    bad = set()
    for path in sorted(root.rglob("*.py")):
        own = path.relative_to(root).parts[0].removesuffix(".py")
        if own not in ORDER:
            continue
        for module in stoichnet_imports(path, root):
            target = _layer_of(module)
            if target and ORDER.index(target) > ORDER.index(own):
                bad.add(f"{path.relative_to(root)} imports stoichnet.{target}")
    return sorted(bad)


def test_no_upward_imports():
    assert upward_imports(SRC) == []


@pytest.mark.parametrize(
    ("where", "statement"),
    [
        ("nn/probe.py", "from stoichnet.chem import formula\n"),
        ("chem/probe.py", "import stoichnet.models\n"),
        ("models/probe.py", "from ..evaluate import metrics\n"),
        ("evaluate/probe.py", "from stoichnet import cli\n"),
    ],
)
def test_checker_catches_an_upward_import(tmp_path, where, statement):
    root = tmp_path / "stoichnet"
    for layer in ORDER[:-1]:
        (root / layer).mkdir(parents=True)
        (root / layer / "__init__.py").write_text("")
    (root / where).write_text(statement)
    assert len(upward_imports(root)) == 1


def test_checker_allows_downward_imports(tmp_path):
    root = tmp_path / "stoichnet"
    (root / "models").mkdir(parents=True)
    (root / "models" / "probe.py").write_text("from stoichnet.nn import Sequential\nfrom ..chem import x\n")
    assert upward_imports(root) == []
