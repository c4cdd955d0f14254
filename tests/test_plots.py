import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from mnist_lib import plots, records
from mnist_lib.config import TrainConfig
from mnist_lib.data import AugmentConfig, denormalize, normalize
from mnist_lib.training import lr_schedule

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HISTORY = [
    {"epoch": e, "train_loss": 1 / e, "train_acc": 90 + e, "test_loss": 0.8 / e, "test_acc": 91 + e, "lr": 0.01,
     "seconds": 1.0}
    for e in (1, 2, 3)
]
METRICS = {"run": "superlight-aug-seed1-x", "model": "superlight", "parameters": 4894, "history": HISTORY,
           "config": {"augment": True, "seed": 1}, "summary": {"final_test_acc": 94.0}}


def run(model: str, augment: bool, seed: int, test_acc: list[float], parameters: int = 4994) -> dict:
    """A synthetic metrics.json dict whose test accuracy per epoch is `test_acc`."""
    history = [{"epoch": e, "train_loss": 1 / e, "train_acc": acc - 0.5, "test_loss": 0.5 / e, "test_acc": acc}
               for e, acc in enumerate(test_acc, start=1)]
    return {"run": f"{model}-{'aug' if augment else 'noaug'}-seed{seed}-x", "model": model, "parameters": parameters,
            "config": {"augment": augment, "seed": seed}, "history": history,
            "summary": {"final_test_acc": test_acc[-1]}}


# superlight with augmentation has two seeds, the other configurations one
SERIES = [
    run("superlight", True, 1, [80.0, 97.0, 99.1, 99.3, 99.3]),
    run("superlight", True, 2, [85.0, 98.0, 99.3, 99.4, 99.5]),
    run("superlight", False, 1, [90.0, 97.5, 99.0, 99.2, 99.2]),
    run("light", True, 1, [95.0, 98.5, 99.0, 99.1, 99.2], parameters=7888),
]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def digit() -> torch.Tensor:
    """A normalised (1, 28, 28) bar, off centre, so that every augmentation visibly moves it."""
    pixels = torch.zeros(1, 28, 28)
    pixels[0, 6:22, 10:14] = 1
    return normalize(pixels)


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 2000


def labels_of(ax) -> tuple[str, str, str]:
    return ax.get_title(), ax.get_xlabel(), ax.get_ylabel()


def random_logits(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 10, generator=generator) * 3, torch.randint(0, 10, (n,), generator=generator)


STABILITY = pd.DataFrame({"std": [0.01, 0.05], "unchanged": [99.9, 99.0], "accuracy": [99.0, 98.5]})
TRANSLATION = pd.DataFrame({"dx": [0, 2, 0, 2], "dy": [0, 0, 2, 2], "accuracy": [99.0, 98.0, 97.5, 96.0]})
# name -> (figure builder taking the save path, (title, x label, y label) of the first axes)
FIGURES = {
    "training_curves": (lambda save: plots.training_curves(HISTORY, save=save),
                        ("Loss per epoch", "Epoch", "Loss (log scale)")),
    "lr_curve": (lambda save: plots.lr_curve(TrainConfig(epochs=3), 20, save=save),
                 ("One-cycle learning rate: 3 epochs x 20 steps, max 0.01", "Optimiser step", "Learning rate")),
    "confusion_matrix": (lambda save: plots.confusion_matrix(*random_logits(), save=save),
                         ("Confusion matrix (counts)", "Predicted digit", "True digit")),
    "confusion_matrix_normalized": (lambda save: plots.confusion_matrix(*random_logits(), normalize=True, save=save),
                                    ("Confusion matrix (% of each true digit)", "Predicted digit", "True digit")),
    "class_balance": (lambda save: plots.class_balance(torch.arange(50) % 10, torch.arange(20) % 10, save=save),
                      ("Class balance", "Digit", "Images")),
    "per_class_accuracy": (lambda save: plots.per_class_accuracy([99.0 + d / 10 for d in range(10)], save=save),
                           ("Per-class test accuracy", "Digit", "Accuracy (%)")),
    "compare_runs": (lambda save: plots.compare_runs([METRICS, METRICS], labels=["a", "b"], save=save),
                     ("Test accuracy per epoch", "Epoch", "Test accuracy (%)")),
    "series_curves": (lambda save: plots.series_curves(SERIES, save=save),
                      ("Test accuracy per epoch, mean over seeds (y-axis fits the last 3 epochs)", "Epoch",
                       "Test accuracy (%)")),
    "accuracy_vs_parameters": (lambda save: plots.accuracy_vs_parameters([METRICS], save=save),
                               ("Accuracy vs parameters (1 seed per point)", "Parameters",
                                "Final-epoch test accuracy (%), mean ± std over seeds")),
    "noise_curve": (lambda save: plots.noise_curve(pd.DataFrame({"std": [0, 0.5], "accuracy": [99, 20]}), save=save),
                    ("Accuracy under pixel noise", "Gaussian noise std (on [0, 1] pixels)", "Test accuracy (%)")),
    "rotation_curve": (lambda save: plots.rotation_curve(pd.DataFrame({"degrees": [-45, 0], "accuracy": [50, 99]}),
                                                         save=save),
                       ("Accuracy under rotation", "Rotation (degrees, positive = clockwise)", "Test accuracy (%)")),
    "translation_heatmap": (lambda save: plots.translation_heatmap(TRANSLATION, save=save),
                            ("Accuracy under translation", "Shift right (pixels)", "Shift down (pixels)")),
    "stability_curve": (lambda save: plots.stability_curve(STABILITY, save=save),
                        ("Prediction stability under small noise", "Gaussian noise std (on [0, 1] pixels)", "%")),
}


@pytest.mark.parametrize("name", FIGURES)
def test_figure_has_its_labels_and_saves_a_png(name, tmp_path):
    build, expected = FIGURES[name]
    fig = build(tmp_path / f"{name}.png")
    assert isinstance(fig, Figure)
    assert labels_of(fig.axes[0]) == expected
    assert_png(tmp_path / f"{name}.png")


def test_training_curves_plot_train_and_test_per_epoch():
    loss_ax, acc_ax = plots.training_curves(HISTORY).axes
    assert labels_of(acc_ax) == ("Accuracy per epoch (zoomed on the second half)", "Epoch", "Accuracy (%)")
    train, test = acc_ax.get_lines()
    assert (train.get_label(), test.get_label()) == ("train", "test")
    assert list(test.get_xdata()) == [1, 2, 3] and list(test.get_ydata()) == [92, 93, 94]


def test_lr_curve_draws_the_schedule_and_epoch_boundaries():
    config = TrainConfig(epochs=3)
    ax = plots.lr_curve(config, 20).axes[0]
    schedule, *boundaries = ax.get_lines()
    assert list(schedule.get_ydata()) == lr_schedule(config, 20)
    assert [line.get_xdata()[0] for line in boundaries] == [20, 40]


def test_confusion_counts_from_logits_or_predictions():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    preds = torch.tensor([0, 1, 1, 2, 2, 0])
    counts = plots.confusion_counts(preds, labels, classes=3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert torch.equal(plots.confusion_counts(torch.nn.functional.one_hot(preds, 3).float(), labels, classes=3), counts)


def test_normalized_confusion_rows_sum_to_100():
    logits, labels = random_logits()
    heatmap = plots.confusion_matrix(logits, labels, normalize=True).axes[0].collections[0]
    values = np.asarray(heatmap.get_array()).reshape(10, 10)
    assert np.allclose(values.sum(1), 100)


def test_misclassified_gallery_shows_the_most_confident_mistakes_first():
    images = digit().expand(4, 1, 28, 28)
    labels = torch.tensor([0, 1, 2, 3])
    logits = torch.full((4, 10), -5.0)
    logits[0, 0] = 5  # right
    logits[1, 7], logits[2, 5], logits[3, 9] = 1, 4, 2  # wrong, with rising confidence 2 -> 3 -> 1
    fig = plots.misclassified_gallery(images, labels, logits, n=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert [t.split("\n")[0] for t in titles] == ["true 2 pred 5", "true 3 pred 9"]
    assert fig.get_suptitle().startswith("Misclassified: 3 of 4")


def panels(fig: Figure) -> list[np.ndarray]:
    return [ax.get_images()[0].get_array() for ax in fig.axes if ax.get_images()]


def test_augmentation_gallery_is_seeded_and_starts_with_the_original():
    first = panels(plots.augmentation_gallery(digit(), n=7, seed=1))
    assert len(first) == 8
    assert np.allclose(first[0], denormalize(digit())[0].numpy())
    assert all(np.array_equal(a, b) for a, b in zip(first, panels(plots.augmentation_gallery(digit(), n=7, seed=1)),
                                                    strict=True))
    assert not np.array_equal(first[1], panels(plots.augmentation_gallery(digit(), n=7, seed=2))[1])


def test_augmentation_kinds_shows_one_row_per_kind():
    fig = plots.augmentation_kinds(digit(), n=3, config=AugmentConfig(degrees=20, erase_prob=0.0))
    names = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert [name.split(" ")[0] for name in names] == ["rotation", "translation", "scale", "shear", "erasing"]
    assert names[0] == "rotation ±20°"
    images = panels(fig)
    assert len(images) == 15
    assert all(not np.allclose(image, images[0]) for image in images[1:3])  # random draws differ


def test_save_run_figures_writes_curves_and_confusion_and_closes_them(tmp_path):
    logits, labels = random_logits()
    paths = plots.save_run_figures(tmp_path, METRICS, logits, labels)
    assert paths == [tmp_path / "curves.png", tmp_path / "confusion.png"]
    for path in paths:
        assert_png(path)
    assert plt.get_fignums() == []


def test_robustness_curves_compare_labelled_tables_in_one_plot():
    tables = {"a": pd.DataFrame({"std": [0, 0.5], "accuracy": [99, 20]}),
              "b": pd.DataFrame({"std": [0, 0.5], "accuracy": [98, 40]})}
    ax = plots.noise_curve(tables).axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["a", "b"]


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def legend_texts(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_training_curves_zoom_on_late_accuracy_with_log_loss_and_target():
    history = run("superlight", True, 1, [70.0, 95.0, 98.9, 99.2, 99.4, 99.5])["history"]
    fig = plots.training_curves(history, target=99.4, title="superlight-aug-seed1-x", split="validation")
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_yscale() == "log"
    low, high = acc_ax.get_ylim()
    late = [h[key] for h in history[3:] for key in ("train_acc", "test_acc")]
    assert 98.0 < low < min(late) and high >= 100  # not down to epoch 1's 70%
    lines = lines_by_label(acc_ax)
    assert list(lines) == ["train", "validation", "target 99.4%"]
    assert list(lines["target 99.4%"].get_ydata()) == [99.4, 99.4]
    assert "target 99.4%" in legend_texts(acc_ax)
    assert fig.get_suptitle() == "superlight-aug-seed1-x"


def test_training_curves_without_target_draw_no_target_line():
    acc_ax = plots.training_curves(HISTORY).axes[1]
    assert list(lines_by_label(acc_ax)) == ["train", "test"]
    assert acc_ax.get_ylim()[0] < 92  # the lowest second-half accuracy stays in view


def test_heatmap_titles_name_the_model():
    assert plots.confusion_matrix(*random_logits(), model_name="superlight").axes[0].get_title() == \
        "Confusion matrix (counts): superlight"
    assert "superlight" in plots.confusion_matrix(*random_logits(), normalize=True,
                                                  model_name="superlight").axes[0].get_title()
    assert plots.translation_heatmap(TRANSLATION, model_name="lightest").axes[0].get_title() == \
        "Accuracy under translation: lightest"


def test_save_run_figures_titles_with_run_and_model_and_draws_the_target(tmp_path, monkeypatch):
    monkeypatch.setattr(plt, "close", lambda fig: None)  # keep the figures open to look at them
    plots.save_run_figures(tmp_path, {**METRICS, "evaluated_on": "validation"}, *random_logits())
    curves, confusion = (plt.figure(number) for number in plt.get_fignums())
    assert curves.get_suptitle() == METRICS["run"]
    lines = lines_by_label(curves.axes[1])
    assert "validation" in lines
    assert lines[f"target {records.TARGETS['superlight']['last3_min']:g}%"].get_ydata()[0] == 99.4
    assert confusion.axes[0].get_title() == "Confusion matrix (counts): superlight"


def test_series_curves_one_colour_per_model_solid_with_augmentation_and_a_band_over_seeds():
    ax = plots.series_curves(SERIES).axes[0]
    lines = lines_by_label(ax)
    aug, noaug = lines["superlight, augmentation (2 seeds)"], lines["superlight, no augmentation (1 seed)"]
    light = lines["light, augmentation (1 seed)"]
    assert aug.get_color() == noaug.get_color() != light.get_color()
    assert (aug.get_linestyle(), noaug.get_linestyle(), light.get_linestyle()) == ("-", "--", "-")
    assert np.allclose(aug.get_ydata(), [82.5, 97.5, 99.2, 99.35, 99.4])  # mean over the two seeds
    assert len(ax.collections) == 3  # one band per configuration
    assert list(lines["99.4% accuracy"].get_ydata()) == [99.4, 99.4]
    assert {"99.4% accuracy", "band: min-max over seeds"} <= set(legend_texts(ax))
    low, high = ax.get_ylim()
    assert 98 < low < 99.0 and high >= 100  # the last epochs fill the axis, not epoch 1's 80-95%
    dip = run("light", True, 2, [95.0, 93.0, 99.0, 99.1, 99.2], parameters=7888)  # before the last 3 epochs
    assert plots.series_curves(SERIES + [dip]).axes[0].get_ylim()[0] > 98


def test_series_curves_of_the_committed_series():
    runs = records.series_runs()
    ax = plots.series_curves(runs).axes[0]
    colours = {}
    for line in ax.get_lines():
        if "augmentation" in line.get_label():
            colours.setdefault(line.get_label().split(",")[0], set()).add(line.get_color())
    assert sorted(colours) == sorted({m["model"] for m in runs})
    assert all(len(found) == 1 for found in colours.values())
    assert ax.get_ylim()[0] > min(m["history"][0]["test_acc"] for m in runs)


def errorbars(ax) -> dict:
    return {container.get_label(): container for container in ax.containers}


def test_accuracy_vs_parameters_one_point_per_configuration_with_seed_error_bars():
    ax = plots.accuracy_vs_parameters(SERIES).axes[0]
    bars = errorbars(ax)
    assert list(bars) == ["superlight, augmentation", "superlight, no augmentation", "light, augmentation"]
    two_seeds = bars["superlight, augmentation"]
    assert two_seeds.has_yerr and not bars["superlight, no augmentation"].has_yerr
    point = two_seeds.lines[0]
    assert (point.get_xdata()[0], point.get_ydata()[0]) == (4994, pytest.approx(99.4))
    (_, bottom), (_, top) = two_seeds.lines[2][0].get_segments()[0]
    assert top - bottom == pytest.approx(2 * np.std([99.3, 99.5], ddof=1))  # mean ± std over seeds
    assert point.get_markerfacecolor() != "none"
    assert bars["superlight, no augmentation"].lines[0].get_markerfacecolor() == "none"  # hollow: no augmentation
    assert point.get_color() == bars["superlight, no augmentation"].lines[0].get_color()
    lines = lines_by_label(ax)
    assert list(lines["99.4% accuracy"].get_ydata()) == [99.4, 99.4]
    assert list(lines["5,000 parameters"].get_xdata()) == [5000, 5000]
    assert lines["5,000 parameters"].get_linestyle() == ":"
    assert {"99.4% accuracy", "5,000 parameters"} <= set(legend_texts(ax))
    assert ax.get_title() == "Accuracy vs parameters (1-2 seeds per point)"


def test_accuracy_vs_parameters_of_the_committed_series():
    runs = records.series_runs()
    bars = errorbars(plots.accuracy_vs_parameters(runs).axes[0])
    seeds = {}
    for metrics in runs:
        key = f"{metrics['model']}, {'augmentation' if metrics['config']['augment'] else 'no augmentation'}"
        seeds[key] = seeds.get(key, 0) + 1
    assert {label: bar.has_yerr for label, bar in bars.items()} == {key: n > 1 for key, n in seeds.items()}


def overlaps(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of (panel title or row label or suptitle) that overlap each other or another panel, once drawn."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [(ax, text) for ax in fig.axes for text in (ax.title, ax.yaxis.label) if text.get_text()]
    texts.append((None, fig._suptitle))
    boxes = [(ax, text.get_text(), text.get_window_extent(renderer)) for ax, text in texts]
    found = [(a, b) for (_, a, box_a), (_, b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]
    found += [(name, "a panel") for owner, name, box in boxes for ax in fig.axes
              if ax is not owner and ax.get_window_extent(renderer).overlaps(box)]
    return found


@pytest.mark.parametrize("build", [
    lambda: plots.augmentation_gallery(digit()),
    lambda: plots.augmentation_kinds(digit()),
    lambda: plots.misclassified_gallery(digit().expand(24, 1, 28, 28), torch.arange(24) % 10,
                                        random_logits(24)[0]),
], ids=["augmentation_gallery", "augmentation_kinds", "misclassified_gallery"])
def test_small_panel_titles_do_not_overlap(build):
    fig = build()
    assert fig.get_suptitle()
    assert overlaps(fig) == []


def frontier_run(model: str, seed: int, final: float, last3_min: float, parameters: int) -> dict:
    return {"run": f"{model}-aug-seed{seed}-x", "model": model, "parameters": parameters,
            "config": {"augment": True, "seed": seed, "model_args": {}},
            "summary": {"final_test_acc": final, "last3_min": last3_min}}


FRONTIER = [frontier_run("gap-1.4k", 1, 98.9, 98.8, 1363), frontier_run("gap-1.4k", 2, 99.1, 99.0, 1363),
            frontier_run("gap-3.2k", 1, 99.35, 99.3, 3248), frontier_run("superlight", 1, 99.5, 99.45, 4994),
            frontier_run("superlight", 2, 99.4, 99.38, 4994)]


def test_frontier_plots_mean_and_spread_per_size_on_a_log_axis_with_superlight_starred():
    others = [frontier_run("light", 1, 99.2, 99.1, 7888)]
    ax = plots.frontier(FRONTIER, others).axes[0]
    assert ax.get_xscale() == "log"
    curve = errorbars(ax)["final epoch, mean ± std over seeds (seeds in brackets)"]
    assert list(curve.lines[0].get_xdata()) == [1363, 3248, 4994]
    assert list(curve.lines[0].get_ydata()) == pytest.approx([99.0, 99.35, 99.45])
    assert "light, augmentation (1 seed)" in errorbars(ax)
    lines = lines_by_label(ax)
    assert list(lines["99.4% accuracy"].get_ydata()) == [99.4, 99.4]
    assert list(lines["4,000 parameters"].get_xdata()) == [4000, 4000]
    labels = legend_texts(ax)
    assert "SuperLight (the committed series)" in labels and "a seed's minimum of the last 3 epochs" in labels
    minima = [c for c in ax.collections if c.get_label() == "a seed's minimum of the last 3 epochs"][0]
    assert len(minima.get_offsets()) == 2  # the first size's two seeds
    assert {t.get_text() for t in ax.texts} == {"gap-1.4k (2)", "gap-3.2k (1)", "superlight (2)"}
