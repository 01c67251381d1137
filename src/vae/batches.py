"""In-memory batches: an epoch's index order (`EpochPermutation`) and the batches sliced by it (`TensorBatches`).

A batch is one index slice and one division: no per-image transform, no collation, no worker processes.
"""

import math

import torch
from torch import Tensor


class EpochPermutation:
    """The index order of one epoch, this rank's share of it; Lightning calls `set_epoch` each epoch.

    Seeded by (seed, epoch), so the order depends only on the epoch: a resumed run sees the
    same batches. With several ranks the order is padded to a multiple of the world size and
    dealt out, as `DistributedSampler` does.
    """

    def __init__(self, size: int, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1):
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.size / self.world_size)

    def indices(self) -> Tensor:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.arange(self.size)
        padded = len(self) * self.world_size
        order = torch.cat([order, order[: padded - self.size]])
        return order[self.rank :: self.world_size]


class TensorBatches:
    """An iterable of (x, y) batches sliced from in-memory uint8 images, scaled to [0, 1].

    Resumable mid-epoch: Lightning saves `state_dict()` in each checkpoint and hands it back
    to `load_state_dict` on resume, and the next pass over that epoch skips the batches done.
    """

    def __init__(self, images: Tensor, labels: Tensor, batch_size: int, sampler: EpochPermutation, binarize: bool):
        self.images, self.labels = images, labels
        self.batch_size, self.binarize = batch_size, binarize
        self.sampler = sampler  # DataLoader's attributes, where Lightning looks to call set_epoch
        self.batch_sampler = None
        self.batches_done = 0  # in the epoch being iterated
        self.resume_at: tuple[int, int] | None = None  # (epoch, batches already done in it)

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.resume_at = (state["epoch"], state["batches_done"])

    def __iter__(self):
        order = self.sampler.indices().to(self.images.device)
        resume_at, self.resume_at = self.resume_at, None
        self.batches_done = resume_at[1] if resume_at and resume_at[0] == self.sampler.epoch else 0
        for start in range(self.batches_done * self.batch_size, len(order), self.batch_size):
            self.batches_done += 1
            idx = order[start : start + self.batch_size]
            x = self.images[idx].float().div_(255)  # (B, C, H, W) in [0, 1]
            if self.binarize:  # dynamic binarisation: a fresh Bernoulli draw each time
                x = torch.bernoulli(x)
            yield x, self.labels[idx]
