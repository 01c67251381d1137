"""Burda et al. 2016's reproduction: the schedule against the paper's formula, the preset, and a tiny run of
the command itself (a few steps, a small k, on real digits in MNIST's files) so that it cannot rot."""

import csv
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, make_config, write_idx_set
from vae.optim import burda2016
from vae.schedules import burda2016_stages


def test_stages_are_three_to_the_i_epochs_scaled_by_the_budget():
    assert burda2016_stages(1.0) == [3**i for i in range(8)] and sum(burda2016_stages(1.0)) == 3280
    assert burda2016_stages(0.5) == [1, 2, 4, 14, 40, 122, 364, 1094]  # the budget the CPU reference used


def test_the_rate_in_stage_i_is_one_thousandth_times_ten_to_minus_i_over_seven():
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([weight], lr=1e-3)
    scheduler = burda2016(optimizer, budget=0.05)
    stage_of_epoch = [i for i, n in enumerate(burda2016_stages(0.05)) for _ in range(n)]
    for epoch, stage in enumerate(stage_of_epoch):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 10 ** (-stage / 7)), epoch
        optimizer.step()
        scheduler.step()


def test_the_preset_holds_the_papers_set_up(tmp_path):
    cfg = make_config(tmp_path, ["experiment=burda2016", "budget=0.5", "objective=iwae", "objective.k=5"])
    assert cfg.trainer.max_epochs == 1641 and cfg.data.batch_size == 20 and cfg.data.binarize
    assert list(cfg.model.hidden) == [200, 200] and cfg.model.activation == "tanh" and cfg.latent == 50
    assert cfg.optimizer.eps == 1e-4 and cfg.scheduler.scheduler.budget == 0.5
    assert cfg.objective.k == 5 and cfg.data.source == "mnist"


@pytest.mark.slow
def test_the_reproduction_command_runs_a_cell_and_writes_the_table(tmp_path):
    data = tmp_path / "data"
    write_idx_set(data, "MNIST", n_train=200, n_test=40)
    out = tmp_path / "out"
    tiny = ["trainer.max_epochs=1", "+trainer.limit_train_batches=3", "data.val_size=10", "trainer.enable_progress_bar=false"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "reproduce.py"), "--cells", "iwae1-k5,recipe", "--budget", "0.001",
         "--eval-k", "3", "--data-dir", str(data), "--out", str(out), *tiny],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "table.csv")))
    assert [row["cell"] for row in rows] == ["iwae1-k5", "recipe"] and "| iwae1-k5 | 85.54 |" in (out / "table.md").read_text()
    assert [row["batch_size"] for row in rows] == ["20", "128"]  # the presets' own: the paper's, the recipe's
    assert rows[1]["paper"] == "82.9" and "beyond_burda" in (out / "recipe" / "run" / ".hydra" / "overrides.yaml").read_text()
    for row in rows:
        assert float(row["ours"]) > 0 and row["eval_k"] == "3" and float(row["difference"]) == pytest.approx(
            float(row["ours"]) - float(row["paper"]), abs=0.011
        )


def test_the_ladder_cell_is_its_preset_against_lvaes_figure(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from reproduce import PRESETS, cell_overrides

    assert cell_overrides("ladder") == ["experiment=ladder_burda"] and PRESETS["ladder"][1] == 81.74
