"""What the framework costs over a hand-written loop: `make bench` (or `make bench EPOCHS=3`).

Trains the pytorch/examples VAE (MLP 784-400-20, batch 128, Adam 1e-3, Bernoulli loss on
grey MNIST) two ways on the same tensors, alternating, several times:
  project: `src/train.py data=mnist ...`, the real entry point, in a subprocess;
  floor:   a minimal raw PyTorch loop, in a subprocess of this script.
Prints for both the median seconds per training epoch, samples per second, peak resident
memory and the test -ELBO; then the ratio; last, one machine-readable line.
"""

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
VAL_SIZE = 100  # held out of the 60,000 to pick the best epoch; pytorch/examples trains on all of them


def run_measured(cmd: list[str]) -> tuple[str, float, float]:
    """(stdout, peak resident MiB, wall seconds) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"failed ({child.returncode}): {' '.join(cmd)}\n{out[-3000:]}")
    return out, usage.ru_maxrss / 1024, time.perf_counter() - start


def project(args, out_dir: Path, seed: int) -> dict:
    overrides = [
        "data=mnist", f"paths.data_dir={args.data_dir}", "data.download=false", f"data.val_size={VAL_SIZE}",
        f"trainer.max_epochs={args.epochs}", f"trainer.accelerator={args.device}", f"trainer.precision={args.precision}",
        f"model.compile={str(args.compile).lower()}", f"seed={seed}", f"hydra.run.dir={out_dir}",
    ]  # fmt: skip
    _, peak_mib, wall = run_measured([sys.executable, str(ROOT / "src" / "train.py"), *overrides])
    with open(out_dir / "metrics.csv") as f:
        epoch_s = [float(r["train/epoch_time"]) for r in csv.DictReader(f) if r.get("train/epoch_time")]
    results = json.loads((out_dir / "results.json").read_text())
    return {"epoch_s": epoch_s, "peak_mib": peak_mib, "neg_elbo": -results["test/elbo"], "wall_s": wall}


def floor(seed: int) -> dict:
    out, peak_mib, wall = run_measured([sys.executable, __file__, "--floor", *sys.argv[1:], "--seed", str(seed)])
    return {**json.loads(out.strip().splitlines()[-1]), "peak_mib": peak_mib, "wall_s": wall}


def floor_loop(args) -> None:
    """The raw loop: same split tensors as the project, same model, same loss; prints one JSON line."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    sys.path.insert(0, str(ROOT / "src"))
    from vae.data import ImageData

    data = ImageData(source="mnist", root=args.data_dir, download=False, val_size=VAL_SIZE)
    data.setup()
    device = torch.device(args.device if args.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu")
    train_x, test_x = (data.splits[s][0].to(device) for s in ("train", "test"))
    torch.manual_seed(args.seed)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 40)).to(device)
    decoder = nn.Sequential(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 784)).to(device)
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16-mixed")

    def neg_elbo(x):  # (B, 1, 28, 28) -> (B,)
        with autocast:
            mu, logvar = encoder(x).float().chunk(2, dim=1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            logits = decoder(z).float()
        rec = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(1)
        return rec + 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)

    step = torch.compile(neg_elbo) if args.compile else neg_elbo
    epoch_s = []
    for epoch in range(args.epochs):
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(args.seed + epoch)  # the project's order too (EpochPermutation)
        order = torch.randperm(len(train_x), generator=generator).to(device)
        for i in range(0, len(order), 128):
            loss = step(train_x[order[i : i + 128]].float().div_(255)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        epoch_s.append(time.perf_counter() - start)
    with torch.no_grad():
        test = torch.cat([neg_elbo(test_x[i : i + 128].float().div_(255)) for i in range(0, len(test_x), 128)])
    print(json.dumps({"epoch_s": epoch_s, "neg_elbo": test.mean().item()}))


def startup_seconds(*args: str) -> float:
    return run_measured([sys.executable, str(ROOT / "src" / "train.py"), *args])[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(SHARED) if SHARED.exists() else "data", help="torchvision root with MNIST/")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--precision", default="32", help="32 or bf16-mixed")
    parser.add_argument("--compile", action="store_true", help="torch.compile both")
    parser.add_argument("--seed", type=int, default=0, help="the first repeat's seed; repeat r uses seed + r")
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.data_dir = str(Path(args.data_dir).resolve())
    if args.floor:
        return floor_loop(args)
    if args.device == "cpu":
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.device}")
    results = {"project": [], "floor": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):  # alternate, so drift in the machine's speed hits both
            seed = args.seed + repeat  # both on the same seed; the -ELBO is a median over seeds
            results["floor"].append(floor(seed))
            results["project"].append(project(args, Path(tmp) / f"run{repeat}", seed))
            print(f"repeat {repeat + 1}/{args.repeats}: " + "  ".join(
                f"{name} {statistics.median(r[-1]['epoch_s']):.3f} s/epoch" for name, r in results.items()), flush=True)  # fmt: skip
    n_train = 60000 - VAL_SIZE
    summary = {}
    for name, runs in results.items():
        epoch = statistics.median(statistics.median(r["epoch_s"]) for r in runs)
        summary[name] = {
            "epoch_s": epoch,
            "samples_per_s": n_train / epoch,
            "peak_mib": statistics.median(r["peak_mib"] for r in runs),
            "neg_elbo": statistics.median(r["neg_elbo"] for r in runs),
        }
        s = summary[name]
        print(f"{name:8s} {s['epoch_s']:.3f} s/epoch  {s['samples_per_s']:,.0f} samples/s  "
              f"peak {s['peak_mib']:,.0f} MiB  test -ELBO {s['neg_elbo']:.2f} nats")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        _, default_mib, _ = run_measured([sys.executable, str(ROOT / "src" / "train.py"), f"hydra.run.dir={tmp}"])
    print(f"default run (mnist5k, all epochs): peak {default_mib:,.0f} MiB resident")
    print(f"start-up: --help {startup_seconds('--help'):.2f} s, --cfg job {startup_seconds('--cfg', 'job'):.2f} s")
    ratio = summary["project"]["epoch_s"] / summary["floor"]["epoch_s"]
    print(f"ratio project/floor: {ratio:.3f}")
    print(f"project_epoch_s={summary['project']['epoch_s']:.4f} floor_epoch_s={summary['floor']['epoch_s']:.4f} "
          f"ratio={ratio:.3f} test_neg_elbo={summary['project']['neg_elbo']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
