"""The contract every combination of the zoo's parts keeps: net x posterior x prior x objective x likelihood.

Each sensible combination builds from the real composed config, draws with the right shapes, has
a finite loss whose gradients reach every parameter, an importance-weighted bound above its ELBO,
and a finite log p(x) estimate; each combination that makes no sense stops with one line.

The options are read from conf/<group>/*.yaml, so a new option is tested against every other part.
The fast tier runs an all-pairs set of the working combinations (every two options of two groups meet
at least once) and each option once among the refused ones; the full suite (`make test-full`) adds
every posterior x prior x objective triple.
"""

import itertools
from collections.abc import Iterable, Sequence

import pytest
import torch

from conftest import CONF, make_config
from vae.errors import ConfigError
from vae.metrics.likelihood import importance_weighted_log_likelihood
from vae.objectives.iwae import iwae_bound
from vae.system import VAE

GROUPS = ("model", "posterior", "prior", "objective", "likelihood")
OPTIONS = {group: sorted(path.stem for path in (CONF / group).glob("*.yaml")) for group in GROUPS}
TINY = {  # overrides that keep an option small; an option not named here runs with its own defaults
    "model": {"mlp": ["model.hidden=[16]"], "burda": ["model.hidden=[16,16]"], "conv": ["model.channels=[4,8]"],
              "resnet": ["model.channels=[4,4,8]"]},
    "posterior": {"iaf": ["posterior.hidden=8", "posterior.context=4"], "planar": ["posterior.flows=2"],
                  "radial": ["posterior.flows=2"], "hamiltonian": ["posterior.steps=1"]},
    "prior": {"mog": ["prior.components=3"], "vamp": ["prior.components=4"]},
    "objective": {"iwae": ["objective.k=3"], "miwae": ["objective.m=2", "objective.k=2"],
                  "piwae": ["objective.m=2", "objective.k=2"], "ciwae": ["objective.k=3"],
                  "factor_vae": ["objective.discriminator_hidden=8"], "aae": ["objective.discriminator_hidden=8"],
                  "swae": ["objective.projections=5"]},
    "likelihood": {"logistic_mixture": ["likelihood.components=2"], "msssim": ["likelihood.scales=2"]},
}  # fmt: skip
SHAPE = (3, 16, 16)  # sides divisible by 8, colour: every net and likelihood applies


NEEDS = {  # objective -> the posterior and prior it needs (None: any): beta-TCVAE's estimator and DIP-VAE's penalty read
    "beta_tcvae": ("gaussian", "standard_normal"),  # the Gaussian q(z|x) and measure against N(0, I); WAE's prior draws
    "dip_vae": ("gaussian", "standard_normal"),  # carry no gradient, so it needs the fixed prior
    "wae": (None, "standard_normal"),  # SWAE and AAE pull the codes towards prior draws in place of a KL term
    "swae": (None, "standard_normal"),
    "aae": (None, "standard_normal"),
}


DETERMINISTIC_OBJECTIVES = ("ae", "rae")  # those that train posterior=deterministic, and the only ones it takes


def refusal(posterior: str, prior: str, objective: str) -> str | None:
    """The start of the one line a combination that makes no sense stops with, or None where it trains."""
    if (posterior == "vmf") != (prior == "uniform_sphere"):  # a density on the sphere against one on R^D
        return f"^(posterior={posterior} draws codes on the sphere|prior={prior} is a density on the sphere)"
    if posterior == "deterministic" and prior != "standard_normal":  # ae and rae train no prior
        return f"^posterior=deterministic takes prior=standard_normal, not prior={prior}: "
    if (posterior == "deterministic") != (objective in DETERMINISTIC_OBJECTIVES):
        return f"^objective={objective} (needs log q|trains a deterministic encoder)"
    needs_posterior, needs_prior = NEEDS.get(objective, (None, None))  # what the objective declares it needs
    if needs_posterior not in (None, posterior) or needs_prior not in (None, prior):
        return rf"^objective={objective} needs (posterior=gaussian|prior=standard_normal): "
    return None


def sensible(posterior: str, prior: str, objective: str) -> bool:
    return refusal(posterior, prior, objective) is None


def pairs(row: Sequence[str]) -> set[tuple[int, str, int, str]]:
    """Every two options of a row, with the positions of their groups."""
    return {(i, row[i], j, row[j]) for i, j in itertools.combinations(range(len(row)), 2)}


def all_pairs(candidates: Iterable[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """A few candidates that hold between them every pair of options that any candidate holds.

    Greedy (as AETG, Cohen et al. 1997): take the candidate that covers most pairs not yet covered,
    the first one on a tie, until none is left. Deterministic, so the fast tier is the same every run.
    """
    candidates = list(candidates)
    missing = set().union(*map(pairs, candidates)) if candidates else set()
    chosen = []
    while missing:
        best = max(candidates, key=lambda row: len(pairs(row) & missing))
        chosen.append(best)
        missing -= pairs(best)
    return chosen


def build(tmp_path, net, posterior, prior, objective, likelihood) -> VAE:
    choice = dict(zip(GROUPS, (net, posterior, prior, objective, likelihood)))
    overrides = [f"{group}={option}" for group, option in choice.items()]
    overrides += [line for group, option in choice.items() for line in TINY[group].get(option, [])]
    overrides += ["latent=3", "data=folder", f"data.path={tmp_path}", "data.image_size=16"]
    from omegaconf import OmegaConf

    return VAE(OmegaConf.to_container(make_config(tmp_path, overrides), resolve=True))


COMBINATIONS = list(itertools.product(*OPTIONS.values()))
def every_option(candidates: Iterable[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """A few candidates that hold between them every option any candidate holds (greedy, deterministic)."""
    candidates = list(candidates)
    missing = {(i, option) for row in candidates for i, option in enumerate(row)}
    chosen = []
    while missing:
        best = max(candidates, key=lambda row: len(set(enumerate(row)) & missing))
        chosen.append(best)
        missing -= set(enumerate(best))
    return chosen


PAIRWISE = {  # the fast tier: all pairs among the sensible combinations, and each option among those that stop
    *all_pairs(c for c in COMBINATIONS if sensible(*c[1:4])),  # (the full suite: every refusing triple)
    *every_option(c for c in COMBINATIONS if not sensible(*c[1:4])),
}


def every_triple() -> list[tuple[str, ...]]:
    """Each posterior x prior x objective once, the nets and likelihoods taken in turn: what decides whether a
    combination makes sense, in full, without the whole product (thousands of builds, over an hour)."""
    nets, likelihoods = OPTIONS["model"], OPTIONS["likelihood"]
    triples = itertools.product(OPTIONS["posterior"], OPTIONS["prior"], OPTIONS["objective"])
    return [(nets[i % len(nets)], *triple, likelihoods[i % len(likelihoods)]) for i, triple in enumerate(triples)]


SLOW = [c for c in every_triple() if c not in PAIRWISE]  # the full suite adds these


def test_the_fast_tier_holds_every_option_and_every_pair_that_some_working_combination_holds():
    assert all(OPTIONS.values()), OPTIONS
    for group, tiny in TINY.items():  # a renamed option would leave its overrides behind silently
        assert set(tiny) <= set(OPTIONS[group]), (group, set(tiny) - set(OPTIONS[group]))
    works = [c for c in COMBINATIONS if sensible(*c[1:4])]
    assert set().union(*map(pairs, works)) == set().union(*map(pairs, [c for c in PAIRWISE if c in works]))
    stops = [c for c in COMBINATIONS if not sensible(*c[1:4])]
    assert {(i, o) for c in stops for i, o in enumerate(c)} == {(i, o) for c in PAIRWISE if c in stops for i, o in enumerate(c)}
    assert len(PAIRWISE) < len(COMBINATIONS) / 4, len(PAIRWISE)


@pytest.mark.parametrize(
    "net, posterior, prior, objective, likelihood",
    [*sorted(PAIRWISE), *(pytest.param(*c, marks=pytest.mark.slow) for c in SLOW)],
)
def test_every_combination_trains_or_says_why_not(tmp_path, net, posterior, prior, objective, likelihood):
    torch.manual_seed(0)
    refused = refusal(posterior, prior, objective)
    if refused is not None:
        with pytest.raises(ConfigError, match=refused):
            build(tmp_path, net, posterior, prior, objective, likelihood)
        return
    system = build(tmp_path, net, posterior, prior, objective, likelihood)
    system.objective.dataset_size = 100
    model = system.model
    x = torch.randint(0, 256, (6, *SHAPE)).float() / 255  # 8-bit values in [0, 1]: every likelihood applies
    k = system.objective.k
    draw = model.draw(x, k=k)
    assert draw.log_px_z.shape == draw.log_pz.shape == draw.log_qz_x.shape == (k, 6)
    assert draw.z.shape == (k, 6, 3)
    terms = system.objective(draw, step=0)
    loss = terms["loss"].mean()
    assert terms["loss"].shape == (6,) and torch.isfinite(loss)
    loss.backward()
    silent = [name for name, p in system.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent, f"no gradient reaches {silent}"
    with torch.no_grad():
        elbo = torch.stack([model.draw(x).log_w[0] for _ in range(32)]).mean()  # 32 independent one-draw ELBOs
        iwae = iwae_bound(model.draw(x, k=32)).mean()
        assert iwae >= elbo - 1.0, (iwae, elbo)  # the bound is tighter, up to Monte Carlo noise
        log_px = importance_weighted_log_likelihood(model, x, k=8, chunk_size=16)
    assert log_px.shape == (6,) and torch.isfinite(log_px).all()
    assert model.decode(model.encode(x)).shape == x.shape
    assert model.sample(2).shape == (2, *SHAPE)


def test_the_closed_form_kl_is_used_only_where_it_is_exact(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(5, *SHAPE)
    closed = build(tmp_path, "mlp", "gaussian", "standard_normal", "elbo", "bernoulli").model
    draw = closed.draw(x, k=20_000)
    assert draw.kl is not None  # and it is the mean of the Monte Carlo estimate it replaces
    torch.testing.assert_close(draw.kl, (draw.log_qz_x - draw.log_pz).mean(0), atol=0.05, rtol=0)
    for posterior, prior in (("iaf", "standard_normal"), ("planar", "standard_normal"), ("gaussian", "mog"), ("gaussian", "vamp")):
        model = build(tmp_path, "mlp", posterior, prior, "elbo", "bernoulli").model
        assert model.draw(x).kl is None, (posterior, prior)
