"""Judge a trained model of any family on its test split: the ELBO and its terms, log p(x), bits/dim, and the
family's own figures (`Family.diagnostics`: active units, the KL of each layer or dimension, codebook usage).

log p(x) is the importance-weighted estimate of Burda et al. 2016 ("Importance Weighted
Autoencoders", Eq. 8): log (1/k) sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x). It is a lower
bound that rises towards log p(x) as k grows; k = 1 is a one-sample ELBO. Everything is
in nats per example and float32; `evaluate_checkpoint` is what `src/eval.py` runs. `nll_samples=0`
skips log p(x) (and bits/dim): the results then say so in `nll_skipped`.
"""

import logging
import math
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor

from vae.console import Progress
from vae.errors import ConfigError, check_int
from vae.metrics.latents import ACTIVE_THRESHOLD, active_units, activity, kl_per_dimension  # noqa: F401  (their old home)
from vae.metrics.suite import check_metrics, judge
from vae.objectives.elbo import elbo_terms

log = logging.getLogger(__name__)


CPU_CHUNK = 8192  # images decoded at once on a CPU, and the first chunk's size on a GPU
MAX_CHUNK = 2**17  # on a GPU: past this, a chunk's launch cost is already small beside its arithmetic


@torch.no_grad()
def importance_weighted_log_likelihood(
    model, x: Tensor, k: int, chunk_size: int | None = None, y: Tensor | None = None, progress: Progress | None = None
) -> Tensor:
    """The k-sample importance-weighted estimate of log p(x) (Burda et al. 2016, Eq. 8), in nats.

    Uses the model's own posterior and prior densities (`Draw.log_w`), whatever they are. The k draws
    are taken `chunk_size // B` at a time and combined with a running logsumexp, so memory holds at
    most `chunk_size` decoded images whatever k is. `chunk_size=None`: 8192 on a CPU; on a GPU, where
    each chunk costs kernel launches, the first chunk's peak memory sizes the others to half the
    memory left free (`images_that_fit`). `progress` is advanced by the share of the images done after each chunk.
    model: a family (`draw`); x: (B, C, H, W) -> (B,)
    """
    batch = len(x)
    per_chunk = max(1, (chunk_size or CPU_CHUNK) // batch)
    measure = chunk_size is None and x.device.type == "cuda"
    total = torch.full((batch,), -math.inf, device=x.device)  # log sum_k w_k so far, (B,)
    start = 0
    while start < k:
        n = min(per_chunk, k - start)
        if measure:
            torch.cuda.reset_peak_memory_stats(x.device)
            before = torch.cuda.memory_allocated(x.device)
        log_w = model.draw(x, y, k=n).log_w.float()  # (n, B)
        total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
        if measure:
            per_image = (torch.cuda.max_memory_allocated(x.device) - before) / (n * batch)
            per_chunk = max(1, images_that_fit(per_image, torch.cuda.mem_get_info(x.device)[0] / 2) // batch)
            measure = False
        start += n
        if progress is not None:
            progress.advance(batch * n / k)
    return total - math.log(k)


def images_that_fit(bytes_per_image: float, budget: float) -> int:
    """How many images a GPU chunk decodes: as many as `budget` bytes hold, from CPU_CHUNK to MAX_CHUNK."""
    return int(min(MAX_CHUNK, max(CPU_CHUNK, budget // max(bytes_per_image, 1.0))))


def bits_per_dim(log_px: Tensor, num_dims: int) -> Tensor:
    """-log p(x) in bits per data dimension: -log p(x) / (D ln 2). log_px: (B,) nats -> (B,)

    The density is that of the data as modelled (pixels in [0, 1]); for a Gaussian
    likelihood on 8-bit images add log2(256) = 8 for bits of the discretised 0-255 pixels.
    """
    return -log_px / (num_dims * math.log(2))


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
    for batch in batches:
        x, y = batch if isinstance(batch, (tuple, list)) else (batch, None)
        draw = model.draw(x, y)
        terms = elbo_terms(draw)  # a one-sample ELBO, as in training
        figures = [("elbo", terms["elbo"]), ("rec", terms["rec"]), ("kl", terms["kl"])]
        if nll_samples:
            figures.append(("nll", -importance_weighted_log_likelihood(model, x, nll_samples, chunk_size, y, progress)))
        for name, value in figures:
            sums[name] += float(value.sum())
        tally.update(x, y, draw)
        count, num_dims = count + len(x), x[0].numel()
    if count == 0:
        raise ConfigError("the test split is empty: give data.test_size >= 1")
    metrics: dict = {name: total / count for name, total in sums.items()}
    if nll_samples:
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


def split_batches(datamodule, split: str, device: torch.device, max_batches: int | None = None) -> Iterable[tuple[Tensor, Tensor]]:
    """A whole split (every rank's share) as (x, y) batches on `device`, at most `max_batches` of them (`Data.eval_batches`)."""
    return datamodule.eval_batches(split, device, max_batches)


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


def format_table(metrics: dict) -> str:
    """A two-column console table; lists (KL per dimension) on one line."""
    width = max(len(name) for name in metrics)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 10}"]
    for name, value in metrics.items():
        if isinstance(value, list):
            shown = " ".join(f"{v:.2f}" for v in value)
        elif isinstance(value, float):
            shown = f"{value:.4f}" if name.endswith("bpd") else f"{value:.2f}"
        else:
            shown = str(value)
        lines.append(f"{name:<{width}}  {shown}")
    return "\n".join(lines)


def run_dir_of(ckpt_path: Path) -> Path:
    """The run folder a checkpoint belongs to: the parent of its `checkpoints/` folder."""
    return ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ConfigError(f"device={name} is unknown: use auto, cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but this machine has no CUDA GPU: use device=auto or device=cpu")
    return torch.device(name)


def evaluate_checkpoint(cfg) -> dict:
    """`src/eval.py`: load a checkpoint safely, evaluate it on its test split, merge into results.json beside it."""
    import json

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from vae.build import load_system
    from vae.checkpoints import non_finite_weights
    from vae.files import write_json
    from vae.targets import searchpath_targets

    if not cfg.get("ckpt_path"):
        raise ConfigError("ckpt_path is required: give a .ckpt file, e.g. ckpt_path=<run folder>/checkpoints/best.ckpt")
    nll_samples = check_int("nll_samples", cfg.nll_samples, 0)
    chunk_size = None if cfg.chunk_size is None else check_int("chunk_size", cfg.chunk_size, 1)
    check_int("seed", cfg.seed, 0)
    ckpt_path = Path(cfg.ckpt_path).expanduser()
    system, train_cfg = load_system(ckpt_path, trust=[*(cfg.get("trust") or ()), *searchpath_targets()])
    bad = non_finite_weights(system.state_dict())
    if bad:
        raise ConfigError(
            f"ckpt_path={ckpt_path} holds non-finite weights ({bad[0]} has NaN or inf): there is nothing to "
            "evaluate; give a checkpoint saved before the run diverged"
        )
    if cfg.get("data_dir"):
        train_cfg.data.root = cfg.data_dir
    torch.manual_seed(cfg.seed)
    system.to(pick_device(cfg.device))
    datamodule = instantiate(train_cfg.data)
    names = check_metrics(cfg.get("metrics"), datamodule)  # before the long log p(x), not after
    metrics = evaluate_test_split(system, datamodule, nll_samples, chunk_size)
    metrics |= judge(names, system, datamodule, OmegaConf.to_container(train_cfg.data, resolve=True), seed=cfg.seed)
    run_dir = run_dir_of(ckpt_path.resolve())
    results_file = run_dir / "results.json"  # merged: what training wrote (val/elbo, ...) stays
    kept = json.loads(results_file.read_text()) if results_file.is_file() else {}
    kept.pop("run_dir", None)  # an absolute path that older versions wrote: stale once the folder moves
    checkpoint = ckpt_path.resolve().relative_to(run_dir).as_posix()  # relative: the run folder may move
    write_json(results_file, {**merge_results(kept, metrics), "checkpoint": checkpoint})
    log.info("Test metrics of %s (k = %d importance samples):\n%s", ckpt_path, nll_samples, format_table(metrics))
    log.info("Written: %s", run_dir / "results.json")
    return metrics
