"""The references `bench.py` times the project against, each run in its own process; each prints one JSON line.

  naive: the loop pytorch/examples writes: default Adam, an eager loss, `zero_grad` / `backward` / `step`;
  best:  the fastest loop we can write that computes the same thing: fused Adam, the loss under
         `torch.compile`, gradients set to None, no host sync per step;
  pythae: the widest peer's own trainer (pythae's `BaseTrainer` and `VAE`, BCE on sigmoid outputs, Adam),
         on the same nets, data and batch size: what a user of that library runs (needs `pythae`);
  floor: the step's layers alone (matrix multiplies and convolutions with their bias adds, forward and
         backward, each layer timed on its own) plus one fused Adam update: what the hardware needs;
  alternated: the training step alone, in one process: the project through Lightning (one and
         `--steps-per-call` steps a call) and the naive and best loops, each on the same batches,
         alternated `--repeats` times, so that the machine's drift falls on all four alike;
  eval:  log p(x) by importance sampling (Burda et al. 2016, Eq. 8) written by hand, or through the
         project's `vae.evaluation.evaluate` (`--loop eval-project`), on the same images and weights.

All of them build the data and the nets from the project's config (the same overrides `src/train.py`
gets): the nets are plain `nn.Module`s, so what differs is only what wraps them. The loss is the
Bernoulli ELBO with a diagonal Gaussian q(z|x) and N(0, I) prior (Kingma & Welling 2014, Appendix B).
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("train", overrides=[*overrides, "paths.output_dir=unused"])  # no run folder is made


class Nets(nn.Module):
    """The project's encoder and decoder for this config, with the posterior's linear head written out."""

    def __init__(self, cfg, shape):
        super().__init__()
        from hydra.utils import instantiate

        self.encoder = instantiate(cfg.model.encoder, in_shape=shape)
        self.head = nn.Linear(self.encoder.out_features, 2 * cfg.latent)
        self.decoder = instantiate(cfg.model.decoder, out_shape=shape, latent_dim=cfg.latent, params_per_pixel=1)

    def forward(self, x):  # (B, C, H, W) -> -ELBO (B,)
        mu, logvar = self.head(self.encoder(x)).float().chunk(2, dim=1)  # (B, D) each
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.decoder(z).float()
        rec = F.binary_cross_entropy_with_logits(logits.flatten(1), x.flatten(1), reduction="none").sum(1)
        return rec + 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


def setup(args):
    """(config, data module, device, nets, train images, autocast) for these overrides."""
    cfg = compose(args.overrides)
    from hydra.utils import instantiate

    data = instantiate(cfg.data)
    data.setup()
    # importing the data module imported Lightning, which sets this; the plain PyTorch scripts these loops stand
    # for have not got it, and with it torch loads NVML at every optimiser step on a machine without a GPU
    os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    device = torch.device(args.device if args.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    nets = Nets(cfg, data.shape).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16-mixed")
    return cfg, data, device, nets, autocast


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def batches(images, order, size):
    for i in range(0, len(order), size):
        yield images[order[i : i + size]].float().div_(255)  # (B, C, H, W) in [0, 1]


def train_loop(args, best: bool) -> None:
    """The naive or the best raw loop: train, validate each epoch, test, log p(x); phases timed."""
    cfg, data, device, nets, autocast = setup(args)
    train_x, val_x, test_x = (data.splits[s][0].to(device) for s in ("train", "val", "test"))
    size = data.batch_size
    optimizer = torch.optim.Adam(nets.parameters(), lr=cfg.optimizer.lr, fused=True if best else None)

    def loss_of(x):
        with autocast:
            return nets(x).mean()

    step_loss = torch.compile(loss_of) if best or args.compile else loss_of
    if best:  # compile both batch sizes before the clock starts, then restore the initial weights
        state, rng = {k: v.clone() for k, v in nets.state_dict().items()}, torch.get_rng_state()
        for n in {size, len(train_x) % size or size}:
            step_loss(train_x[:n].float().div_(255)).backward()
        nets.load_state_dict(state)
        torch.set_rng_state(rng)
        nets.zero_grad(set_to_none=True)
    started = time.time()
    epoch_s = []
    for epoch in range(args.epochs):
        sync(device)
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(args.seed + epoch)  # the project's order (EpochPermutation)
        order = torch.randperm(len(train_x), generator=generator).to(device)
        for x in batches(train_x, order, size):
            loss = step_loss(x)
            optimizer.zero_grad(set_to_none=best)
            loss.backward()
            optimizer.step()
        sync(device)
        epoch_s.append(time.perf_counter() - start)
        with torch.no_grad():
            val = torch.cat([nets(x) for x in batches(val_x, torch.arange(len(val_x)), size)]).mean().item()
    trained = time.time()
    with torch.no_grad():
        test = torch.cat([nets(x) for x in batches(test_x, torch.arange(len(test_x)), size)])
        log_px = torch.cat([iwae(nets, x, cfg.nll_samples) for x in batches(test_x, torch.arange(len(test_x)), size)])
    sync(device)
    print(json.dumps({
        "epoch_s": epoch_s, "neg_elbo": test.mean().item(), "nll": -log_px.mean().item(), "val_neg_elbo": val,
        "started": started, "trained": trained, "ended": time.time(),
    }))  # fmt: skip


def pythae_loop(args) -> None:
    """pythae's trainer on the project's nets: seconds per training epoch (its `train_step`), test -ELBO."""
    import tempfile

    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    cfg, data, device, nets, _ = setup(args)

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.encoder, self.head = nets.encoder, nets.head

        def forward(self, x):
            mu, logvar = self.head(self.encoder(x)).chunk(2, dim=1)  # (B, D) each
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.decoder = nets.decoder

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.decoder(z)))  # pythae's BCE takes probabilities

    model = VAE(VAEConfig(input_dim=tuple(data.shape), latent_dim=cfg.latent, reconstruction_loss="bce"),
                encoder=Encoder(), decoder=Decoder())  # fmt: skip
    splits = {name: BaseDataset(x.float() / 255, y) for name, (x, y) in data.splits.items()}
    with tempfile.TemporaryDirectory() as out:
        config = BaseTrainerConfig(output_dir=out, num_epochs=args.epochs, learning_rate=cfg.optimizer.lr,
                                   per_device_train_batch_size=data.batch_size, per_device_eval_batch_size=data.batch_size,
                                   no_cuda=device.type != "cuda", seed=args.seed)  # fmt: skip
        trainer = BaseTrainer(model, splits["train"], eval_dataset=splits["val"], training_config=config)
        epoch_s, train_step = [], trainer.train_step

        def timed_step(epoch):
            sync(device)
            start = time.perf_counter()
            loss = train_step(epoch)  # its whole training epoch: its loader, its step, its per-step loss.item()
            sync(device)
            epoch_s.append(time.perf_counter() - start)
            return loss

        trainer.train_step = timed_step
        trainer.train()
    model.eval()
    test_x = data.splits["test"][0].to(device)
    with torch.no_grad():
        losses = [model({"data": x}).loss * len(x) for x in batches(test_x, torch.arange(len(test_x)), data.batch_size)]
    print(json.dumps({"epoch_s": epoch_s, "neg_elbo": (sum(losses) / len(test_x)).item()}))


def iwae(nets: Nets, x, k: int, chunk_size: int = 8192):
    """log p(x) (B,) from k importance samples, decoded `chunk_size // B` draws at a time (Burda et al. 2016)."""
    mu, logvar = nets.head(nets.encoder(x)).float().chunk(2, dim=1)  # (B, D)
    std, flat_x = torch.exp(0.5 * logvar), x.flatten(1)  # (B, D), (B, P)
    total = torch.full((len(x),), -math.inf, device=x.device)
    per_chunk = max(1, chunk_size // len(x))
    for start in range(0, k, per_chunk):
        eps = torch.randn(min(per_chunk, k - start), *mu.shape, device=x.device)  # (n, B, D)
        z = mu + std * eps
        logits = nets.decoder(z.flatten(0, 1)).float().view(len(eps), len(x), -1)  # (n, B, P)
        log_px_z = -F.binary_cross_entropy_with_logits(logits, flat_x.expand_as(logits), reduction="none").sum(2)
        log_pz_minus_q = 0.5 * (eps.pow(2) - z.pow(2)).sum(2) + 0.5 * logvar.sum(1)  # log p(z) - log q(z|x), (n, B)
        total = torch.logaddexp(total, torch.logsumexp(log_px_z + log_pz_minus_q, dim=0))
    return total - math.log(k)


def floor(args) -> None:
    """Each layer's forward and backward on its own, plus one fused Adam update, per step and per epoch."""
    _, data, device, nets, autocast = setup(args)
    size, n_train = data.batch_size, len(data.splits["train"][0])
    calls = []  # (layer, input shape, whether the step needs the input's gradient), in the order of one step
    hooks = [m.register_forward_hook(lambda m, i, o: calls.append((m, i[0].shape, i[0].requires_grad)))
             for m in nets.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]  # fmt: skip
    nets(data.splits["train"][0][:size].to(device).float().div_(255)).mean().backward()
    for hook in hooks:
        hook.remove()
    inputs = [(m, torch.randn(shape, device=device, requires_grad=grad)) for m, shape, grad in calls]

    def layers():
        for m, x in inputs:
            with autocast:
                y = m(x)
            y.backward(torch.ones_like(y))

    optimizer = torch.optim.Adam(nets.parameters(), lr=1e-3, fused=True)
    layer_s, adam_s = timed(layers, device), timed(optimizer.step, device)
    steps = math.ceil(n_train / size)
    print(json.dumps({"epoch_s": [(layer_s + adam_s) * steps], "layers_epoch_s": layer_s * steps,
                      "adam_epoch_s": adam_s * steps, "layers": len(calls)}))  # fmt: skip


def timed(fn, device, repeats: int = 5, calls: int = 20) -> float:
    """The median over repeats of the mean seconds per call, after a warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        sync(device)
        times.append((time.perf_counter() - start) / calls)
    return sorted(times)[len(times) // 2]


def evaluation(args, project: bool) -> None:
    """log p(x) with k = nll_samples on the first `--images` test images: hand-written or the project's."""
    cfg, data, device, nets, _ = setup(args)
    test_x = data.splits["test"][0][: args.images].to(device)
    size = data.batch_size
    if project:
        from vae.build import build_system
        from vae.metrics.likelihood import importance_weighted_log_likelihood

        model = build_system(cfg).model.to(device).eval()
        fn = lambda x: importance_weighted_log_likelihood(model, x, cfg.nll_samples)  # noqa: E731
    else:
        nets.eval()
        fn = lambda x: iwae(nets, x, cfg.nll_samples)  # noqa: E731
    sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        log_px = torch.cat([fn(x) for x in batches(test_x, torch.arange(len(test_x)), size)])
    sync(device)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "decoder_passes": len(test_x) * cfg.nll_samples, "nll": -log_px.mean().item()}))


def alternated(args) -> None:
    """Per-step milliseconds of the project (Lightning, no logger or callbacks) and of the raw loops, alternated."""
    import logging
    import warnings

    import lightning as L
    from omegaconf import OmegaConf

    from vae.batches import EpochPermutation, TensorBatches
    from vae.system import VAE

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    cfg, data, device, nets, autocast = setup(args)
    size = data.batch_size
    steps = min(args.steps, len(data.splits["train"][0]) // size)
    images, labels = (t[: steps * size].to(device) for t in data.splits["train"])

    def loader() -> TensorBatches:
        return TensorBatches(images, labels, size, EpochPermutation(len(images), True, args.seed), binarize=False)

    def project(steps_per_call: int, n: int = steps) -> float:
        config = OmegaConf.to_container(compose([*args.overrides, f"steps_per_call={steps_per_call}"]), resolve=True)
        trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, num_sanity_val_steps=0, accelerator=device.type,
                            precision=args.precision, log_every_n_steps=cfg.trainer.log_every_n_steps,
                            limit_train_batches=n, limit_val_batches=0)  # fmt: skip
        system = VAE(config)
        if cfg.model.get("compile"):
            system.compile_maths()
        sync(device)
        start = time.perf_counter()
        trainer.fit(system, datamodule=data)  # the system reads its data module's splits; batches of the same size
        sync(device)
        return (time.perf_counter() - start) / n * 1e3

    compiled = torch.compile(lambda x: nets(x).mean())

    def raw(best: bool) -> float:
        optimizer = torch.optim.Adam(nets.parameters(), lr=cfg.optimizer.lr, fused=True if best else None)
        loss_of = compiled if best or args.compile else (lambda x: nets(x).mean())
        sync(device)
        start = time.perf_counter()
        for x, _ in loader():
            with autocast:
                loss = loss_of(x)
            optimizer.zero_grad(set_to_none=best)
            loss.backward()
            optimizer.step()
        sync(device)
        return (time.perf_counter() - start) / steps * 1e3

    cases = {"naive": lambda: raw(False), "best": lambda: raw(True), "project": lambda: project(1),
             f"project_{args.steps_per_call}": lambda: project(args.steps_per_call)}  # fmt: skip
    raw(True), project(1)  # compile, and the first call's costs, before the clock
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, run in cases.items():
            times[name].append(run())
    ops = {"naive": count_ops(lambda: raw(False)) / steps}  # a step's work, in a unit the clock does not drift in
    for n in (1, args.steps_per_call):  # a fit's own setup cancels in the difference of two lengths
        name = "project" if n == 1 else f"project_{n}"
        ops[name] = (count_ops(lambda: project(n, steps)) - count_ops(lambda: project(n, steps // 2))) / (steps - steps // 2)
    print(json.dumps({"step_ms": times, "steps": steps, "aten_ops_per_step": ops}))


def count_ops(fn) -> int:
    """How many aten operations `fn()` dispatches: a step's work in a unit the machine's load does not change."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return Count.n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=["naive", "best", "pythae", "floor", "alternated", "eval-raw", "eval-project"], required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="32")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--images", type=int, default=10000, help="eval: test images")
    parser.add_argument("--steps", type=int, default=200, help="alternated: steps a timing")
    parser.add_argument("--repeats", type=int, default=6, help="alternated: rounds of the four")
    parser.add_argument("--steps-per-call", type=int, default=10, help="alternated: the project's second setting")
    parser.add_argument("overrides", nargs="*", help="the project's config overrides")
    args = parser.parse_args()
    if args.loop in ("naive", "best"):
        train_loop(args, best=args.loop == "best")
    elif args.loop == "pythae":
        pythae_loop(args)
    elif args.loop == "floor":
        floor(args)
    elif args.loop == "alternated":
        alternated(args)
    else:
        evaluation(args, project=args.loop == "eval-project")


if __name__ == "__main__":
    main()
