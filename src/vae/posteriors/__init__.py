"""q(z|x): from the encoder's features to K draws of z with their log-densities (the `posterior=` group).

A posterior maps features h (B, F) to `(z (K, B, D), log_q (K, B), gaussian)`, where `gaussian`
is `(mu, logvar)` (B, D) when q is a diagonal Gaussian (closed-form KL, beta-TCVAE) and None
otherwise. `base(h)` is the diagonal Gaussian it starts from (VampPrior's components) and
`mean(h)` the code that pictures and metrics use; `kl(h, prior)` is the closed-form KL(q(z|x) || p(z)) (B,)
where the pair has one, else None. Each declares `diagonal_gaussian` (whether q is its base Gaussian),
`has_log_q` (False for a deterministic encoder, whose point mass has no density: the figures that need one
are not applicable and only objective=ae or rae train it) and `on_sphere` (codes on S^(D-1), scored by a
density on the sphere: posterior=vmf, with prior=uniform_sphere). A posterior without a Gaussian base
(vmf, deterministic) has no `base`; the priors that need one (VampPrior) are refused with it.
Each also declares `needs_log_joint`: whether its draws follow the model's log p(x, z) (`posterior=hamiltonian`);
the family then calls it as `posterior(h, k, log_joint=f)` with f: z (K, B, D) -> log p(x|z) + log p(z) (K, B),
differentiable in z.
"""
