"""What the framework costs over hand-written loops: `make bench` (`EPOCHS=3` to shorten), `make bench-overhead`,
`make bench-resnet`, `make bench-eval`, `make bench-step`.

Trains one model through `src/train.py` (the real entry point, in a subprocess) and through the references of
`references.py`, each in its own process, on the same tensors, seeds and batch size: the naive raw loop
(pytorch/examples: default Adam, eager), the best raw loop (fused Adam, compiled loss) and, when `pythae` is
installed, the widest peer's own trainer on the same nets. Models:
  mlp:    the pytorch/examples VAE (784-400-20, batch 128, Adam 1e-3, Bernoulli) on full MNIST;
  tiny:   latent 2, hidden 8: almost no arithmetic, so the time per step is the host's overhead;
  resnet: model=resnet on 32x32 colour images (CIFAR-10 when present, else random images of its shape).
The protocol: `--repeats` rounds, each training the project (each `--steps-per-call` setting: `1,auto` measures
what several steps a call gain) and each reference once, whole epochs, in an order that rotates; every ratio is
the median of the per-round ratios, printed with its range. Also: test -ELBO, peak memory, the floor (the step's
layers and optimiser alone), Lightning's SimpleProfiler per step, and the whole process split into start-up,
training and closing. `--eval` times log p(x) with k = 5000 against the same decoder passes written by hand;
`--alternated` times the training step alone in one process (a diagnosis). The last line is machine-readable.
"""

import argparse
import csv
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
VAL_SIZE = 100  # held out to pick the best epoch; pytorch/examples trains on all 60,000
REFERENCES = ("naive", "best", *(["pythae"] if importlib.util.find_spec("pythae") else []))  # alternated with the project


def run_measured(cmd: list[str]) -> tuple[str, float, float, float]:
    """(output, peak resident MiB, wall seconds, start time) of one child process."""
    started, start = time.time(), time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}\n{out[-3000:]}")
    return out, usage.ru_maxrss / 1024, time.perf_counter() - start, started


def model_overrides(args, tmp: Path) -> list[str]:
    """The config overrides that pick the model and data, shared by the project and the references."""
    data = [f"paths.data_dir={args.data_dir}", "data.download=false", f"data.val_size={VAL_SIZE}"]
    if args.model == "resnet":
        if (Path(args.data_dir) / "cifar-10-batches-py").is_dir():
            data = ["data=cifar10", *data]
        else:
            data = ["data=folder", f"data.path={random_images(tmp / 'random', args.images)}", "data.image_size=32",
                    "data.channels=3", f"data.val_size={VAL_SIZE}", "data.test_size=500"]  # fmt: skip
        return ["model=resnet", "likelihood=bernoulli", "nll_samples=1", *data]  # log p(x): make bench-eval
    tiny = ["latent=2", "model.hidden=[8]"] if args.model == "tiny" else []
    nll = [f"nll_samples={args.nll_samples}"] if args.nll_samples else []  # the closing log p(x), for all alike
    return ["data=mnist", *data, *tiny, *nll]


def random_images(folder: Path, n: int) -> Path:
    """n random 32x32 colour PNGs in two class folders: CIFAR-10's shape where CIFAR-10 is absent."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        (folder / f"class{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"class{i % 2}" / f"{i}.png")
    return folder


def common(args, seed: int) -> list[str]:
    return [f"seed={seed}", f"trainer.accelerator={args.device}", f"trainer.precision={args.precision}",
            f"model.compile={str(args.compile).lower()}"]  # fmt: skip


def project(args, overrides: list[str], out_dir: Path, seed: int, steps_per_call: str) -> dict:
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), *overrides, *common(args, seed),
           f"trainer.max_epochs={args.epochs}", f"hydra.run.dir={out_dir}", f"steps_per_call={steps_per_call}"]  # fmt: skip
    _, peak_mib, wall, started = run_measured(cmd)
    with open(out_dir / "metrics.csv") as f:
        epoch_s = [float(r["train/epoch_time"]) for r in csv.DictReader(f) if r.get("train/epoch_time")]
    results = json.loads((out_dir / "results.json").read_text())
    first, last = epoch_lines(out_dir / "train.log")
    return {"epoch_s": epoch_s, "peak_mib": peak_mib, "neg_elbo": -results["test/elbo"], "wall_s": wall,
            "startup_s": first - started, "closing_s": started + wall - last}  # fmt: skip


def epoch_lines(log_file: Path) -> tuple[float, float]:
    """(when the first epoch started, when the last epoch line was written), from train.log's time stamps."""
    pattern = re.compile(r"^\[([\d-]+ [\d:,]+)\]\[vae\.console\]\[INFO\] - epoch .* ([\d.]+) s$")
    found = [(datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp(), float(m[2]))
             for m in map(pattern.match, log_file.read_text().splitlines()) if m]  # fmt: skip
    return found[0][0] - found[0][1], found[-1][0]


def reference(args, loop: str, overrides: list[str], seed: int) -> dict:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "references.py"), f"--loop={loop}", f"--epochs={args.epochs}",
           f"--seed={seed}", f"--device={args.device}", f"--precision={args.precision}",
           *(["--compile"] if args.compile else []), "--", *overrides, *common(args, seed)]  # fmt: skip
    out, peak_mib, wall, started = run_measured(cmd)
    result = json.loads(out.strip().splitlines()[-1])
    if "started" in result:
        result |= {"startup_s": result["started"] - started, "closing_s": started + wall - result["trained"]}
    return result | {"peak_mib": peak_mib, "wall_s": wall}


def profile(args, overrides: list[str], tmp: Path, steps_per_call: str, steps: int = 100) -> list[tuple[str, float]]:
    """Lightning's SimpleProfiler over `steps` training steps: (action, ms per step) of the per-step actions."""
    out_dir = tmp / "profile"
    extra = ["trainer.max_epochs=1", f"+trainer.limit_train_batches={steps}", "+trainer.limit_val_batches=1",
             "+trainer.limit_test_batches=1", "nll_samples=1", "callbacks.images.every_n_epochs=0",
             "+trainer.profiler._target_=lightning.pytorch.profilers.SimpleProfiler",
             f"+trainer.profiler.dirpath={out_dir}", "+trainer.profiler.filename=profile"]  # fmt: skip
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), *overrides, *common(args, args.seed),
           f"hydra.run.dir={out_dir}", f"steps_per_call={steps_per_call}", *extra]  # fmt: skip
    run_measured(cmd)
    table = [[c.strip() for c in line.strip().strip("|").split("|")]
             for line in (out_dir / "fit-profile.txt").read_text().splitlines()]  # fmt: skip
    table = [cells for cells in table if len(cells) == 5 and cells[2].isdigit()]
    steps = next(int(cells[2]) for cells in table if cells[0] == "run_training_batch")  # an epoch may be shorter
    rows = [(re.sub(r"\{.*\}", "", cells[0]), float(cells[3]) / steps * 1e3) for cells in table
            if int(cells[2]) >= steps and cells[0] != "Total"]  # fmt: skip
    return sorted(rows, key=lambda row: -row[1])


def median_of(runs: list[dict], key: str) -> float:
    values = [statistics.median(r[key]) if isinstance(r[key], list) else r[key] for r in runs if key in r]
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> str:
    """The median of `values` with their range: `1.07 (0.98-1.19)`."""
    return f"{statistics.median(values):.3f} ({min(values):.2f}-{max(values):.2f})"


def train_bench(args) -> None:
    """Whole training epochs, alternated: each round runs the project (each `--steps-per-call` setting) and each
    reference once, in its own process, in an order that rotates from round to round; the headline is the median
    of the per-round ratios, so the machine's drift between rounds cancels and its spread shows."""
    settings = args.steps_per_call.split(",")
    names = [f"project spc={s}" for s in settings] + list(REFERENCES)
    results: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        overrides = model_overrides(args, tmp)
        print("overrides: " + " ".join(overrides), flush=True)
        for repeat in range(args.repeats):
            seed = args.seed + repeat  # the same seed for all in a round; the -ELBO is a median over seeds
            order = names[repeat % len(names) :] + names[: repeat % len(names)]  # no one always runs first or last
            for name in order:
                if name.startswith("project"):
                    spc = name.split("=")[1]
                    run = project(args, overrides, tmp / f"run{repeat}-{spc}", seed, steps_per_call=spc)
                else:
                    run = reference(args, name, overrides, seed)
                results[name].append(run)
            print(f"round {repeat + 1}/{args.repeats} ({time.strftime('%H:%M:%S')}, load {os.getloadavg()[0]:.2f}): "
                  + "  ".join(f"{name} {statistics.median(r[-1]['epoch_s']):.3f}" for name, r in results.items())
                  + " s/epoch", flush=True)  # fmt: skip
        floor = reference(args, "floor", overrides, args.seed)  # what the hardware needs: a diagnosis, not a round
        steps = profile(args, overrides, tmp, settings[0])
    n_train = {"resnet": args.images - 600}.get(args.model, 60000 - VAL_SIZE)
    if args.model == "resnet" and "data=cifar10" in overrides:
        n_train = 50000 - VAL_SIZE
    batches = -(-n_train // 128)
    epoch = {name: [statistics.median(r["epoch_s"]) for r in runs] for name, runs in results.items()}
    head = names[0]

    def ratios(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(epoch[a], epoch[b])]

    print(f"\nwhole training epochs, {args.repeats} rounds of {args.epochs} epochs; each figure a median over rounds "
          f"(each round's own: the median of its epochs); ratios: the median of the per-round ratios (min-max)")
    print(f"{'':16s} {'s/epoch':>8s} {'steps/s':>8s} {'peak MiB':>9s} {'test -ELBO':>11s}")
    for name in names:
        print(f"{name:16s} {statistics.median(epoch[name]):8.3f} {batches / statistics.median(epoch[name]):8.1f} "
              f"{median_of(results[name], 'peak_mib'):9,.0f} {median_of(results[name], 'neg_elbo'):11.2f}")  # fmt: skip
    print(f"{'project / this':16s} " + " ".join(f"{name:>19s}" for name in REFERENCES))
    for project_run in names[: len(settings)]:
        print(f"{project_run:16s} " + " ".join(f"{spread(ratios(project_run, name)):>19s}" for name in REFERENCES))
    print(f"{'floor':16s} {statistics.median(floor['epoch_s']):8.3f}  (the layers {floor['layers_epoch_s']:.3f} s/epoch, "
          f"{floor['layers']} layer calls a step; fused Adam {floor['adam_epoch_s']:.3f})")  # fmt: skip
    for other in names[1 : len(settings)]:
        gain = [1 - r for r in ratios(other, head)]
        print(f"{other} against {head}: epochs {100 * statistics.median(gain):+.1f}% shorter "
              f"(per round {' '.join(f'{100 * g:+.1f}' for g in gain)}%)")  # fmt: skip
    per = "step" if settings[0] == "1" else f"call, steps_per_call={settings[0]}"
    print(f"profile of {head} (Lightning's SimpleProfiler, ms per {per}, nested actions overlap):")
    for action, ms in steps[:12]:
        print(f"  {ms:7.3f}  {action}")
    s = {name: {k: median_of(runs, k) for k in ("epoch_s", "startup_s", "closing_s", "wall_s")}
         for name, runs in results.items()}  # fmt: skip
    print(f"whole process, {args.epochs} epochs (s): start-up, training, closing (test, log p(x) k=nll_samples), all")
    for name in (head, "naive", "best"):
        f = s[name]
        print(f"  {name:16s} {f['startup_s']:6.2f} {f['wall_s'] - f['startup_s'] - f['closing_s']:7.2f} "
              f"{f['closing_s']:6.2f} {f['wall_s']:7.2f}")  # fmt: skip
    process_ratio = statistics.median(r["wall_s"] / n["wall_s"] for r, n in zip(results[head], results["naive"]))
    print(f"whole process {head} / naive: {process_ratio:.3f} (median of rounds)")
    figures = {"epoch_s": statistics.median(epoch[head]), "process_ratio": process_ratio,
               "step_ms": 1e3 * statistics.median(epoch[head]) / batches, "test_neg_elbo": median_of(results[head], "neg_elbo")}  # fmt: skip
    for name in names[1:]:
        key = name.replace("project spc=", "spc")
        figures |= {f"{key}_epoch_s": statistics.median(epoch[name]), f"ratio_{key}": statistics.median(ratios(head, name)),
                    f"ratio_{key}_min": min(ratios(head, name)), f"ratio_{key}_max": max(ratios(head, name))}  # fmt: skip
    for other in names[1 : len(settings)]:
        figures[f"ratio_{other.replace('project spc=', 'spc')}_naive"] = statistics.median(ratios(other, "naive"))
    print(" ".join(f"{key}={value:.4f}" for key, value in figures.items()))


def eval_bench(args) -> None:
    overrides = [*model_overrides(args, Path()), f"nll_samples={args.k}"]
    runs = {"project": [], "raw": []}
    for repeat in range(args.repeats):
        for name in ("raw", "project"):
            cmd = [sys.executable, str(ROOT / "benchmarks" / "references.py"), f"--loop=eval-{name}",
                   f"--images={args.images}", f"--seed={args.seed}", f"--device={args.device}", "--", *overrides,
                   *common(args, args.seed)]  # fmt: skip
            runs[name].append(json.loads(run_measured(cmd)[0].strip().splitlines()[-1]))
        print(f"repeat {repeat + 1}/{args.repeats}: " + "  ".join(
            f"{name} {r[-1]['seconds']:.2f} s" for name, r in runs.items()), flush=True)  # fmt: skip
    s = {name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items()}
    passes = runs["raw"][0]["decoder_passes"]
    for name in runs:
        print(f"{name:8s} {s[name]:8.2f} s  {passes / s[name]:12,.0f} decoder passes/s  "
              f"-log p(x) {statistics.median(r['nll'] for r in runs[name]):.2f} (untrained weights)")  # fmt: skip
    print(f"eval_s={s['project']:.3f} raw_eval_s={s['raw']:.3f} ratio_eval={s['project'] / s['raw']:.3f} "
          f"k={args.k} images={args.images}")


def alternated_bench(args) -> None:
    """The training step alone in one process, the four alternated: ratios per round, then their medians."""
    n = int(args.steps_per_call) if args.steps_per_call.isdigit() and int(args.steps_per_call) > 1 else 10
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "references.py"), "--loop=alternated", f"--repeats={args.repeats}",
               f"--steps-per-call={n}", f"--seed={args.seed}", f"--device={args.device}", f"--precision={args.precision}",
               "--", *model_overrides(args, Path(tmp)), *common(args, args.seed)]  # fmt: skip
        out = json.loads(run_measured(cmd)[0].strip().splitlines()[-1])
    times = out["step_ms"]
    for name, ms in times.items():
        print(f"{name:10s} {statistics.median(ms):7.3f} ms/step  rounds: {' '.join(f'{t:.2f}' for t in ms)}")
    ratios = {}
    for project in ("project", f"project_{n}"):
        for ref in ("naive", "best"):
            per_round = [a / b for a, b in zip(times[project], times[ref])]
            ratios[f"{project}_{ref}"] = statistics.median(per_round)
            print(f"{project} / {ref}: {ratios[f'{project}_{ref}']:.3f} (rounds: {' '.join(f'{r:.2f}' for r in per_round)})")
    print("aten operations a step: " + "  ".join(f"{name} {ops:.1f}" for name, ops in out["aten_ops_per_step"].items()))
    print(f"alternated steps_per_call={n} " + " ".join(f"ratio_{key}={value:.3f}" for key, value in ratios.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(SHARED) if SHARED.exists() else "data", help="torchvision root with MNIST/")
    parser.add_argument("--model", default="mlp", choices=["mlp", "tiny", "resnet"])
    parser.add_argument("--eval", action="store_true", help="time log p(x) (k = --k) instead of training")
    parser.add_argument("--alternated", action="store_true",
                        help="time the training step alone in one process, the project and the loops alternated")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--precision", default="32", help="32 or bf16-mixed")
    parser.add_argument("--compile", action="store_true", help="torch.compile the project and the naive loop too")
    parser.add_argument("--seed", type=int, default=0, help="the first repeat's seed; repeat r uses seed + r")
    parser.add_argument("--images", type=int, default=None, help="eval: test images (10000); resnet: random images (5600)")
    parser.add_argument("--steps-per-call", default="auto",
                        help="the project's steps_per_call (auto: 10); several, comma-separated (1,auto), each run every "
                             "round, the first as the headline, the others' gain over it printed")  # fmt: skip
    parser.add_argument("--nll-samples", type=int, default=None, help="k of the closing log p(x) (default: the config's)")
    parser.add_argument("--k", type=int, default=5000, help="eval: importance samples per image")
    args = parser.parse_args()
    args.data_dir = str(Path(args.data_dir).resolve())
    args.images = args.images or (5600 if args.model == "resnet" else 10000)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.device}, "
          f"precision {args.precision}, compile {args.compile}, model {args.model}, "
          f"steps_per_call {args.steps_per_call}", flush=True)  # fmt: skip
    eval_bench(args) if args.eval else alternated_bench(args) if args.alternated else train_bench(args)


if __name__ == "__main__":
    main()
