"""mnist_lib's modules form one-way layers: each imports only modules listed before it in mnist_lib/__init__.py."""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mnist_lib"


def layers() -> list[str]:
    docstring = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    order = re.search(r"Modules, lowest first.*?:\s*(.*?)\.\s*$", docstring, re.S).group(1)
    return [name.strip() for name in order.split(",")]


def imported_modules(path: Path) -> set[str]:
    """The mnist_lib modules a file imports (`from .x import`, `from . import x`, `mnist_lib.x`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1 and module:
                found.add(module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif module.startswith("mnist_lib."):
                found.add(module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("mnist_lib."))
    return found


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert sorted(layers()) == sorted(modules)


def test_no_module_imports_one_above_it():
    order = layers()
    for name in order:
        for imported in imported_modules(PACKAGE / f"{name}.py"):
            assert order.index(imported) < order.index(name), f"{name} imports {imported}, which comes after it"
