"""Are a conditional VAE's samples of label c the digit c? `python benchmarks/cvae_labels.py`

Trains the README's `family=cvae` (`src/train.py family=cvae`: the MLP 784-400-20, 50 epochs on the
embedded mnist5k) in a temporary run folder, or reads `--ckpt`, then decodes `--n` prior draws z ~ N(0, I)
with each label 0..9 and classifies them with an independent classifier: the project's feature net
(`vae.metrics.features`, a small CNN trained on the data's own labelled train digits, which never sees
the VAE). Prints the classifier's test accuracy, the share of samples of each label classified as that
label, and a last machine-readable line.

  python benchmarks/cvae_labels.py                                  # the README's command, seed 42
  python benchmarks/cvae_labels.py family.label_embedding=0 seed=0  # more overrides of src/train.py
  python benchmarks/cvae_labels.py --ckpt outputs/DATE/TIME/checkpoints/best.ckpt
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra.utils import instantiate

import vae
from vae.api import training_config
from vae.metrics.features import FeatureNet, feature_net

ROOT = Path(__file__).resolve().parents[1]


@torch.no_grad()
def label_shares(model, net: FeatureNet, n: int = 200, seed: int = 0) -> list[float]:
    """For each label c of a conditional model: the share of n samples of label c (decoder means of prior
    draws, `vae.sample(model, n, seed, y=c)`) that `net` classifies as c."""
    shares = []
    for c in range(model.model.classes):
        images = vae.sample(model, n, seed=seed + c, y=torch.full((n,), c))  # (n, C, H, W) in [0, 1]
        predicted = net(images.to(next(net.parameters()).device))[0].argmax(1).cpu()  # (n,)
        shares.append(float((predicted == c).float().mean()))
    return shares


def classifier(model, cache: Path, steps: int = 500) -> tuple[FeatureNet, float]:
    """(the feature net of the model's training data, its test accuracy), trained once and cached under `cache`."""
    cfg = training_config(model)
    data = instantiate(cfg.data)
    data.setup("fit")
    return feature_net(data.splits, dict(cfg.data), cache, model.device, steps=steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="more overrides of src/train.py family=cvae")
    parser.add_argument("--ckpt", help="a family=cvae checkpoint to judge instead of training one")
    parser.add_argument("--n", type=int, default=200, help="samples per label")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt, seconds = args.ckpt, None
        if ckpt is None:
            run = Path(tmp) / "run"
            cmd = [sys.executable, "src/train.py", "family=cvae", *args.overrides, f"hydra.run.dir={run}"]
            start = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            ckpt = str(run / "checkpoints" / "best.ckpt")
            print(f"trained: {' '.join(cmd[1:-1])} in {seconds:.0f} s")
        model = vae.load(ckpt, device="cpu")
        net, accuracy = classifier(model, Path(tmp))
        shares = label_shares(model, net, args.n)
    print(f"classifier (feature net) test accuracy: {accuracy:.3f}")
    print("label  " + "  ".join(f"{c:>4}" for c in range(len(shares))) + "  mean")
    print("share  " + "  ".join(f"{s:4.2f}" for s in shares) + f"  {sum(shares) / len(shares):4.2f}")
    figures = {"overrides": args.overrides, "ckpt": args.ckpt, "train_s": seconds, "classifier_accuracy": accuracy,
               "shares": shares, "mean": sum(shares) / len(shares)}  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
