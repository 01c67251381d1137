"""Model families (the `family=` group): each wires nets, a posterior, a prior and a likelihood together.

Every family offers the same surface: `draw(x, y, k) -> Draw` for objectives and evaluation,
`encode(x, y) -> (B, D)` codes, `decode(z, y) -> (B, C, H, W)` mean images, and
`sample(n, y, generator)` images from the prior.
"""
