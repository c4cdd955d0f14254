"""The committed record: the series of runs listed in training-logs/series.json, its tables, and the README's
generated blocks (README_BLOCKS: headline, results, study tables, noise on the test set, photo reading).

A run enters the series only through `promote` (`python -m mnist_lib promote RUN_FOLDER`): runs made by the CLI,
papermill, jupyter or the tests never change what the README, the notebooks' comparisons and the tests treat as
committed.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import pandas as pd
import torch

from .anatomy import macs
from .config import TrainConfig
from .data import load_split, repo_root
from .models import create_model
from .photos import accuracy_by_condition, is_printed_one, photo_set, read_photos
from .runs import (
    CHECKPOINT,
    METRICS,
    RunError,
    by_size,
    committed_runs_dir,
    configuration,
    default_runs_dir,
    grouped,
    is_complete,
    load_checkpoint,
    load_model,
    run_dirs_like,
    settings_of,
    train,
    trained_on,
)
from .studies import (
    ROBUSTNESS,
    mean_std,
    read_noise,
    study_runs,
    study_summary,
    superlight_levers,
    versus,
    write_robustness,
)
from .training import logits

SERIES = "series.json"
# The series as it stood before its regeneration of 2026-12-03 (native input gradients, 2026-11-22 to 24, mostly
# AVX2): kept to compare the two engines over seeds (regeneration_table); its folders stay in training-logs/.
NATIVE_SERIES = "series-native-2026-11.json"
# What each notebook's Target promises (minimum test accuracy, %, by summary key); the tests assert it on fresh
# runs and the results table counts the seeds that meet it.
TARGETS = {
    "light": {"final_test_acc": 99.0},
    "lightest": {"last3_min": 99.2},
    "superlight": {"last3_min": 99.4},
}
SERIES_MODELS = tuple(TARGETS)  # the series' models, in the order of the notebooks


def target_accuracy(model: str) -> float:
    """The accuracy (%) a model's Target asks for (of its final epoch, or of each of its last 3)."""
    return next(iter(TARGETS[model].values()))


def summary_values(runs: list[dict], key: str = "final_test_acc") -> pd.Series:
    """One summary value (default: the final-epoch accuracy) of each run, e.g. of a configuration's seeds."""
    return pd.Series([m["summary"][key] for m in runs], dtype=float)


def meets_target(metrics: dict, target_of: str | None = None) -> bool:
    """Whether a run meets its model's target, or that of model `target_of` (e.g. SuperLight's for a wider net)."""
    return all(metrics["summary"][key] >= minimum
               for key, minimum in TARGETS[target_of or metrics["model"]].items())


def series_config(model: str, augment: bool, seed: int) -> TrainConfig:
    """The standard recipe of a series member: every setting at its default (or the model's recipe)."""
    return TrainConfig(model=model, augment=augment, seed=seed)


def _series_key(config: dict) -> tuple[str, bool, int]:
    return config["model"], config["augment"], config["seed"]


def _read_series(root: Path, listing: str = SERIES) -> list[str]:
    path = root / listing
    return json.loads(path.read_text())["runs"] if path.exists() else []


def series_runs(root: str | Path | None = None, listing: str = SERIES) -> list[dict]:
    """The committed series (the runs named in `root`/series.json, default training-logs/; another `listing`
    such as NATIVE_SERIES reads that list), each run's metrics with its folder as 'path', checkpoint as
    'checkpoint' and noise table as 'noise' ({std: accuracy}), ordered by model, augmentation, seed."""
    root = Path(root or committed_runs_dir())
    runs = []
    for name in _read_series(root, listing):
        path = root / name / METRICS
        if not path.exists():
            raise RunError(f"{root / listing} names {name}, which has no {METRICS} under {root}")
        runs.append({**json.loads(path.read_text()), "path": str(path.parent),
                     "checkpoint": str(path.parent / CHECKPOINT), "noise": read_noise(path.parent)})
    return sorted(runs, key=lambda m: (SERIES_MODELS.index(m["model"]), not m["config"]["augment"],
                                       m["config"]["seed"]))


def superlight_series(root: str | Path | None = None, listing: str = SERIES) -> list[dict]:
    """The series' SuperLight runs with augmentation: the runs the headline target is about."""
    return [m for m in series_runs(root, listing) if m["model"] == "superlight" and m["config"]["augment"]]


def committed_run(model: str, augment: bool = True, seed: int = 1, root: str | Path | None = None,
                  missing_ok: bool = False) -> dict | None:
    """The series' run of `model` with that augmentation and seed; FileNotFoundError if the series has none
    (None with `missing_ok`)."""
    for metrics in series_runs(root):
        if _series_key(metrics["config"]) == (model, augment, seed):
            return metrics
    if missing_ok:
        return None
    raise FileNotFoundError(f"the committed series has no {model} run with augment={augment}, seed={seed} "
                            f"(promote one: python -m mnist_lib promote RUN_FOLDER)")


def promote(run_dir: str | Path, root: str | Path | None = None, replace_existing: bool = False,
            data_dir: str | Path | None = None, download: bool = True) -> Path:
    """Put a complete 15-epoch run of the standard recipe into the committed series: copy its folder into `root`
    (default training-logs/) unless it is there already, measure its accuracy under pixel noise (robustness.json)
    and list it in series.json. A run of the same model, augmentation and seed already in the series is only
    replaced with `replace_existing` (its folder stays)."""
    run_dir, root = Path(run_dir), Path(root or committed_runs_dir())
    if not (run_dir / METRICS).exists():
        raise RunError(f"{run_dir} is not a run folder (it has no {METRICS})")
    metrics = json.loads((run_dir / METRICS).read_text())
    if metrics["status"] != "complete":
        raise RunError(f"{run_dir} is not complete ({metrics['summary']['epochs_run']} epochs of "
                       f"{metrics['config']['epochs']}): finish it with python -m mnist_lib train --resume")
    config = TrainConfig.from_dict(metrics["config"])
    standard = replace(series_config(config.model, config.augment, config.seed), device=config.device)
    differs = [f"{name}={value!r}" for name, value in config.to_dict().items() if getattr(standard, name) != value]
    if differs:
        raise RunError(f"{run_dir.name} differs from the standard recipe in {', '.join(differs)}: only standard "
                       f"runs enter the series")
    names = _read_series(root)
    taken = [name for name in names if name != run_dir.name and _series_key(
        json.loads((root / name / METRICS).read_text())["config"]) == _series_key(metrics["config"])]
    if taken and not replace_existing:
        raise RunError(f"the series already holds {taken[0]} for {config.model}, augment={config.augment}, "
                       f"seed={config.seed}: pass --replace to put {run_dir.name} in its place")
    destination = root / run_dir.name
    if run_dir.resolve() != destination.resolve():
        # A copy a kill cut short is redone; a complete one (same metrics.json) is kept, so promote can be re-run.
        if destination.exists() and (destination / METRICS).read_bytes() != (run_dir / METRICS).read_bytes():
            raise RunError(f"{destination} exists already and is not {run_dir}")
        if not destination.exists():
            partial = destination.with_name(destination.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(run_dir, partial)
            partial.rename(destination)
    if not (destination / ROBUSTNESS).exists():
        write_robustness(destination, data_dir, download)
    names = sorted({*names, run_dir.name} - set(taken))
    (root / SERIES).write_text(json.dumps({"runs": names}, indent=2) + "\n")
    return destination


def _started(run_dir: Path) -> str:
    if (run_dir / METRICS).exists():
        return json.loads((run_dir / METRICS).read_text())["started"]
    return load_checkpoint(run_dir / CHECKPOINT)["metrics"]["started"]


def fill_series(seeds: list[int], models: tuple[str, ...] = SERIES_MODELS, augments: tuple[bool, ...] = (True, False),
                since: str | None = None, device: str = "auto", data_dir: str | Path | None = None,
                download: bool = True, root: str | Path | None = None,
                on_promoted: Callable[[Path], object] | None = None) -> list[str]:
    """Train and promote every series member (model x augmentation x seed, seed by seed) that the series lacks,
    that no longer matches the standard recipe, or, with `since` (an ISO time such as "2026-11-24T09:00"), that
    started before it: `since` regenerates the whole series, and the same call resumes after a kill. Runs are made
    in the runs folder (runs/ or $MNIST_RUNS_DIR); a cut-off one is resumed, a finished one not yet promoted is
    promoted. `on_promoted(folder)` then runs on every series folder (the CLI saves missing figures there).
    Returns the names of the runs promoted."""
    promoted = []
    for seed in seeds:
        for model in models:
            for augment in augments:
                config = replace(series_config(model, augment, seed), device=device)
                current = committed_run(model, augment, seed, root, missing_ok=True)
                if current and settings_of(current["config"]) == settings_of(config.to_dict()) and (
                        since is None or current["started"] >= since):
                    continue
                made = [run_dir for run_dir in run_dirs_like(default_runs_dir().glob("*"), config)
                        if since is None or _started(run_dir) >= since]
                run_dir = made[-1] if made else None
                if run_dir is None or not is_complete(run_dir):
                    resume = run_dir / CHECKPOINT if run_dir is not None else None
                    run_dir = train(config, data_dir=data_dir, download=download, resume=resume).run_dir
                promote(run_dir, root, replace_existing=True, data_dir=data_dir, download=download)
                promoted.append(run_dir.name)
    if on_promoted:  # also for members promoted before a kill cut off their on_promoted
        for metrics in series_runs(root):
            on_promoted(Path(metrics["path"]))
    return promoted


def target_text(model: str) -> str:
    """A model's target in words, e.g. 'each of last 3 >= 99.4'."""
    names = {"final_test_acc": "final", "last3_min": "each of last 3"}
    return ", ".join(f"{names[key]} >= {minimum}" for key, minimum in TARGETS[model].items())


def worst_last3(runs: list[dict]) -> str:
    """The lowest accuracy any of `runs` had in any of its last 3 epochs, e.g. '99.35'."""
    return f"{min(m['summary']['last3_min'] for m in runs):.2f}"


def series_table(runs: list[dict]) -> pd.DataFrame:
    """One row per configuration (model, augmentation) of a series, over its seeds: mean ± std of the final-epoch
    test accuracy, the worst seed's minimum over the last 3 epochs, how many seeds meet the model's target."""
    rows = []
    for (model, augment), members in grouped(runs, configuration).items():
        final = pd.Series([m["summary"]["final_test_acc"] for m in members])
        rows.append({
            "model": model,
            "parameters": members[0]["parameters"],
            "augmentation": "yes" if augment else "no",
            "seeds": len(members),
            "final-epoch test acc (%)": mean_std(final),
            "worst seed, min of last 3 (%)": worst_last3(members),
            "target": target_text(model),
            "seeds meeting it": f"{sum(meets_target(m) for m in members)} of {len(members)}",
            "mean wall time (s)": round(sum(m["wall_seconds"] for m in members) / len(members)),
            "cpu": ", ".join(sorted({m.get("cpu_capability") or "not recorded" for m in members})),
            "runs": [m["run"] for m in members],
        })
    return pd.DataFrame(rows)


def regeneration_pairs(root: str | Path | None = None) -> dict[tuple[str, bool], list[tuple[dict, dict]]]:
    """Per configuration, the (before, now) runs of each seed both series hold: the series of 2026-11
    (NATIVE_SERIES) and the committed one."""
    before = {_series_key(m["config"]): m for m in series_runs(root, NATIVE_SERIES)}
    pairs: dict[tuple[str, bool], list[tuple[dict, dict]]] = {}
    for now in series_runs(root):
        if _series_key(now["config"]) in before:
            pairs.setdefault(configuration(now), []).append((before[_series_key(now["config"])], now))
    return pairs


def regeneration_table(root: str | Path | None = None) -> pd.DataFrame:
    """The series of 2026-11 against the committed one, per configuration over the seeds both hold: final-epoch
    test accuracy (mean ± std), the difference of the means judged against the seeds' spread, the mean and largest
    same-seed change, the worst seed's minimum over the last 3 epochs and the seeds meeting the target, each
    before -> now, and the kernels that trained each side."""
    rows = []
    for (model, augment), pairs in regeneration_pairs(root).items():
        old, new = [before for before, _ in pairs], [now for _, now in pairs]
        change = summary_values(new).to_numpy() - summary_values(old).to_numpy()
        rows.append({
            "model": model,
            "augmentation": "yes" if augment else "no",
            "seeds": len(pairs),
            "before: final-epoch acc (%)": mean_std(summary_values(old)),
            "now: final-epoch acc (%)": mean_std(summary_values(new)),
            "now vs before": versus(summary_values(new), summary_values(old)),
            "same seed, now - before (pp): mean, largest size": f"{change.mean() + 0.0:+.2f}, "
                                                                 f"{abs(change).max():.2f}",
            "worst seed, min of last 3 (%)": f"{worst_last3(old)} -> {worst_last3(new)}",
            "seeds meeting the target": f"{sum(map(meets_target, old))} -> {sum(map(meets_target, new))} "
                                        f"of {len(pairs)}",
            "before: trained on": trained_on(old),
            "now: trained on": trained_on(new),
        })
    return pd.DataFrame(rows)


def regeneration_block(root: str | Path | None = None) -> str:
    """regeneration_table as markdown, or a note while the two series share no seed."""
    table = regeneration_table(root)
    return markdown_table(table) if len(table) else "(the two series hold no seed in common)"


def _link(name: str, runs_link: str) -> str:
    seed = re.search(r"-seed(\d+)-", name)
    return f"[{'seed ' + seed.group(1) if seed else name}]({runs_link}/{name})"


def markdown_table(frame: pd.DataFrame, runs_link: str = "training-logs") -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = []
    for row in frame.to_dict("records"):
        cells = [f"[{v}]({runs_link}/{v})" if k == "run" else ", ".join(_link(n, runs_link) for n in v)
                 if k == "runs" else f"{v:,}" if k == "parameters" and v != "" else str(v) for k, v in row.items()]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join([header, rule, *rows])


def readme_table(root: str | Path | None = None) -> str:
    """The README's results table: the committed series over its seeds, as markdown."""
    return markdown_table(series_table(series_runs(root)))


def study_block(name: str, root: str | Path | None = None) -> str:
    """A study's summary (one row per variant, over its seeds) as markdown."""
    summary = study_summary(name, root or committed_runs_dir())
    return markdown_table(summary) if not summary.empty else f"(no complete runs of the {name} study yet)"


def levers_block(root: str | Path | None = None) -> str:
    """superlight_levers as markdown, then how many variants beat SuperLight beyond the seeds' spread and how many
    lift the worst seed's minimum over the last 3 epochs above SuperLight's in the same study."""
    levers = superlight_levers(root or committed_runs_dir())
    if levers.empty:
        return "(no complete runs of a SuperLight lever study yet)"
    better = levers["vs SuperLight"].str.contains("better").sum()
    # Held-out accuracies are whole images out of 10,000, so the 2-decimal cells compare exactly.
    lifted = (levers["worst last-3 min (%)"].astype(float) > levers["SuperLight's worst last-3 min (%)"].astype(float))
    return (markdown_table(levers) + f"\n\n{len(levers)} variants in {levers['study'].nunique()} studies: "
            f"{better or 'none'} better than SuperLight beyond the seeds' spread; {lifted.sum()} with a worst last-3 "
            "minimum above SuperLight's in the same study.")


def photo_table(root: str | Path | None = None, data_dir: str | Path | None = None) -> str:
    """The committed SuperLight (augmentation, seed 1) reading the generated photo set, per condition."""
    run = committed_run("superlight", True, 1, root)
    readings = read_photos(load_model(run["checkpoint"]), photo_set(data_dir))
    table = accuracy_by_condition(readings)
    return f"Model: [{run['run']}](training-logs/{run['run']}).\n\n" + markdown_table(table)


PHOTO_SET_SEEDS = (0, 1, 2, 3, 4)  # 0: the set the preprocessing was tuned on; the others unseen while tuning
PHOTO_AIMS = {"all": 97.0, "weakest condition": 95.0}  # accuracy (%) predict should reach on the photo set


def photo_sets_table(root: str | Path | None = None, data_dir: str | Path | None = None,
                     seeds: tuple[int, ...] = PHOTO_SET_SEEDS) -> pd.DataFrame:
    """The committed SuperLight (augmentation, seed 1) on the photo sets of `seeds` (each with its own MNIST test
    digits), one row per set: accuracy over all pictures and under the weakest condition, counting every picture and
    without the printed 1; how many printed 1s it misread; and every other miss, an MNIST picture marked where the
    model misreads its raw test image too (a miss of the model, not of the preprocessing)."""
    model = load_model(committed_run("superlight", True, 1, root)["checkpoint"])
    raw_answers = logits(model, load_split(False, data_dir, download=False)).argmax(1)
    rows = []
    for seed in seeds:
        readings = read_photos(model, photo_set(data_dir, seed=seed))
        ones = is_printed_one(readings)
        row = {"set seed": f"{seed} (tuned on)" if seed == 0 else f"{seed}", "pictures": len(readings)}
        for label, kept in (("every picture", readings), ("without the printed 1", readings[~ones])):
            table = accuracy_by_condition(kept).set_index("condition")["accuracy (%)"]
            overall, weakest = table["all"], table.drop("all").min()
            row |= {f"{label}: all (%)": overall, f"{label}: weakest condition (%)": weakest,
                    f"{label}: meets {PHOTO_AIMS['all']:g}% / {PHOTO_AIMS['weakest condition']:g}%":
                        "yes" if overall >= PHOTO_AIMS["all"] and weakest >= PHOTO_AIMS["weakest condition"] else "no"}
        misses = []
        for _, miss in readings[~readings["correct"] & ~ones].iterrows():
            index = int(miss["source"].split("#")[1]) if miss["source"].startswith("MNIST") else None
            also_raw = " (its raw test image too)" if index is not None and raw_answers[index] != miss["label"] else ""
            misses.append(f"{miss['source']}: {miss['label']} read as {miss['predicted']}{also_raw}")
        row |= {"printed 1s misread": f"{int((ones & ~readings['correct']).sum())} of {int(ones.sum())}",
                "other misses": "; ".join(misses) or "none"}
        rows.append(row)
    return pd.DataFrame(rows)


def photo_sets_block(root: str | Path | None = None) -> str:
    """photo_sets_table, then how many sets meet the bar counting every picture and without the printed 1."""
    table = photo_sets_table(root)
    bar = f"{PHOTO_AIMS['all']:g}% / {PHOTO_AIMS['weakest condition']:g}%"
    met = {label: (table[f"{label}: meets {bar}"] == "yes").sum()
           for label in ("every picture", "without the printed 1")}
    return (markdown_table(table) + f"\n\nCounting every picture, {met['every picture']} of {len(table)} sets meet "
            f">= {PHOTO_AIMS['all']:g}% overall and >= {PHOTO_AIMS['weakest condition']:g}% under every condition; "
            f"without the printed 1, {met['without the printed 1']} of {len(table)}.")


def headline(root: str | Path | None = None) -> str:
    """The README's headline sentence about SuperLight, from the committed series."""
    members = superlight_series(root)
    met = [m for m in members if meets_target(m)]
    worst = min(members, key=lambda m: m["summary"]["last3_min"])
    seeds = ", ".join(str(m["config"]["seed"]) for m in members)
    verdict = "every seed meets it" if len(met) == len(members) else "**not every seed meets it yet**"
    return (f"SuperLight has {members[0]['parameters']:,} parameters; in the committed series (seeds {seeds}, "
            f"with augmentation) {len(met)} of {len(members)} seeds hold >= {target_accuracy('superlight')}% in "
            f"each of the last 3 epochs, so {verdict}: the worst seed, {worst['config']['seed']}, reached "
            f"{worst['summary']['last3_min']:.2f}% at its lowest of the last 3 epochs "
            f"([`{worst['run']}`](training-logs/{worst['run']})).")


NOISE_AIMS = {0.2: 99.0, 0.3: 98.0}  # accuracy (%) SuperLight should hold under Gaussian pixel noise of that std
FRONTIER_BUDGET = 4000  # parameters: notebook 04's target size


def holds_noise_aims(noise: dict[float, float]) -> bool:
    """Whether accuracies under noise ({std: accuracy}, e.g. a run's robustness.json) meet every NOISE_AIMS."""
    return all(noise.get(std, -math.inf) >= aim for std, aim in NOISE_AIMS.items())


NOISE_FREE, NOISE_RECIPE = "none", "U(0, 0.3) on half the images"


def noise_recipe_runs(root: str | Path | None = None) -> dict[tuple[str, str], tuple[str, list[dict]]]:
    """On the test set, without noise in training and with the noise recipe, by (model, NOISE_FREE or
    NOISE_RECIPE): where the runs come from and the runs. SuperLight: the series of 2026-11 (NATIVE_SERIES, the same
    input gradients as the noise-test runs) and study noise-test; gap-6.0k: study frontier and study
    noise-capacity."""
    root = Path(root or committed_runs_dir())
    return {
        ("superlight", NOISE_FREE): ("the series of 2026-11", superlight_series(root, NATIVE_SERIES)),
        ("superlight", NOISE_RECIPE): ("study noise-test", study_runs("noise-test", root)),
        ("gap-6.0k", NOISE_FREE): ("study frontier",
                                   [m for m in study_runs("frontier", root) if m["model"] == "gap-6.0k"]),
        ("gap-6.0k", NOISE_RECIPE): ("study noise-capacity", study_runs("noise-capacity", root)),
    }


def noise_test_table(root: str | Path | None = None) -> pd.DataFrame:
    """noise_recipe_runs over seeds: clean accuracy, accuracy under noise std 0.2 and 0.3 (mean ± std and worst
    seed), and how many seeds meet the clean target (SuperLight's, for both models) and both noise aims."""
    rows = []
    for (model, recipe), (source, members) in noise_recipe_runs(root).items():
        if not members:
            continue
        row = {"model": model, "parameters": members[0]["parameters"],
               "training noise": f"{recipe} ({source})", "seeds": len(members),
               "final-epoch acc (%)": mean_std(summary_values(members)),
               "worst seed, min of last 3 (%)": worst_last3(members)}
        for std in NOISE_AIMS:
            noisy = pd.Series([m["noise"][std] for m in members])
            row[f"acc at noise {std} (%)"] = f"{mean_std(noisy)} (worst {noisy.min():.2f})"
        clean_ok = sum(meets_target(m, "superlight") for m in members)
        both_ok = sum(meets_target(m, "superlight") and holds_noise_aims(m["noise"]) for m in members)
        row["seeds meeting 99.4% clean"] = f"{clean_ok} of {len(members)}"
        row["seeds meeting 99.4% clean and both noise aims"] = f"{both_ok} of {len(members)}"
        row["trained on"] = trained_on(members)
        rows.append(row)
    return pd.DataFrame(rows)


def noise_test_block(root: str | Path | None = None) -> str:
    return markdown_table(noise_test_table(root))


def noise_verdict(root: str | Path | None = None) -> str:
    """A sentence per model of noise_recipe_runs: the noise recipe's clean cost judged against the seeds' spread,
    and the seeds meeting each aim with and without it."""
    runs = noise_recipe_runs(root)
    sentences = []
    for model in dict.fromkeys(model for model, _ in runs):
        (plain_source, plain), (noisy_source, noisy) = runs[model, NOISE_FREE], runs[model, NOISE_RECIPE]
        name = "SuperLight" if model == "superlight" else model
        if not (plain and noisy):
            sentences.append(f"({name}: no complete runs of {noisy_source if plain else plain_source} yet)")
            continue
        clean = {label: sum(meets_target(m, "superlight") for m in members)
                 for label, members in (("noisy", noisy), ("plain", plain))}
        sentences.append(
            f"With the noise recipe, {name}'s clean final-epoch test accuracy against its noise-free runs "
            f"({plain_source}): {versus(summary_values(noisy), summary_values(plain))} ({len(noisy)} and "
            f"{len(plain)} seeds). {clean['noisy']} of {len(noisy)} of its seeds hold "
            f"{target_accuracy('superlight')}% in each of the last 3 epochs (noise-free: "
            f"{clean['plain']} of {len(plain)}), and "
            f"{sum(holds_noise_aims(m['noise']) for m in noisy)} of {len(noisy)} hold both noise aims (noise-free: "
            f"{sum(holds_noise_aims(m['noise']) for m in plain)} of {len(plain)}).")
    return " ".join(sentences)


def frontier_runs(root: str | Path | None = None) -> list[dict]:
    """The committed frontier: the runs of study `frontier` and, as its 5.0k point, the SuperLight of the series
    of 2026-11 (NATIVE_SERIES: the sweep's input gradients and CPU kind), by size."""
    root = Path(root or committed_runs_dir())
    return sorted(study_runs("frontier", root) + superlight_series(root, NATIVE_SERIES),
                  key=lambda m: m["parameters"])


def frontier_table(runs: list[dict], goal: float = TARGETS["superlight"]["last3_min"]) -> pd.DataFrame:
    """One row per model of a frontier (smallest first) over its seeds: parameters, multiply-accumulates per image,
    mean ± std of the final-epoch accuracy, the worst seed's minimum over the last 3 epochs, the mean final train -
    test accuracy, and how many seeds hold `goal` in each of the last 3 epochs."""
    rows = []
    for members in by_size(runs):
        model, finals = members[0]["model"], summary_values(members, "final_test_acc")
        with torch.random.fork_rng(devices=[]):  # building a model to count its MACs must not move the caller's RNG
            model_macs = macs(create_model(model, **members[0]["config"]["model_args"]))
        rows.append({
            "model": model,
            "parameters": members[0]["parameters"],
            "MACs per image": f"{model_macs:,}",
            "seeds": len(members),
            "final-epoch acc (%)": mean_std(finals),
            "worst seed, min of last 3 (%)": worst_last3(members),
            # Running train accuracy (augmented images) below test accuracy: the net under-fits what it trains on.
            "train - test, final (pp)": f"{summary_values(members, 'final_train_acc').mean() - finals.mean():+.2f}",
            f"seeds >= {goal:g}% in each of last 3": f"{sum(m['summary']['last3_min'] >= goal for m in members)} "
                                                     f"of {len(members)}",
            "trained on": trained_on(members),
            "runs": [m["path"] for m in members],
        })
    return pd.DataFrame(rows)


def frontier_block(root: str | Path | None = None) -> str:
    root = Path(root or committed_runs_dir())
    table = frontier_table(frontier_runs(root))
    table["runs"] = [[str(Path(path).relative_to(root)) for path in paths] for paths in table["runs"]]
    return markdown_table(table)


README_BLOCKS = {
    "headline": headline,
    "results": readme_table,
    "noise": partial(study_block, "noise"),
    "noise-test": noise_test_block,
    "noise-verdict": noise_verdict,
    "regeneration": regeneration_block,
    "superlight-recipe": partial(study_block, "superlight-recipe"),
    "photos": photo_table,
    "photo-sets": photo_sets_block,
    "frontier": frontier_block,
    "frontier-ideas": partial(study_block, "frontier-ideas"),
    "augment-strength": partial(study_block, "augment-strength"),
    "lightest-ablation": partial(study_block, "lightest-ablation"),
    "ema": partial(study_block, "ema"),
    "superlight-ablation": partial(study_block, "superlight-ablation"),
    "superlight-regularisation": partial(study_block, "superlight-regularisation"),
    "superlight-5k-ideas": partial(study_block, "superlight-5k-ideas"),
    "superlight-smoothing-decay": partial(study_block, "superlight-smoothing-decay"),
    "superlight-bottleneck": partial(study_block, "superlight-bottleneck"),
    "superlight-sgd": partial(study_block, "superlight-sgd"),
    "superlight-activation": partial(study_block, "superlight-activation"),
    "noise-recalibration": partial(study_block, "noise-recalibration"),
    "superlight-warp": partial(study_block, "superlight-warp"),
    "superlight-clean-finish": partial(study_block, "superlight-clean-finish"),
    "superlight-widths": partial(study_block, "superlight-widths"),
    "superlight-residual": partial(study_block, "superlight-residual"),
    "superlight-levers": levers_block,
}


def readme_with_block(readme: str, name: str, content: str) -> str:
    """`readme` with the text between <!-- NAME:start --> and <!-- NAME:end --> replaced by `content`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(readme):
        raise ValueError(f"README has no {start} ... {end} block to fill")
    note = "<!-- generated by `python -m mnist_lib records --update-readme` from training-logs/; do not edit -->"
    return pattern.sub(lambda _: f"{start}\n{note}\n\n{content}\n\n{end}", readme)


def sync_readme(write: bool, root: str | Path | None = None) -> bool:
    """Whether README.md's generated blocks (README_BLOCKS: results, studies, photos, the frontier) match the
    record; with `write`, make them match."""
    path = repo_root() / "README.md"
    current = path.read_text()
    updated = current
    for name, render in README_BLOCKS.items():
        updated = readme_with_block(updated, name, render(root))
    if write and updated != current:
        path.write_text(updated)
    return updated == current
