"""The README's benchmark tables and timing claims quote the committed outputs they name, number for number."""

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def readme_rows(first_cell: str) -> list[list[str]]:
    """The cells of every README table row whose first cell starts with `first_cell`."""
    rows = [line.strip("|").split("|") for line in (REPO / "README.md").read_text().splitlines()
            if line.startswith("| " + first_cell)]
    return [[cell.strip() for cell in row] for row in rows]


def numbers(text: str) -> list[str]:
    return re.findall(r"\d[\d,]*\.?\d*", text)


def test_train_speed_tables_quote_the_committed_output():
    output = (RESULTS / "train_speed.txt").read_text()
    tensor_rate = re.search(r"tensor pipeline \(affine_grid.*?:\s+([\d,]+)", output)[1]
    torchvision_rate = re.search(r"torchvision RandomAffine.*?:\s+([\d,]+)", output)[1]
    data_ratio, epoch_ratio = re.search(r"data_ratio=(\S+)", output)[1], re.search(r"epoch_ratio=(\S+)", output)[1]
    tensor_epoch, torchvision_epoch = re.findall(r"(?:tensor|torchvision) pipeline:\s+([\d.]+)", output)
    (a,) = readme_rows("(a) augmented batches")
    assert [numbers(cell)[0] for cell in a[1:]] == [tensor_rate, torchvision_rate, data_ratio]
    (b,) = readme_rows("(b) one SuperLight training epoch")
    assert [numbers(cell)[0] for cell in b[1:]] == [tensor_epoch, torchvision_epoch, epoch_ratio]
    rows = [line for line in output.split("(c)")[1].split("(d)")[0].splitlines()[2:] if line.startswith("    ")]
    measured = [numbers(line[62:])[:5] for line in rows]  # after the 58-character variant column
    table = [row for row in readme_rows("") if len(row) == 7 and row[0].startswith(("engine before", "+ "))]
    assert len(table) == len(measured) == 6
    for row, values in zip(table, measured, strict=True):
        assert [numbers(cell)[0] for cell in row[1:6]] == values, row[0]
    compile_seconds = re.search(r"first epoch of 15,360 images: ([\d.]+) s", output)[1]
    assert f"first {15360 // 128} steps: {compile_seconds} s" in table[-1][6]
    full_run = {key: re.search(rf"{key}=(\S+)", output)[1] for key in ("full_run_seconds", "full_run_ratio")}
    full_runs = r"(?:engine before|engine now|opt-in path):\s+([\d.]+) s, final-epoch test accuracy ([\d.]+)%"
    before, now = re.findall(full_runs, output)
    readme = " ".join((REPO / "README.md").read_text().split())
    assert (f"**{before[0]} s before, {now[0]} s now (full_run_ratio = {full_run['full_run_ratio']})**, final-epoch "
            f"test accuracy {before[1]}% before and {now[1]}% now") in readme
    assert now[0] == full_run["full_run_seconds"]
    assert f"not reached: {full_run['full_run_ratio']}x measured" in readme


def step_ms(output_file: str) -> list[float]:
    """The ms/step column of part (c) of a committed train_speed output, row by row."""
    part = (RESULTS / output_file).read_text().split("(c)")[1].split("(d)")[0]
    return [float(numbers(line[62:])[0]) for line in part.splitlines()[2:] if line.startswith("    ")]


def test_readme_ratios_derived_from_the_committed_outputs_are_theirs():
    """The ratios the Benchmarks prose computes from committed outputs (not printed by them as such)."""
    readme = " ".join((REPO / "README.md").read_text().split())
    now, avx512_before, avx2 = (step_ms(name) for name in ("train_speed.txt", "train_speed-2026-12-03-avx512.txt",
                                                            "train_speed-2026-11-24-avx2.txt"))
    compile_now = f"{now[2] / now[5]:.2f}x per training step on top of the engine now in (c) here ({now[5]:.2f} against"
    assert compile_now + f" {now[2]:.2f} ms" in readme
    assert f"{avx512_before[1] / avx512_before[4]:.2f}x in the previous AVX-512 output" in readme
    assert f"{avx2[0] / avx2[-1]:.2f}x in the AVX2 one" in readme
    assert f"cannot cost {now[3] - now[2]:.1f} ms a step" in readme
    first = (RESULTS / "train_speed-2026-12-07-first.txt").read_text()
    before, after = re.findall(r"engine (?:before|now):\s+([\d.]+) s", first)
    first_ratio = re.search(r"full_run_ratio=(\S+)", first)[1]
    assert f"measured {before} s and {after} s, {first_ratio}x" in readme
    previous = re.search(r"full_run_ratio=(\S+)", (RESULTS / "train_speed-2026-12-03-avx512.txt").read_text())[1]
    assert f"the previous output {previous}x for the input gradients alone" in readme


def test_paired_ratios_quote_the_committed_output():
    output = (RESULTS / "train_speed-paired-2026-12-07.txt").read_text()
    ratios: dict[str, list[str]] = {}
    for model, ratio in re.findall(r"^    (\w+)\s+now .*?median ([\d.]+) \(range", output, flags=re.M):
        ratios.setdefault(model, []).append(ratio)
    readme = " ".join((REPO / "README.md").read_text().split())
    quoted = re.search(r"SuperLight ([\d., and]+) \(median ratio of paired blocks\), Lightest ([\d., and]+), "
                       r"Light ([\d., and]+?)\. ", readme)
    for model, group in zip(("superlight", "lightest", "light"), quoted.groups(), strict=True):
        assert numbers(group) == ratios[model], model


def test_inference_table_quotes_the_committed_output():
    output = dict(line.split("=") for line in (RESULTS / "inference.txt").read_text().splitlines() if "=" in line)
    for model in ("light", "lightest", "superlight"):
        (row,) = [row for row in readme_rows(model + " |") if len(row) == 6 and row[2].endswith(" ms")]
        assert row[2:] == [f"{float(output[f'latency_ms_{model}_eager']):.3f} ms",
                           f"{float(output[f'latency_ms_{model}_torchscript']):.3f} ms",
                           f"{int(output[f'throughput_{model}_eager']):,}",
                           f"{int(output[f'throughput_{model}_torchscript']):,}"]


def test_readme_compares_the_steps_before_pytest_of_the_two_afternoon_and_evening_runs():
    def before_pytest(output: str) -> float:
        ci = (RESULTS / output).read_text()
        end_to_end = float(re.search(r"end to end .*?: (\d+) s", ci)[1])
        return end_to_end - float(re.search(r"xfailed in ([\d.]+)s", ci)[1])

    assert before_pytest("ci-fresh-clone-2026-12-03-evening.txt") < 120 < 180 < before_pytest(
        "ci-fresh-clone-2026-12-03-afternoon.txt")
    readme = " ".join((REPO / "README.md").read_text().split())
    assert ("From the afternoon run to the evening one, `pip install --no-compile` took the steps before `pytest` "
            "from over 3 minutes to under 2.") in readme
    assert "about half a minute of unit tests beside it" in (RESULTS / "ci-fresh-clone-2026-12-03-afternoon.txt"
                                                              ).read_text().replace("\n# ", " ")


def ci_run(output: str) -> dict:
    """What a committed fresh-clone CI output says of itself: counts, minutes in pytest and end to end, and the
    minutes of its four 15-epoch trainings (the three notebooks' training cells and the second-seed run)."""
    ci = (RESULTS / output).read_text()
    passed, skipped, xfailed, seconds = re.search(r"(\d+) passed, (\d+) skipped, (\d+) xfailed in ([\d.]+)s",
                                                  ci).groups()
    trainings = [float(s) for s in re.findall(r"([\d.]+)s call .*(?:Cell 6|second_seed)", ci)]
    assert len(trainings) == 4, output
    return {"passed": passed, "skipped": skipped, "xfailed": xfailed, "pytest": round(float(seconds) / 60),
            "end_to_end": round(float(re.search(r"end to end .*?: (\d+) s", ci)[1]) / 60),
            "trainings": round(sum(trainings) / 60)}


def test_readme_timing_claims_match_their_sources():
    readme = " ".join((REPO / "README.md").read_text().split())
    first = json.loads((REPO / "training-logs" / "superlight-aug-seed1-20261122-061752" / "metrics.json").read_text())
    assert f"superlight-aug-seed1-20261122-061752): {round(first['wall_seconds'])} s" in readme


def test_readme_ci_table_quotes_every_committed_fresh_clone_output():
    rows = readme_rows("[20")
    names = [re.search(r"\(benchmarks/results/([^)]+)\)", row[0])[1] for row in rows]
    assert sorted(names) == sorted(path.name for path in RESULTS.glob("ci-fresh-clone-*.txt"))
    for name, row in zip(names, rows, strict=True):
        header = (RESULTS / name).read_text().splitlines()[0]
        commit, cpu, grads = row[1], row[2].split(",")[0], row[3]
        assert f"at {commit} (" in header and f" {cpu} " in header, name
        assert ("forward-conv" in header or "switched ON" in header) == (grads == "forward-conv"), name
        run = ci_run(name)
        assert row[4:] == [f"{run['passed']} / {run['skipped']} / {run['xfailed']}", str(run["pytest"]),
                           str(run["trainings"]), str(run["end_to_end"])], name


def test_readme_wall_time_range_matches_the_series_superlight_runs():
    from mnist_lib import records

    readme = " ".join((REPO / "README.md").read_text().split())
    assert "takes four to seven on the busier shared 2-core AVX-512 machine that made the committed series" in readme
    minutes = [m["wall_seconds"] / 60 for m in records.superlight_series()]
    assert 4 <= min(minutes) and round(max(minutes)) <= 7, minutes


def test_startup_figures_quote_the_committed_output():
    output = (RESULTS / "startup.txt").read_text()
    seconds = re.findall(r"^    .*?\s([\d.]+) s$", output, flags=re.M)
    ratio = re.search(r"startup_ratio=(\S+)", output)[1]
    readme = " ".join((REPO / "README.md").read_text().split())
    assert (f"`import torch` alone {seconds[0]} s, `import mnist_lib.cli` {seconds[1]} s, and {seconds[2]} s with "
            f"torchvision, matplotlib and seaborn" in readme)
    assert f"**startup_ratio = {ratio}**" in readme


def test_the_bf16_ratios_quote_the_committed_output():
    output = (RESULTS / "train_speed-paired-bf16-2026-12-07.txt").read_text()
    sections = output.split("## ")[1:]
    ratios: list[dict[str, list[str]]] = [{}, {}]  # against the engine now; both with native input gradients
    slower: dict[str, list[str]] = {}
    for section in sections:
        found = ratios[1] if "--paired-conv-input-grads native" in section.splitlines()[0] else ratios[0]
        for model, ratio, rest in re.findall(r"^    (\w+)\s+now .*?bf16 / now: median ([\d.]+) \(range[^)]*\)(.*)$",
                                             section, flags=re.M):
            found.setdefault(model, []).append(ratio)
            if model == "light" and rest:
                slower.setdefault(model, []).append(rest)
    readme = " ".join((REPO / "README.md").read_text().split())
    now, native = ratios
    assert (f"now: SuperLight {', '.join(now['superlight'][:-1])} and {now['superlight'][-1]}, Lightest "
            f"{' and '.join(now['lightest'])}, Light {' and '.join(now['light'])}; both with native input gradients: "
            f"SuperLight {' and '.join(native['superlight'])}, Lightest {native['lightest'][0]}, Light "
            f"{native['light'][0]}.") in readme
    # "Light is slower in bf16 in every block pair of every invocation": the first invocation printed no counts, so
    # its range must lie above 1; the others say 10 of 10.
    light_ranges = re.findall(r"^    light\s+now .*?\(range ([\d.]+)-", output, flags=re.M)
    assert all(float(low) > 1 for low in light_ranges)
    assert slower["light"] and all(rest.startswith(", slower in 10 of 10") for rest in slower["light"])
    superlight, lightest = ([float(r) for r in now[m] + native[m]] for m in ("superlight", "lightest"))
    assert min(superlight) < 1 < max(superlight) and min(lightest) < 1 < max(lightest)  # "both sides of 1"
    assert f"the best of them ({min(superlight + lightest):.3f})" in readme
