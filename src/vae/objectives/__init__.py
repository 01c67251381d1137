"""Training objectives (the `objective=` group): functions of a `Draw` and the global step.

An objective has `k`, the posterior draws per example it wants, and `__call__(draw, step)`
returning a dict of terms: `loss` (B,) is minimised; the other entries ((B,) tensors or floats)
are logged as means. Every objective also reports `rec`, `kl` and the beta = 1 `elbo`, so runs
with different objectives stay comparable; with a deterministic encoder (objective=ae, rae) the last two
use log q = 0 (`vae.posteriors.deterministic`) and are not applicable at test.
"""
