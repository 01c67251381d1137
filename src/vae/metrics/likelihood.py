"""log p(x) and bits per dimension: how well a model of any family explains its data.

log p(x) is the importance-weighted estimate of Burda et al. 2016 ("Importance Weighted
Autoencoders", Eq. 8): log (1/k) sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x). It is a lower
bound that rises towards log p(x) as k grows; k = 1 is a one-sample ELBO. Everything is
in nats per example and float32.
"""

import math

import torch
from torch import Tensor

CPU_CHUNK = 8192  # images decoded at once on a CPU, and the first chunk's size on a GPU
MAX_CHUNK = 2**17  # on a GPU: past this, a chunk's launch cost is already small beside its arithmetic


@torch.no_grad()
def importance_weighted_log_likelihood(
    model, x: Tensor, k: int, chunk_size: int | None = None, y: Tensor | None = None, progress=None
) -> Tensor:
    """The k-sample importance-weighted estimate of log p(x) (Burda et al. 2016, Eq. 8), in nats.

    Uses the model's own posterior and prior densities (`Draw.log_w`), whatever they are. The k draws
    are taken `chunk_size // B` at a time and combined with a running logsumexp, so memory holds at
    most `chunk_size` decoded images whatever k is. `chunk_size=None`: 8192 on a CPU; on a GPU, where
    each chunk costs kernel launches, the first chunk's peak memory sizes the others to half the
    memory left free (`images_that_fit`). `progress` (`vae.console.Progress`) is advanced by the share of
    the images done after each chunk.
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
