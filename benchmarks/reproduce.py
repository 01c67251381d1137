"""Reproduce Burda et al. 2016, Table 1 (test -log p(x) in nats on MNIST, k = 5000): `make reproduce`.

Each cell (VAE or IWAE, one or two stochastic layers, k = 1, 5 or 50 samples in training) is trained
through the real entry point (`src/train.py experiment=burda2016 ...`) and its final weights are
evaluated by `src/eval.py` with `--eval-k` importance samples on the whole test split. The table
(paper, ours, difference, epochs, wall time, device) is printed and written as markdown and CSV.

  python benchmarks/reproduce.py --cells vae1-k1,iwae1-k5 --budget 0.1   # a tenth of the schedule
  python benchmarks/reproduce.py                                         # every cell, the full schedule
  python benchmarks/reproduce.py --cells recipe     # the framework's own recipe (experiment=beyond_burda)
  python benchmarks/reproduce.py --cells ladder     # a five-layer Ladder VAE (experiment=ladder_burda) against LVAE's 81.74
"""

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from vae.schedules import burda2016_stages

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
PAPER = {  # Burda et al. 2016, Table 1: test NLL in nats, k = 5000
    "vae1-k1": 86.76, "vae1-k5": 86.47, "vae1-k50": 86.35,
    "iwae1-k1": 86.76, "iwae1-k5": 85.54, "iwae1-k50": 84.78,
    "vae2-k1": 85.33, "vae2-k5": 85.01, "vae2-k50": 84.78,
    "iwae2-k1": 85.33, "iwae2-k5": 83.89, "iwae2-k50": 82.90,
}  # fmt: skip
RECIPE = "recipe"  # the framework's own (experiment=beyond_burda), compared with the table's best cell
PRESETS = {  # cells that are a preset of their own: (its overrides, the figure it is compared with)
    RECIPE: (["experiment=beyond_burda"], min(PAPER.values())),
    "ladder": (["experiment=ladder_burda"], 81.74),  # Sønderby et al. 2016, Table 1: a five-layer ladder, MNIST
}


def cell_overrides(cell: str, budget: float = 1.0) -> list[str]:
    """vae1-k5 -> the preset with the family (hvae for two layers), the objective, its k and the budget.
    `recipe` -> experiment=beyond_burda, `ladder` -> experiment=ladder_burda: presets whose own schedule the
    budget does not scale."""
    if cell in PRESETS:
        return PRESETS[cell][0]
    found = re.fullmatch(r"(vae|iwae)([12])-k(\d+)", cell)
    if not found:
        raise SystemExit(f"error: cell {cell} is unknown: use names like vae1-k1 or iwae2-k50 ({', '.join([*PAPER, *PRESETS])})")
    objective, layers, k = found.groups()
    family = "hvae" if layers == "2" else "vae"
    objective = "elbo" if objective == "vae" else "iwae"
    return ["experiment=burda2016", f"family={family}", f"objective={objective}", f"objective.k={k}", f"budget={budget}"]


def run(cmd: list[str], log: Path, threads: int) -> float:
    """Run one command with its output in `log`; its wall seconds. Exits on failure."""
    start = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    with open(log, "a") as out:
        code = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0:
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}; see {log}")
    return time.perf_counter() - start


def reproduce(cell: str, args, threads: int) -> dict:
    out = args.out / cell
    out.mkdir(parents=True, exist_ok=True)
    train = [
        sys.executable, "src/train.py", *cell_overrides(cell, args.budget),
        *([f"data.batch_size={args.batch_size}"] if args.batch_size else []), f"paths.data_dir={args.data_dir}", f"trainer.accelerator={args.device}",
        f"seed={args.seed}", "nll_samples=1", f"hydra.run.dir={out / 'run'}", *args.overrides,
    ]  # fmt: skip
    train_s = run(train, out / "log.txt", threads)
    final = out / "run" / "checkpoints" / "last.ckpt"  # the final weights, as the paper reports
    evaluate = [sys.executable, "src/eval.py", f"ckpt_path={final}", f"nll_samples={args.eval_k}", f"device={args.device}"]
    eval_s = run(evaluate, out / "log.txt", threads)
    results = json.loads((out / "run" / "results.json").read_text())
    config = yaml.safe_load((out / "run" / ".hydra" / "config.yaml").read_text())
    epochs = config["trainer"]["max_epochs"]  # or the preset's ${burda2016_epochs:${budget}}, unresolved
    epochs = epochs if isinstance(epochs, int) else sum(burda2016_stages(args.budget))
    batch_size = config["data"]["batch_size"]
    ours, paper = results["test/nll"], PRESETS[cell][1] if cell in PRESETS else PAPER.get(cell)
    return {
        "cell": cell, "paper": paper, "ours": round(ours, 2), "difference": None if paper is None else round(ours - paper, 2),
        "eval_k": results["test/nll_samples"], "epochs": epochs, "batch_size": batch_size,
        "train_min": round(train_s / 60, 1), "eval_min": round(eval_s / 60, 1), "device": device_name(args.device),
    }  # fmt: skip


def device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name()
    return f"CPU ({os.cpu_count()} cores)"


def write_table(rows: list[dict], out: Path) -> str:
    with open(out / "table.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
    lines += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows]
    table = "\n".join(lines) + "\n"
    (out / "table.md").write_text(table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", default=",".join(PAPER), help="comma-separated, e.g. vae1-k1,iwae2-k5,recipe")
    parser.add_argument("--budget", type=float, default=1.0, help="fraction of the 3,280-epoch schedule")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the preset's (the paper's 20; the recipe's 128)")
    parser.add_argument("--eval-k", type=int, default=5000, help="importance samples for the test log p(x)")
    parser.add_argument("--jobs", type=int, default=1, help="cells trained at once (threads are shared out)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--data-dir", default=str(SHARED), help="a torchvision root holding MNIST")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "reproduce" / time.strftime("%Y-%m-%d_%H-%M-%S"))
    parser.add_argument("overrides", nargs="*", help="more train.py overrides, e.g. trainer.max_epochs=1 (tests)")
    args = parser.parse_args()
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    for cell in cells:
        cell_overrides(cell)  # refuse an unknown cell before anything runs
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda cell: reproduce(cell, args, threads), cells))
    print(write_table(rows, args.out), end="")
    print(f"written: {args.out / 'table.md'}, {args.out / 'table.csv'}")


if __name__ == "__main__":
    main()
