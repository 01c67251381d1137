"""p(x|z): what the decoder's output maps mean (the `likelihood=` group).

Each likelihood says how many maps per image channel it needs (`params_per_pixel`), scores
data with `log_prob(params, x) -> (B,)` in nats (float32 whatever the training precision), and
gives the mean image `mean(params)` in [0, 1] for pictures. Each declares `normalised`: whether
`log_prob` is a normalised density; a loss in its place (`likelihood=msssim`) trains, but log p(x), bits/dim and
the ELBO in nats then mean nothing, and the families name them in `Family.not_applicable`.
"""
