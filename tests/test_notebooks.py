"""Notebook structure and papermill parameter checking (nbval re-executes the notebooks themselves)."""

import ast
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import nbformat
import pytest

from mnist_lib.notebook import parameter_defaults

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
ITERATIONS = [p for p in NOTEBOOKS if p.name[:2] in ("01", "02", "03")]


def test_all_four_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["00_data.ipynb", "01_light.ipynb", "02_lightest.ipynb",
                                           "03_superlight.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_executed_clean_and_parameterised(path):
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert "google.colab" in code[0].source, "the first code cell is the setup (Colab install, import)"
    assert "parameters" in code[1].metadata.get("tags", []), "the second code cell must be tagged 'parameters'"
    assert all(c.execution_count is not None for c in code), "commit notebooks executed top to bottom"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert "widgets" not in notebook.metadata
    printed = sum(len("".join(o.get("text", "")).splitlines()) for c in code for o in c.outputs
                  if o.output_type == "stream")
    assert printed < 400, f"{printed} printed lines: a progress-bar flood?"


@pytest.mark.parametrize("path", ITERATIONS, ids=lambda p: p.name)
def test_iteration_tells_target_results_analysis(path):
    notebook = nbformat.read(path, as_version=4)
    headings = [line for c in notebook.cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if line.startswith("## ")]
    for section in ("## Target", "## Results", "## Analysis"):
        assert section in headings, f"{path.name} lacks {section}"
    assert "PLACEHOLDER" not in "".join(c.source for c in notebook.cells)


@pytest.mark.parametrize("path", ITERATIONS, ids=lambda p: p.name)
def test_parameters_cell_declares_the_config_settings_with_their_defaults(path):
    """The settings live in TrainConfig; each iteration notebook's parameters cell mirrors them exactly."""
    cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    declared = {node.target.id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body
                if isinstance(node, ast.AnnAssign)}
    assert declared == parameter_defaults()


@pytest.mark.parametrize("value", ["-1", "abc"])
def test_papermill_rejects_bad_epochs_within_seconds(tmp_path, value):
    runs = Path(os.environ["MNIST_RUNS_DIR"])
    before = set(runs.iterdir()) if runs.exists() else set()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "papermill", "notebooks/03_superlight.ipynb", str(tmp_path / "out.ipynb"),
         "-p", "epochs", value],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode != 0
    assert "ConfigError: epochs=" in done.stderr and "epochs must be a positive integer" in done.stderr
    assert time.perf_counter() - started < 90
    assert (set(runs.iterdir()) if runs.exists() else set()) == before  # no run was started


def setup_cell(path: Path) -> str:
    """The first code cell as plain Python (IPython's `!shell` lines turned into get_ipython().system calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    cell = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    return TransformerManager().transform_cell(cell.source)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_on_colab_without_a_repo_url_the_first_cell_stops_with_one_message(path, monkeypatch):
    shell_commands = []
    namespace = {"get_ipython": lambda: type("Shell", (), {"system": lambda self, cmd: shell_commands.append(cmd)})()}
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    with pytest.raises(SystemExit, match="On Colab, set REPO_URL in this first code cell"):
        exec(setup_cell(path), namespace)
    assert shell_commands == []  # nothing was cloned or installed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outside_colab_the_first_cell_only_imports(path, capsys):
    exec(setup_cell(path), {})
    assert capsys.readouterr().out.startswith("mnist_lib from ")


def test_no_placeholder_links():
    for path in [*NOTEBOOKS, REPO / "README.md"]:
        assert "OWNER" not in path.read_text(), f"{path.name} links to a placeholder GitHub account"


def _metrics(run: str, seed: int, final: float, last3_min: float, model: str = "superlight") -> dict:
    return {"run": run, "model": model, "config": {"augment": True, "seed": seed},
            "summary": {"final_test_acc": final, "last3_min": last3_min}}


def test_a_run_is_labelled_apart_from_the_committed_series_and_judged_against_its_spread():
    from mnist_lib.notebook import against_series, difference_from_series

    series = [_metrics("a", 1, 99.45, 99.41), _metrics("b", 2, 99.39, 99.34), _metrics("c", 3, 99.51, 99.47),
              _metrics("l", 1, 99.2, 99.1, model="light")]
    fresh = _metrics("fresh", 7, 99.60, 99.50)
    table = against_series(fresh, series)
    assert list(table.index) == ["this run (fresh)", "committed series"]
    assert table.loc["committed series", "seeds"] == "1, 2, 3"
    assert table.loc["committed series", "final-epoch test acc (%)"] == "99.45 ± 0.06"
    assert table.loc["committed series", "meets the target"] == "2 of 3 seeds"
    assert table.loc["this run (fresh)", "meets the target"] == "yes"
    assert difference_from_series(fresh, series).endswith("more than the seeds' spread.")
    assert difference_from_series(_metrics("x", 4, 99.47, 99.4), series).endswith("within noise.")
    assert "fewer than 2 seeds" in difference_from_series(_metrics("y", 2, 99.0, 99.0, model="light"), series)
