import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from mnist_lib import plots
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
           "summary": {"final_test_acc": 94.0}}


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
    "training_curves": (lambda save: plots.training_curves(HISTORY, save=save), ("Loss per epoch", "Epoch", "Loss")),
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
    "accuracy_vs_parameters": (lambda save: plots.accuracy_vs_parameters([METRICS], save=save),
                               ("Accuracy vs parameters", "Parameters", "Final test accuracy (%)")),
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
    assert labels_of(acc_ax) == ("Accuracy per epoch", "Epoch", "Accuracy (%)")
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
