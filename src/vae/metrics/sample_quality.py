"""Sample quality in a feature space: the Fréchet distance and improved precision and recall.

Pure functions of features (N, F) of real and generated images. The features come from a small
classifier trained on the data set's own train split (vae.metrics.features), not from Inception v3:
these are not Inception FIDs and are comparable only between models scored with the same feature net.
"""

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance


class GivenFeatures(nn.Identity):
    """What torchmetrics' FID calls its feature extractor, for features computed beforehand."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) between Gaussians fitted to two feature sets
    (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule", Eq. 6), by torchmetrics' FID in float64.
    real: (N, F), fake: (M, F), N, M >= 2."""
    metric = FrechetInceptionDistance(feature=GivenFeatures(real.shape[1])).to(real.device)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def kth_neighbour_radii(features: Tensor, k: int, chunk: int = 1024) -> Tensor:
    """The distance from each point to its k-th nearest other point of the same set. (N, F) -> (N,)"""
    radii = [torch.cdist(part, features).kthvalue(k + 1, dim=1).values for part in features.split(chunk)]
    return torch.cat(radii)  # the (k + 1)-th smallest distance: the smallest is the point itself


def in_manifold(points: Tensor, support: Tensor, radii: Tensor, chunk: int = 1024) -> Tensor:
    """Whether each point falls inside some ball around a support point with that point's radius. -> (M,) bool"""
    return torch.cat([(torch.cdist(part, support) <= radii).any(dim=1) for part in points.split(chunk)])


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, Sec. 3): the manifold of a set is the union
    of balls around its points reaching their k-th nearest neighbour (k = 3 in the paper). Precision: the
    share of generated points inside the real manifold; recall: the share of real points inside the
    generated one. real: (N, F), fake: (M, F), N, M > k."""
    real, fake = real.double(), fake.double()
    return {
        "precision": float(in_manifold(fake, real, kth_neighbour_radii(real, k)).double().mean()),
        "recall": float(in_manifold(real, fake, kth_neighbour_radii(fake, k)).double().mean()),
    }
