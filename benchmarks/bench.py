"""What the framework costs over hand-written loops: `make bench` (`EPOCHS=3` to shorten), `make bench-overhead`,
`make bench-resnet`, `make bench-eval`.

Trains one model through `src/train.py` (the real entry point, in a subprocess) and through three
references from `references.py`, each in its own process, alternating, on the same tensors, seeds and
batch order: the naive raw loop (pytorch/examples: default Adam, eager), the best raw loop (fused Adam,
compiled loss) and the floor (the step's layers and the optimiser update timed alone). Models:
  mlp:    the pytorch/examples VAE (784-400-20, batch 128, Adam 1e-3, Bernoulli) on full MNIST;
  tiny:   latent 2, hidden 8: almost no arithmetic, so the time per step is the host's overhead;
  resnet: model=resnet on 32x32 colour images (CIFAR-10 when present, else random images of its shape).
Prints the median seconds per epoch of each, the ratios, the test -ELBO, the whole process split into
start-up, training and closing (test and log p(x)), and a profile of the project's step. `--eval` times
log p(x) with k = 5000 on the test digits against the same decoder passes written by hand.
The last line is machine-readable.
"""

import argparse
import csv
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
REFERENCES = ("naive", "best", "floor")


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
    return ["data=mnist", *data, *tiny]


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


def project(args, overrides: list[str], out_dir: Path, seed: int, extra: list[str] = ()) -> dict:
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), *overrides, *common(args, seed),
           f"trainer.max_epochs={args.epochs}", f"hydra.run.dir={out_dir}", f"steps_per_call={args.steps_per_call}",
           *extra]  # fmt: skip
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


def profile(args, overrides: list[str], tmp: Path, steps: int = 100) -> list[tuple[str, float]]:
    """Lightning's SimpleProfiler over `steps` training steps: (action, ms per step) of the per-step actions."""
    out_dir = tmp / "profile"
    extra = ["trainer.max_epochs=1", f"+trainer.limit_train_batches={steps}", "+trainer.limit_val_batches=1",
             "+trainer.limit_test_batches=1", "nll_samples=1", "callbacks.images.every_n_epochs=0",
             "+trainer.profiler._target_=lightning.pytorch.profilers.SimpleProfiler",
             f"+trainer.profiler.dirpath={out_dir}", "+trainer.profiler.filename=profile"]  # fmt: skip
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), *overrides, *common(args, args.seed),
           f"hydra.run.dir={out_dir}", f"steps_per_call={args.steps_per_call}", *extra]  # fmt: skip
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


def train_bench(args) -> None:
    results = {name: [] for name in ("project", *REFERENCES)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        overrides = model_overrides(args, tmp)
        print("overrides: " + " ".join(overrides), flush=True)
        for repeat in range(args.repeats):  # alternate, so drift in the machine's speed hits all of them
            seed = args.seed + repeat  # the same seed for all; the -ELBO is a median over seeds
            for loop in REFERENCES:
                results[loop].append(reference(args, loop, overrides, seed))
            results["project"].append(project(args, overrides, tmp / f"run{repeat}", seed))
            print(f"repeat {repeat + 1}/{args.repeats}: " + "  ".join(
                f"{name} {statistics.median(r[-1]['epoch_s']):.3f}" for name, r in results.items()) + " s/epoch",
                flush=True)  # fmt: skip
        steps = profile(args, overrides, tmp)
    n_train = {"resnet": args.images - 600}.get(args.model, 60000 - VAL_SIZE)
    if args.model == "resnet" and "data=cifar10" in overrides:
        n_train = 50000 - VAL_SIZE
    s = {name: {k: median_of(runs, k) for k in ("epoch_s", "peak_mib", "neg_elbo", "startup_s", "closing_s", "wall_s")}
         for name, runs in results.items()}  # fmt: skip
    print(f"\n{'':8s} {'s/epoch':>8s} {'samples/s':>10s} {'steps/s':>8s} {'peak MiB':>9s} {'test -ELBO':>11s}")
    batches = -(-n_train // 128)
    for name, f in s.items():
        print(f"{name:8s} {f['epoch_s']:8.3f} {n_train / f['epoch_s']:10,.0f} {batches / f['epoch_s']:8.1f} "
              f"{f['peak_mib']:9,.0f} {f['neg_elbo']:11.2f}")  # fmt: skip
    ratios = {f"ratio_{name}": s["project"]["epoch_s"] / s[name]["epoch_s"] for name in REFERENCES}
    print("project / " + ", ".join(f"{name} {ratios[f'ratio_{name}']:.3f}" for name in REFERENCES))
    floor = results["floor"][-1]
    print(f"floor: the layers {floor['layers_epoch_s']:.3f} s/epoch ({floor['layers']} layer calls a step), "
          f"fused Adam {floor['adam_epoch_s']:.3f} s/epoch")  # fmt: skip
    print(f"where the project's step goes ({1e3 * s['project']['epoch_s'] / batches:.2f} ms): floor "
          f"{1e3 * s['floor']['epoch_s'] / batches:.2f}, best loop's other ops "
          f"{1e3 * (s['best']['epoch_s'] - s['floor']['epoch_s']) / batches:.2f}, the framework and the project's "
          f"extra ops {1e3 * (s['project']['epoch_s'] - s['best']['epoch_s']) / batches:.2f} ms")  # fmt: skip
    per = "step" if args.steps_per_call == "1" else f"call, steps_per_call={args.steps_per_call}"
    print(f"profile of the project (Lightning's SimpleProfiler, ms per {per}, nested actions overlap):")
    for action, ms in steps[:12]:
        print(f"  {ms:7.3f}  {action}")
    print(f"whole process, {args.epochs} epochs (s): start-up, training, closing (test, log p(x) k=nll_samples), all")
    for name in ("project", "naive", "best"):
        f = s[name]
        print(f"  {name:8s} {f['startup_s']:6.2f} {f['wall_s'] - f['startup_s'] - f['closing_s']:7.2f} "
              f"{f['closing_s']:6.2f} {f['wall_s']:7.2f}")  # fmt: skip
    process_ratio = s["project"]["wall_s"] / s["naive"]["wall_s"]
    answer = {flag: run_measured([sys.executable, str(ROOT / "src" / "train.py"), *flag.split()])[2]
              for flag in ("--help", "--cfg job")}  # fmt: skip
    print("command line without a run: " + ", ".join(f"{flag} {t:.2f} s" for flag, t in answer.items()))
    print(f"whole process project / naive: {process_ratio:.3f}")
    print(f"project_epoch_s={s['project']['epoch_s']:.4f} floor_epoch_s={s['floor']['epoch_s']:.4f} "
          f"ratio={ratios['ratio_floor']:.3f} naive_epoch_s={s['naive']['epoch_s']:.4f} "
          f"best_epoch_s={s['best']['epoch_s']:.4f} ratio_naive={ratios['ratio_naive']:.3f} "
          f"ratio_best={ratios['ratio_best']:.3f} process_ratio={process_ratio:.3f} "
          f"step_ms={1e3 * s['project']['epoch_s'] / batches:.3f} naive_step_ms={1e3 * s['naive']['epoch_s'] / batches:.3f} "
          f"test_neg_elbo={s['project']['neg_elbo']:.2f} naive_test_neg_elbo={s['naive']['neg_elbo']:.2f}")  # fmt: skip


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
    parser.add_argument("--steps-per-call", default="auto", help="the project's steps_per_call (auto: 10)")
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
