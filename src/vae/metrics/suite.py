"""`metrics=[mig,dci,factor_vae,fid,precision_recall]`: gather what each named metric needs from a trained
system and its data, compute it, and name the results `test/...` beside eval's and training's own.

Disentanglement metrics score the posterior means E[z|x] of up to `max_examples` random images of the
whole set (train, val and test: the factors' full grid, as in the literature), against the factor
labels only a data set with known factors has (data=shapes). Sample-quality metrics compare samples
(decoder means E[x|z], z from the prior or from a sampler fitted after training: vae.samplers) with the
test split, as many of each, in the feature space of the data set's own classifier (vae.metrics.features):
not Inception FIDs. `test/fid_reference` is the FID of as
many train images to the test split: what a perfect generator would score at this sample size.
"""

import numpy as np
import torch
from torch import Tensor

from vae.errors import ConfigError, require_extra
from vae.metrics.disentanglement import dci, factor_vae_score, mig
from vae.metrics.features import feature_net, features_of
from vae.metrics.sample_quality import frechet_distance, precision_recall
from vae.samplers import PriorSampler, Sampler

DISENTANGLEMENT = ("mig", "dci", "factor_vae")
SAMPLE_QUALITY = ("fid", "precision_recall")


def check_metrics(names, datamodule) -> list[str]:
    """The requested metric names, refused with one line where unknown or where the data lacks their labels."""
    names = list(names or [])
    for name in names:
        if name not in DISENTANGLEMENT + SAMPLE_QUALITY:
            raise ConfigError(f"metrics: {name} is unknown: choose from {', '.join(DISENTANGLEMENT + SAMPLE_QUALITY)}")
    if names and not datamodule.in_memory:
        raise ConfigError(f"metrics: {names[0]} needs one of the in-memory data sets (data=mnist, shapes, folder, ...), not data=dataset")
    wanted = [name for name in names if name in DISENTANGLEMENT]
    needs_sklearn = [name for name in wanted if name in ("mig", "dci")]
    if needs_sklearn:
        require_extra("metrics", "sklearn", f"metrics: {needs_sklearn[0]}")
    if wanted and not hasattr(datamodule, "factor_sizes"):
        raise ConfigError(
            f"metrics: {wanted[0]} needs data whose images come with the factors that made them: use data=shapes"
        )
    return names


@torch.no_grad()
def encode_set(system, splits: dict, max_examples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(posterior means (n, D), factor labels (n, K)) of up to `max_examples` random images of every split."""
    images = torch.cat([splits[name][0].cpu() for name in ("train", "val", "test")])
    labels = torch.cat([splits[name][1].cpu() for name in ("train", "val", "test")])
    chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:max_examples]
    codes = [system.encode(part.to(system.device).float() / 255).cpu() for part in images[chosen].split(500)]
    return torch.cat(codes).double().numpy(), labels[chosen].numpy()


@torch.no_grad()
def generate(sampler: Sampler, n: int, seed: int) -> Tensor:
    """n samples (n, C, H, W) in [0, 1]: the decoder's mean E[x|z] for z from the sampler (a fitted one, or the
    prior p(z)), a conditional family's classes in turn, on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    return torch.cat([sampler.sample(min(500, n - start), generator=generator).cpu() for start in range(0, n, 500)])


def judge(
    names, system, datamodule, data_config: dict, max_examples: int = 10000, seed: int = 0, sampler: Sampler | None = None
) -> dict:
    """The named metrics of a trained system as {"test/mig": ..., "test/fid": ...}; `datamodule` is set up.

    `sampler`: where the sample-quality metrics draw codes from, fitted already (default: the prior p(z)); a
    fitted one's figures carry its name (`test/fid_gmm`, `test/precision_gmm`, ...), the prior's keep theirs."""
    names = check_metrics(names, datamodule)
    if not names:
        return {}
    splits, results = datamodule.splits, {}
    if any(name in DISENTANGLEMENT for name in names):
        codes, factors = encode_set(system, splits, max_examples, seed)
        if "mig" in names:
            results["test/mig"] = mig(codes, factors)
        if "dci" in names:
            results |= {f"test/{key}": value for key, value in dci(codes, factors, seed=seed).items()}
        if "factor_vae" in names:
            results["test/factor_vae"] = factor_vae_score(codes, factors, seed=seed)
    if any(name in SAMPLE_QUALITY for name in names):
        net, accuracy = feature_net(splits, data_config, datamodule.root, system.device)
        test_images, train_images = splits["test"][0], splits["train"][0]
        n = min(len(test_images), len(train_images))
        real = features_of(net, test_images[:n])
        sampler = sampler or PriorSampler().fit(system.model, ())
        fake = features_of(net, generate(sampler, n, seed).to(system.device))
        results["test/feature_net_accuracy"] = accuracy
        if "fid" in names:
            results[f"test/fid{sampler.suffix}"] = frechet_distance(real, fake)
            results["test/fid_reference"] = frechet_distance(real, features_of(net, train_images[:n]))
        if "precision_recall" in names:
            results |= {f"test/{key}{sampler.suffix}": value for key, value in precision_recall(real, fake).items()}
    return results
