"""mnist_lib's modules form one-way layers: each imports only modules listed earlier in mnist_lib/__init__.py."""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mnist_lib"


def layers() -> list[str]:
    docstring = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    order = re.search(r"Modules, lowest first.*?:\s*(.*?)\.\s*$", docstring, re.S).group(1)
    return [name.strip() for name in order.split(",")]


def imported_modules(source: str) -> set[str]:
    """The mnist_lib modules some source imports: `from .x import`, `from . import x`, `from mnist_lib import x`,
    `from mnist_lib.x import`, `import mnist_lib.x`."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if (node.level == 1 and not module) or module == "mnist_lib":
                found.update(alias.name for alias in node.names)
            elif node.level == 1:
                found.add(module.split(".")[0])
            elif module.startswith("mnist_lib."):
                found.add(module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("mnist_lib."))
    return found


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert sorted(layers()) == sorted(modules)


def test_the_import_scanner_sees_every_spelling():
    source = ("from .runs import train\nfrom . import plots\nfrom mnist_lib import cli\n"
              "from mnist_lib.records import series_runs\nimport mnist_lib.images\nimport torch\n")
    assert imported_modules(source) == {"runs", "plots", "cli", "records", "images"}


def test_no_module_imports_a_later_one():
    order = layers()
    for name in order:
        for imported in imported_modules((PACKAGE / f"{name}.py").read_text()):
            assert order.index(imported) < order.index(name), f"{name} imports {imported}, which comes later"


def test_the_command_line_starts_without_torchvision_or_the_plotting_libraries():
    """Importing them takes seconds (torchvision loads torch._dynamo) and `predict` needs none of them, so mnist_lib
    imports torchvision only to read MNIST and the CLI imports plots only in the commands that draw."""
    import subprocess
    import sys

    heavy = ("torchvision", "matplotlib", "seaborn")
    probe = f"import sys, mnist_lib.cli; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
