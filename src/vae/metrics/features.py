"""The feature net behind the sample-quality metrics: a small CNN classifier trained on a data set's own train split.

Inception v3 needs weights from the internet and was trained on photographs; instead, a few conv
layers learn to predict this data set's labels (the digit; every factor of data=shapes), once, and
are cached beside the data, keyed by the data config. Its penultimate layer is the feature space
of `vae.metrics.sample_quality`; its test accuracy says how much that space knows about the data.
"""

import hashlib
import json
import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from vae.files import atomic_write

log = logging.getLogger(__name__)

FEATURES = 128


class FeatureNet(nn.Module):
    """Images pooled to 32x32, three stride-2 convolutions with batch norm, a 128-wide feature layer, one linear head per label column."""

    def __init__(self, channels: int, classes: list[int]):
        super().__init__()
        self.features = nn.Sequential(
            nn.AdaptiveAvgPool2d(32),  # (B, C, 32, 32): 64x64 shapes averaged down, 28x28 digits spread out
            nn.Conv2d(channels, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),  # (B, 32, 16, 16)
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),  # (B, 64, 8, 8)
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),  # (B, 64, 4, 4)
            nn.Flatten(), nn.Linear(64 * 4 * 4, FEATURES), nn.ReLU(),  # (B, 128)
        )  # fmt: skip
        self.heads = nn.ModuleList(nn.Linear(FEATURES, n) for n in classes)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x (B, C, H, W) in [0, 1] -> logits (B, classes[k]) for each label column k."""
        h = self.features(x)
        return [head(h) for head in self.heads]


def as_columns(labels: Tensor) -> Tensor:
    """Labels (N,) or factor labels (N, K) as (N, K) int64."""
    return (labels.view(-1, 1) if labels.ndim == 1 else labels).long()


@torch.no_grad()
def features_of(net: FeatureNet, images: Tensor, batch_size: int = 500) -> Tensor:
    """The 128 features of each image. images: (N, C, H, W) uint8 or float in [0, 1] -> (N, 128) float32"""
    net.eval()
    device = next(net.parameters()).device
    out = []
    for part in images.split(batch_size):
        x = part.to(device).float()
        out.append(net.features(x / 255 if part.dtype == torch.uint8 else x))
    return torch.cat(out)


@torch.no_grad()
def accuracy(net: FeatureNet, images: Tensor, labels: Tensor) -> float:
    """The share of labels predicted right, averaged over the label columns."""
    net.eval()
    device = next(net.parameters()).device
    labels = as_columns(labels)
    right = torch.zeros(labels.shape[1])
    for x, y in zip(images.split(500), labels.split(500)):
        logits = net(x.to(device).float() / 255)
        right += torch.stack([(out.argmax(1).cpu() == y[:, k]).sum() for k, out in enumerate(logits)]).float()
    return float((right / len(labels)).mean())


def fit(images: Tensor, labels: Tensor, steps: int, seed: int, device: torch.device) -> FeatureNet:
    """Train for `steps` batches of 128 with Adam (lr 1e-3), minimising the sum of the heads' cross-entropies."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    labels = as_columns(labels)
    net = FeatureNet(images.shape[1], (labels.max(0).values + 1).tolist()).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    batches = []
    for _ in range(steps):
        if not batches:  # a new epoch
            batches = list(torch.randperm(len(images), generator=generator).split(128))
        idx = batches.pop()
        x, y = images[idx].to(device).float() / 255, labels[idx].to(device)
        loss = sum(nn.functional.cross_entropy(out, y[:, k]) for k, out in enumerate(net(x)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


def cache_path(data_config: dict, root: str | Path) -> Path:
    """Where the feature net of this data set is cached: keyed by what decides the images and the split."""
    ignored = {"batch_size", "seed", "root", "download", "_target_"}
    key = json.dumps({k: v for k, v in sorted(data_config.items()) if k not in ignored}, sort_keys=True, default=str)
    name = f"{data_config.get('source', Path(str(data_config.get('_target_', 'data'))).suffix.lstrip('.'))}"
    return Path(root) / "feature_nets" / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.pt"


def feature_net(
    splits: dict, data_config: dict, root: str | Path, device: torch.device, steps: int = 500
) -> tuple[FeatureNet, float]:
    """(the feature net of this data set, its test accuracy): read from the cache, else trained on the train
    split (`steps` batches, at most 20 epochs; a minute or less on a CPU), scored on the test split and cached. splits: name -> (images, labels)."""
    path = cache_path(data_config, root)
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        net = FeatureNet(saved["channels"], saved["classes"])
        net.load_state_dict(saved["state_dict"])
        return net.to(device).eval(), saved["accuracy"]
    images, labels = splits["train"]
    log.info("Training the feature net of the sample-quality metrics for %d steps on %d train images (cached in %s)",
             steps, len(images), path)  # fmt: skip
    steps = min(steps, 20 * -(-len(images) // 128))  # at most 20 epochs of a small set
    net = fit(images.cpu(), labels.cpu(), steps, seed=0, device=device)
    test_accuracy = accuracy(net, *splits["test"])
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = [head.out_features for head in net.heads]
    state = {k: v.cpu() for k, v in net.state_dict().items()}
    saved = {"state_dict": state, "channels": images.shape[1], "classes": classes, "accuracy": test_accuracy}
    log.info("Feature net test accuracy: %.3f (the mean over label columns)", test_accuracy)
    with atomic_write(path, "wb") as file:
        torch.save(saved, file)
    return net, test_accuracy
