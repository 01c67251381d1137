"""p(z): the prior over codes (the `prior=` group).

A prior scores codes with `log_prob(z, base) -> (...)` for z (..., D), where `base` is the model's
map from images to its posterior's base Gaussian (only VampPrior uses it), and draws codes with
`sample(n, base, generator) -> (n, D)`. Each is built with `latent_dim` and the image's `in_shape`
(which only VampPrior's pseudo-inputs need). Each declares `standard_normal` (N(0, I): the closed-form
KL and beta-TCVAE apply), `needs_encoder` (its density passes images through the model's encoder) and
`on_sphere` (a density on the sphere S^(D-1), not on R^D: it scores only a posterior's codes on the sphere).
"""
