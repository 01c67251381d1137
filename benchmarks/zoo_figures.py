"""Every objective of the zoo at one short, equal budget: `python benchmarks/zoo_figures.py --data-dir ROOT`

Part `mnist`: each objective trains the default MLP (784-400-16) on full MNIST, dynamically binarised,
for `--epochs` epochs at batch 128 and the same seed, then is judged on the 10,000 test digits: -log p(x)
with `--k` importance samples where the posterior has a density (not for deterministic encoders), the
ELBO, active units, and FID and precision/recall of 10,000 prior samples in the project's own feature
space (`vae.metrics.suite`); for the deterministic encoders, whose codes the prior does not describe,
also samples from a Gaussian mixture fitted to the training codes (`sampler=gmm`, `src/eval.py`,
Ghosh et al. 2020). Part `shapes`: the disentangling objectives on `data=shapes`
(`experiment=disentangle`, 10 epochs) over `--seeds`, scored by MIG, DCI and the FactorVAE score, the
mean and the spread (sample standard deviation) over seeds.

Each run's folder is kept under `--out`; a row whose results.json exists is read, not retrained, so an
interrupted sweep goes on where it stopped. Prints markdown tables. ROOT holds MNIST/raw as torchvision
writes it; the feature net is cached under ROOT/feature_nets.

  OMP_NUM_THREADS=1 python benchmarks/zoo_figures.py --data-dir ~/data --part mnist --epochs 5 --k 1000
  OMP_NUM_THREADS=1 python benchmarks/zoo_figures.py --data-dir ~/data --part shapes --seeds 0 1 2
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MNIST_ROWS = {  # row name -> overrides of src/train.py
    "vae": ["objective=elbo"],
    "beta_vae (beta 4)": ["objective=elbo", "beta.value=4"],
    "elbo, stl": ["objective=elbo", "objective.gradient=stl"],
    "beta_tcvae": ["objective=beta_tcvae"],
    "capacity": ["objective=capacity"],
    "dip_vae i": ["objective=dip_vae", "objective.type=i"],
    "dip_vae ii": ["objective=dip_vae", "objective.type=ii"],
    "factor_vae": ["objective=factor_vae"],
    "iwae (k 5)": ["objective=iwae", "objective.k=5"],
    "iwae (k 5), dreg": ["objective=iwae", "objective.k=5", "objective.gradient=dreg"],
    "miwae (m 2, k 4)": ["objective=miwae", "objective.m=2", "objective.k=4"],
    "piwae (m 2, k 4)": ["objective=piwae", "objective.m=2", "objective.k=4"],
    "ciwae (k 8)": ["objective=ciwae", "objective.k=8"],
    "wae (imq)": ["objective=wae"],
    "infovae": ["objective=infovae"],
    "swae": ["objective=swae"],
    "aae": ["objective=aae"],
    "ae": ["posterior=deterministic", "objective=ae"],
    "rae (l2)": ["posterior=deterministic", "objective=rae", "objective.regulariser=l2"],
    "rae (gp)": ["posterior=deterministic", "objective=rae", "objective.regulariser=gp"],
}

GMM_ROWS = ("ae", "rae (l2)", "rae (gp)")  # the rows also judged with samples of a Gaussian mixture

SHAPES_ROWS = {  # the disentangling objectives, then the plain ELBO beside them
    "beta_vae (beta 4)": ["objective=elbo", "beta.value=4"],
    "beta_tcvae (beta 6)": ["objective=beta_tcvae"],
    "factor_vae (gamma 10)": ["objective=factor_vae"],
    "dip_vae i": ["objective=dip_vae", "objective.type=i"],
    "capacity": ["objective=capacity"],
    "vae": ["objective=elbo"],
}


def train(folder: Path, overrides: list[str], log) -> dict:
    """results.json of a run of src/train.py in `folder` (trained now unless it is there already)."""
    results = folder / "results.json"
    if not results.is_file():
        start = time.perf_counter()
        with open(folder.with_suffix(".log"), "w") as out:
            cmd = [sys.executable, str(ROOT / "src" / "train.py"), *overrides, f"hydra.run.dir={folder}"]
            code = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT).returncode
        if code != 0:
            log(f"  {folder.name}: failed (rc {code}), see {folder.with_suffix('.log')}")
            return {}
        data = json.loads(results.read_text())
        data["seconds"] = time.perf_counter() - start
        results.write_text(json.dumps(data, indent=2))
    return json.loads(results.read_text())


def evaluate_gmm(folder: Path, data_dir: str) -> dict:
    """FID and precision/recall of samples from a Gaussian mixture fitted to the training codes."""
    out = folder / "gmm.json"
    if not out.is_file():
        cmd = [sys.executable, str(ROOT / "src" / "eval.py"), f"ckpt_path={folder}/checkpoints/last.ckpt",
               "sampler=gmm", "nll_samples=0", "metrics=[fid,precision_recall]", f"data_dir={data_dir}"]  # fmt: skip
        with open(folder.with_name(folder.name + "-gmm.log"), "w") as log:
            subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
        found = json.loads((folder / "results.json").read_text())  # eval adds its figures to the run's results
        out.write_text(json.dumps({k: v for k, v in found.items() if k.endswith("_gmm")}, indent=2))
    return json.loads(out.read_text())


def cell(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def mnist(args, log) -> None:
    common = ["data=mnist", "data.binarize=true", f"paths.data_dir={args.data_dir}", "latent=16",
              f"trainer.max_epochs={args.epochs}", f"nll_samples={args.k}", "metrics=[fid,precision_recall]",
              "callbacks=no_pictures", f"seed={args.seed}"]  # fmt: skip
    log(f"| objective | -log p(x), k = {args.k} | -ELBO | active units | FID prior | precision / recall prior "
        "| FID gmm | precision / recall gmm | train + eval s |")  # fmt: skip
    log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, overrides in MNIST_ROWS.items():
        if args.only and not any(part in name for part in args.only):
            continue
        folder = args.out / "mnist" / name.replace(" ", "_").replace("(", "").replace(")", "").replace(",", "")
        folder.parent.mkdir(parents=True, exist_ok=True)
        r = train(folder, common + overrides, log)
        if not r:
            continue
        g = evaluate_gmm(folder, args.data_dir) if name in GMM_ROWS else {}
        elbo = r.get("test/elbo")
        log(f"| {name} | {cell(r.get('test/nll'))} | {cell(None if elbo is None else -elbo)} | "
            f"{r.get('test/active_units', 'n/a')} | {cell(r.get('test/fid'))} | "
            f"{cell(r.get('test/precision'))} / {cell(r.get('test/recall'))} | {cell(g.get('test/fid_gmm'))} | "
            f"{cell(g.get('test/precision_gmm'))} / {cell(g.get('test/recall_gmm'))} | {r.get('seconds', 0):.0f} |")  # fmt: skip


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def shapes(args, log) -> None:
    keys = [
        "test/mig",
        "test/dci_disentanglement",
        "test/dci_completeness",
        "test/dci_informativeness",
        "test/factor_vae",
    ]
    rows = {
        name: overrides for name, overrides in SHAPES_ROWS.items() if not args.only or any(p in name for p in args.only)
    }
    found: dict[str, list[dict]] = {name: [] for name in rows}
    for seed in args.seeds:  # seed by seed, so that a sweep stopped early still has every objective
        for name, overrides in rows.items():
            folder = args.out / "shapes" / f"{name.split(' ')[0]}-seed{seed}"
            folder.parent.mkdir(parents=True, exist_ok=True)
            r = train(folder, ["experiment=disentangle", f"seed={seed}", "callbacks=no_pictures", *overrides], log)
            if r:
                found[name].append(r)
    log("| objective | MIG | DCI disentanglement | DCI completeness | DCI informativeness | FactorVAE score | seeds |")
    log("| --- | --- | --- | --- | --- | --- | --- |")
    for name, runs in found.items():
        cells = [spread([r[key] for r in runs if key in r]) for key in keys]
        log(f"| {name} | {' | '.join(cells)} | {len(runs)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="a torchvision root with MNIST (part mnist)")
    parser.add_argument("--part", choices=["mnist", "shapes", "both"], default="both")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--k", type=int, default=1000, help="importance samples of -log p(x)")
    parser.add_argument("--seed", type=int, default=42, help="the mnist part's seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the shapes part's seeds")
    parser.add_argument("--only", nargs="*", help="rows whose name contains one of these")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "zoo_figures")
    args = parser.parse_args()

    def log(line: str) -> None:
        print(line, flush=True)

    if args.part in ("mnist", "both"):
        mnist(args, log)
    if args.part in ("shapes", "both"):
        shapes(args, log)


if __name__ == "__main__":
    main()
