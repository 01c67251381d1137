"""What makes training fast stays the same computation: the fused Adam default, and the benchmark's raw loops."""

import sys

import torch
from hydra.utils import instantiate

from conftest import ROOT, make_config

sys.path.insert(0, str(ROOT / "benchmarks"))
from references import Nets, count_ops, iwae  # noqa: E402

from vae.build import build_system  # noqa: E402
from vae.metrics.likelihood import importance_weighted_log_likelihood  # noqa: E402


def adam_steps(make_optimizer, steps: int = 5) -> list[torch.Tensor]:
    """The weights of a small net after `steps` updates on fixed gradients."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    optimizer = make_optimizer(net.parameters())
    inputs = torch.randn(steps, 8, 6)
    for x in inputs:
        optimizer.zero_grad()
        net(x).pow(2).sum().backward()
        optimizer.step()
    return [p.detach() for p in net.parameters()]


def test_the_default_optimiser_is_fused_adam_and_updates_as_the_for_loop_adam(tmp_path):
    make = instantiate(make_config(tmp_path).optimizer)
    assert make(torch.nn.Linear(2, 2).parameters()).defaults["fused"] is True
    fused = adam_steps(make)
    reference = adam_steps(lambda params: torch.optim.Adam(params, lr=1e-3, foreach=False))  # torch's plain loop
    start = adam_steps(lambda params: torch.optim.SGD(params, lr=0.0))
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-5) for a, b in zip(fused, reference))
    assert not all(torch.allclose(a, b, atol=1e-5) for a, b in zip(fused, start))  # the weights did move


def test_the_benchmarks_raw_loop_computes_the_projects_elbo_and_log_px(tmp_path):
    cfg = make_config(tmp_path, ["latent=3", "model.hidden=[16]"])
    system = build_system(cfg)
    nets = Nets(cfg, (1, 28, 28))
    model = system.model
    nets.encoder.load_state_dict(model.encoder.state_dict())
    nets.head.load_state_dict(model.posterior.head.state_dict())
    nets.decoder.load_state_dict(model.decoder.state_dict())
    x = torch.rand(16, 1, 28, 28)
    torch.manual_seed(1)
    project = -system.objective(model.draw(x), 0)["loss"]
    torch.manual_seed(1)
    assert torch.allclose(-nets(x), project, atol=1e-4)
    torch.manual_seed(2)
    project = importance_weighted_log_likelihood(model, x, k=40, chunk_size=16 * 16)  # 16 draws a chunk: 3 chunks
    torch.manual_seed(2)
    with torch.no_grad():
        raw = iwae(nets, x, k=40, chunk_size=16 * 16)
    assert torch.allclose(raw, project, atol=1e-3)


def test_the_benchs_operation_count_counts_each_dispatched_operation_once():
    x = torch.ones(3, requires_grad=True)
    assert count_ops(lambda: None) == 0
    assert count_ops(lambda: x * 2 + 1) == 2  # mul, add
    assert count_ops(lambda: (x * 2).sum().backward()) > count_ops(lambda: (x * 2).sum())  # the backward's own
