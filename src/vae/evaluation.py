"""Judge a trained model of any family on its test split: the ELBO and its terms, log p(x), bits/dim, and the
family's own figures (`Family.diagnostics`: active units, the KL of each layer or dimension, codebook usage).

log p(x) is the importance-weighted estimate of Burda et al. 2016 (`vae.metrics.likelihood`). Everything is
in nats per example and float32; `evaluate_checkpoint` is what `src/eval.py` runs.
"""

import logging
from collections.abc import Iterable

import torch

from vae.data import split_batches
from vae.errors import ConfigError, check_int
from vae.loading import load_for_command
from vae.metrics.likelihood import bits_per_dim, importance_weighted_log_likelihood
from vae.metrics.suite import check_metrics, judge
from vae.objectives.elbo import elbo_terms
from vae.table import format_table

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate(model, batches: Iterable, nll_samples: int, chunk_size: int | None = None) -> dict:
    """ELBO, its terms, the k-sample log p(x), bits/dim, active units and KL per dimension over `batches`.

    model: a family (`vae.families.base.Family`); batches: tensors x (B, C, H, W) in [0, 1] on the model's
    device, or (x, y) pairs with their labels (a conditional family then gives log p(x|y)). Returns nats per
    example (`nll` = -log p(x)), averaged over all examples, and the family's own figures (`diagnostics`:
    active units, the KL and active units of each layer, codebook perplexity and dead codes, ...). A figure
    the family has no meaning for is left out and named in `not_applicable` with the reason.
    """
    check_int("nll_samples", nll_samples, 1)
    sums: dict[str, float] = {"elbo": 0.0, "rec": 0.0, "kl": 0.0, "nll": 0.0}
    tally, count, num_dims = model.diagnostics(), 0, 0
    for batch in batches:
        x, y = batch if isinstance(batch, (tuple, list)) else (batch, None)
        draw = model.draw(x, y)
        terms = elbo_terms(draw)  # a one-sample ELBO, as in training
        log_px = importance_weighted_log_likelihood(model, x, nll_samples, chunk_size, y)  # (B,)
        for name, value in (("elbo", terms["elbo"]), ("rec", terms["rec"]), ("kl", terms["kl"]), ("nll", -log_px)):
            sums[name] += float(value.sum())
        tally.update(x, y, draw)
        count, num_dims = count + len(x), x[0].numel()
    if count == 0:
        raise ConfigError("the test split is empty: give data.test_size >= 1")
    metrics: dict = {name: total / count for name, total in sums.items()}
    metrics["bpd"] = float(bits_per_dim(torch.tensor(-metrics["nll"]), num_dims))
    metrics |= tally.result()
    metrics["nll_samples"] = nll_samples
    if model.classes:
        metrics["nll_given"] = "y: -log p(x|y), each test image with its label"
    not_applicable = model.not_applicable
    metrics = {name: value for name, value in metrics.items() if name not in not_applicable}
    if not_applicable:
        metrics["not_applicable"] = "; ".join(f"{name}: {why}" for name, why in not_applicable.items())
    return metrics


def evaluate_test_split(
    system, datamodule, nll_samples: int, chunk_size: int | None = None, max_batches: int | None = None
) -> dict:
    """`evaluate` on the test split, as `test/...` metrics, in eval mode (batch norm: the running statistics)."""
    system.eval()
    batches = split_batches(datamodule, "test", system.device, max_batches)
    return {f"test/{name}": value for name, value in evaluate(system.model, batches, nll_samples, chunk_size).items()}


def evaluate_checkpoint(cfg) -> dict:
    """`src/eval.py`: load a checkpoint safely, evaluate it on its test split, merge into results.json beside it."""
    import json

    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from tqdm import tqdm

    from vae.files import write_json

    nll_samples = check_int("nll_samples", cfg.nll_samples, 1)
    chunk_size = None if cfg.chunk_size is None else check_int("chunk_size", cfg.chunk_size, 1)
    check_int("seed", cfg.seed, 0)
    system, train_cfg, ckpt_path, run_dir = load_for_command(cfg)
    torch.manual_seed(cfg.seed)
    datamodule = instantiate(train_cfg.data)
    names = check_metrics(cfg.get("metrics"), datamodule)  # before the long log p(x), not after
    datamodule.setup("test")
    batches = split_batches(datamodule, "test", system.device)
    images = len(datamodule.splits["test"][0])
    # a bar per batch: with k in the thousands a batch takes many seconds
    shown = tqdm(batches, total=-(-images // datamodule.batch_size), desc=f"log p(x), k={nll_samples}", unit="batch")
    metrics = {f"test/{name}": value for name, value in evaluate(system.model, shown, nll_samples, chunk_size).items()}
    metrics |= judge(names, system, datamodule, OmegaConf.to_container(train_cfg.data, resolve=True), seed=cfg.seed)
    results_file = run_dir / "results.json"  # merged: what training wrote (val/elbo, ...) stays
    kept = json.loads(results_file.read_text()) if results_file.is_file() else {}
    write_json(results_file, {**kept, **metrics, "checkpoint": str(ckpt_path.resolve()), "run_dir": str(run_dir)})
    log.info("Test metrics of %s (k = %d importance samples):\n%s", ckpt_path, nll_samples, format_table(metrics))
    log.info("Written: %s", run_dir / "results.json")
    return metrics
