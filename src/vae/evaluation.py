"""Judge a trained model of any family on its test split: the ELBO and its terms, log p(x), bits/dim, and the
family's own figures (`Family.diagnostics`: active units, the KL of each layer or dimension, codebook usage).

log p(x) is the importance-weighted estimate of Burda et al. 2016 (`vae.metrics.likelihood`). Everything is
in nats per example and float32; `evaluate_checkpoint` is what `src/eval.py` runs. `nll_samples=0`
skips log p(x) (and bits/dim): the results then say so in `nll_skipped`.
"""

import logging
from collections.abc import Iterable

import torch
from hydra.utils import instantiate

from vae.console import Progress
from vae.data import split_batches
from vae.errors import ConfigError, check_int
from vae.loading import load_for_command
from vae.metrics.likelihood import bits_per_dim, importance_weighted_log_likelihood
from vae.metrics.suite import SAMPLE_QUALITY, check_metrics, judge
from vae.objectives.elbo import elbo_terms
from vae.samplers import FittedSampler, PriorSampler, Sampler, fitted_sampler
from vae.table import format_table

log = logging.getLogger(__name__)


SKIPPED = "nll_samples=0: log p(x) and bits/dim were not estimated"
LOG_PX = ("nll", "bpd", "nll_samples", "nll_skipped")  # the figures that depend on k


@torch.no_grad()
def evaluate(
    model, batches: Iterable, nll_samples: int, chunk_size: int | None = None, progress: Progress | None = None
) -> dict:
    """ELBO, its terms, the k-sample log p(x), bits/dim, active units and KL per dimension over `batches`.

    model: a family (`vae.families.base.Family`); batches: tensors x (B, C, H, W) in [0, 1] on the model's
    device, or (x, y) pairs with their labels (a conditional family then gives log p(x|y)). Returns nats per
    example (`nll` = -log p(x)), averaged over all examples, and the family's own figures (`diagnostics`:
    active units, the KL and active units of each layer, codebook perplexity and dead codes, ...). A figure
    the family has no meaning for is left out and named in `not_applicable` with the reason. `nll_samples=0`
    leaves out `nll` and `bpd` and says so in `nll_skipped`; `progress` counts the images whose log p(x) is done.
    """
    check_int("nll_samples", nll_samples, 0)
    sums: dict[str, float] = {"elbo": 0.0, "rec": 0.0, "kl": 0.0, "nll": 0.0}
    tally, count, num_dims = model.diagnostics(), 0, 0
    estimate = nll_samples > 0 and "nll" not in model.not_applicable  # a figure left out is not estimated either
    for batch in batches:
        x, y = batch if isinstance(batch, (tuple, list)) else (batch, None)
        draw = model.draw(x, y)
        terms = elbo_terms(draw)  # a one-sample ELBO, as in training
        figures = [("elbo", terms["elbo"]), ("rec", terms["rec"]), ("kl", terms["kl"])]
        if estimate:
            figures.append(("nll", -importance_weighted_log_likelihood(model, x, nll_samples, chunk_size, y, progress)))
        for name, value in figures:
            sums[name] += float(value.sum())
        tally.update(x, y, draw)
        count, num_dims = count + len(x), x[0].numel()
    if count == 0:
        raise ConfigError("the test split is empty: give data.test_size >= 1")
    metrics: dict = {name: total / count for name, total in sums.items()}
    if estimate:
        metrics["bpd"] = float(bits_per_dim(torch.tensor(-metrics["nll"]), num_dims))
    else:
        del metrics["nll"]
    metrics |= tally.result()
    metrics["nll_samples"] = nll_samples
    if not nll_samples:
        metrics["nll_skipped"] = SKIPPED
    if model.classes and nll_samples:
        metrics["nll_given"] = "y: -log p(x|y), each test image with its label"
    not_applicable = model.not_applicable
    metrics = {name: value for name, value in metrics.items() if name not in not_applicable}
    if not_applicable:
        metrics["not_applicable"] = "; ".join(f"{name}: {why}" for name, why in not_applicable.items())
    return metrics


def evaluate_test_split(
    system, datamodule, nll_samples: int, chunk_size: int | None = None, max_batches: int | None = None
) -> dict:
    """`evaluate` on the test split, as `test/...` metrics, in eval mode (batch norm: the running statistics).

    The progress of log p(x) (images done of all, the rate, the time left) is a bar on a terminal and a log
    line every 30 s, so a long estimate is never silent.
    """
    system.eval()
    batches = split_batches(datamodule, "test", system.device, max_batches)
    images = datamodule.split_size("test")
    if max_batches is not None:
        images = min(images, max_batches * datamodule.batch_size)
    with Progress(f"log p(x), k={nll_samples}", images if nll_samples else 0, unit="images") as progress:
        metrics = evaluate(system.model, batches, nll_samples, chunk_size, progress)
    return {f"test/{name}": value for name, value in metrics.items()}


def merge_results(kept: dict, new: dict) -> dict:
    """`new` results over `kept` ones (results.json), except that a log p(x) from more importance samples stays:
    an evaluation with a smaller k (or none, `nll_samples=0`) never replaces the figures of a larger one."""
    kept_k, new_k = kept.get("test/nll_samples", 0), new.get("test/nll_samples", 0)
    larger_kept = isinstance(kept_k, int) and kept_k > new_k and "test/nll" in kept
    source = kept if larger_kept else new
    merged = {name: value for name, value in {**kept, **new}.items() if name.removeprefix("test/") not in LOG_PX}
    merged |= {name: value for name, value in source.items() if name.removeprefix("test/") in LOG_PX}
    if larger_kept:
        log.info("results.json keeps test/nll from k = %d importance samples (more than this k = %d)", kept_k, new_k)
    return merged


def check_sampler(node, model, names: list[str]) -> Sampler:
    """eval.py's `sampler=`, refused with one line where the model's codes do not suit it or where no metric would
    use it (it changes only the sample-quality metrics)."""
    sampler = instantiate(node) if node else PriorSampler()
    if isinstance(sampler, FittedSampler):
        sampler.check(model)
        if not any(name in SAMPLE_QUALITY for name in names):
            raise ConfigError(
                f"sampler={sampler.name} changes only the sample-quality metrics, and none was asked for: "
                f"add metrics=[fid,precision_recall], or drop sampler="
            )
    return sampler


def evaluate_checkpoint(cfg) -> dict:
    """`src/eval.py`: load a checkpoint safely, evaluate it on its test split, merge into results.json beside it."""
    import json

    from omegaconf import OmegaConf

    from vae.files import write_json

    nll_samples = check_int("nll_samples", cfg.nll_samples, 0)
    chunk_size = None if cfg.chunk_size is None else check_int("chunk_size", cfg.chunk_size, 1)
    check_int("seed", cfg.seed, 0)
    system, train_cfg, ckpt_path, run_dir = load_for_command(cfg)
    torch.manual_seed(cfg.seed)
    datamodule = instantiate(train_cfg.data)
    names = check_metrics(cfg.get("metrics"), datamodule)  # before the long log p(x), not after
    sampler = check_sampler(cfg.get("sampler"), system.model, names)
    metrics = evaluate_test_split(system, datamodule, nll_samples, chunk_size)
    if any(name in SAMPLE_QUALITY for name in names):
        sampler = fitted_sampler(sampler, system, datamodule)
    data_config = OmegaConf.to_container(train_cfg.data, resolve=True)
    metrics |= judge(names, system, datamodule, data_config, seed=cfg.seed, sampler=sampler)
    results_file = run_dir / "results.json"  # merged: what training wrote (val/elbo, ...) stays
    kept = json.loads(results_file.read_text()) if results_file.is_file() else {}
    kept.pop("run_dir", None)  # an absolute path that older versions wrote: stale once the folder moves
    checkpoint = ckpt_path.resolve().relative_to(run_dir).as_posix()  # relative: the run folder may move
    write_json(results_file, {**merge_results(kept, metrics), "checkpoint": checkpoint})
    log.info("Test metrics of %s (k = %d importance samples):\n%s", ckpt_path, nll_samples, format_table(metrics))
    log.info("Written: %s", run_dir / "results.json")
    return metrics
