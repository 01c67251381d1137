"""Several processes and lower precision: real DDP with gloo on 2 CPU processes, bf16 on the CPU."""

import json
import math
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from conftest import TINY, make_config
from vae.build import load_system
from vae.data import ImageData
from vae.training import train


@pytest.mark.slow
def test_ddp_on_two_processes_writes_one_run_folder(run_cli, tmp_path):
    args = [*TINY, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_epochs=2",
            "trainer.limit_train_batches=1.0", "hydra.run.dir=run",
            "steps_per_call=4"]  # fmt: skip  # several backward passes a call under DDP (one per call: the vqvae test)
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "run"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # one folder, not one per rank
    assert len(list(run_dir.glob("**/results.json"))) == 1 and len(list(run_dir.glob("**/metrics.csv"))) == 1
    assert [p.name for p in run_dir.glob("**/*.log")] == ["train.log"]  # one log, not one per rank

    # each rank takes half of the 4,000 training digits: 2000 / 32 = 63 steps per epoch, not 125
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2 * 63

    # test metrics are reduced over both ranks: they match a single-process test of the same checkpoint
    # on the same 128 digits (2 batches of 32 on each rank = 4 batches in one process)
    ddp = json.loads((run_dir / "results.json").read_text())
    system, cfg = load_system(run_dir / ddp["checkpoint"])
    single = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, limit_test_batches=4)
    (metrics,) = single.test(system, datamodule=instantiate(cfg.data), verbose=False)
    assert math.isclose(metrics["test/kl"], ddp["test/kl"], rel_tol=1e-4)  # no sampling in the KL: exact
    assert math.isclose(metrics["test/elbo"], ddp["test/elbo"], abs_tol=4.0)  # one z per digit: noise of ~1 nat


@pytest.mark.slow
def test_bf16_mixed_trains_on_cpu_with_float32_likelihood_and_kl(tmp_path):
    results = train(make_config(tmp_path, [*TINY, "trainer.precision=bf16-mixed", "model=conv"]))
    assert all(math.isfinite(v) for v in results.values() if isinstance(v, (int, float)))
    system, _ = load_system(tmp_path / "checkpoints" / "last.ckpt")
    x = torch.rand(4, 1, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model = system.model
        params = model.decoder(model.encode(x))
        assert params.dtype == torch.bfloat16  # the nets run in bf16 ...
        draw = model.draw(x)
        assert draw.log_px_z.dtype == draw.log_qz_x.dtype == draw.kl.dtype == torch.float32  # ... the densities do not


def test_in_memory_sets_live_on_the_trainers_device():
    """A GPU cannot run here: the meta device stands in for it, to show where the tensors go."""
    data = ImageData(batch_size=64)
    data.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("meta")), global_rank=0, world_size=1)
    data.setup()
    assert all(x.device.type == "meta" for x, _ in data.splits.values())
    x, y = next(iter(data.train_dataloader()))
    assert x.device.type == "meta" and x.shape == (64, 1, 28, 28) and y.device.type == "meta"
