"""The console and train.log of real runs whose output goes to a pipe: a line per epoch, no redraws, no library
noise, and the resume and stop lines in train.log."""

import csv
import re
import sys

import pytest

from conftest import TINY, run_script
from vae.errors import train_command

EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+)  step (\d+)  train/loss \S+  val/elbo (\S+)  val/rec \S+  val/kl \S+  beta")


def epoch_lines(text: str) -> list[tuple[int, int, int, float]]:
    return [(int(e), int(n), int(s), float(v)) for e, n, s, v in EPOCH_LINE.findall(text)]


@pytest.mark.slow
def test_a_redirected_run_logs_a_line_per_epoch_without_redraws_or_noise_and_resumes_with_a_line(tmp_path):
    args = [*TINY, "trainer.enable_progress_bar=true", "trainer.max_epochs=2", "nll_samples=2", "hydra.run.dir=run"]
    first = run_script("train.py", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    output = first.stdout + first.stderr
    assert "\r" not in output and "it/s" not in output  # the progress bar stays off when stdout is a pipe
    assert "litlogger" not in output and "deprecated" not in output
    run_dir = tmp_path / "run"
    log = (run_dir / "train.log").read_text()
    assert epoch_lines(first.stdout) == epoch_lines(log)  # the same lines on the console and in train.log
    with (run_dir / "metrics.csv").open() as f:
        val_elbo = [float(row["val/elbo"]) for row in csv.DictReader(f) if row["val/elbo"]]
    assert [(e, n, s) for e, n, s, _ in epoch_lines(log)] == [(1, 2, 3), (2, 2, 6)]
    assert [v for *_, v in epoch_lines(log)] == [round(v, 2) for v in val_elbo]

    resumed = run_script("train.py", f"resume={run_dir}", "trainer.max_epochs=3", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = (run_dir / "train.log").read_text()
    assert re.search(r"resumed from \S+last\.ckpt at epoch 3, step 6", log)
    assert [(e, n, s) for e, n, s, _ in epoch_lines(log)][-1] == (3, 3, 9)


@pytest.mark.slow
def test_a_diverged_run_writes_why_it_stopped_into_train_log(tmp_path):
    result = run_script("train.py", *TINY, "trainer.limit_train_batches=20", "optimizer.lr=1e6", "hydra.run.dir=run",
                        cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    log = (tmp_path / "run" / "train.log").read_text()
    stopped = re.search(r"stopped at step (\d+): (training diverged at step \d+: .*)", log)
    assert stopped and error == f"error: {stopped.group(2)}"
    assert "stopped at step" not in result.stdout  # the console shows run_cli's line only


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [("/usr/bin/vae-train", "vae-train"), ("src/train.py", "python src/train.py"), ("-c", "python src/train.py")],
)
def test_a_message_names_the_command_the_user_ran(monkeypatch, argv0, expected):
    monkeypatch.setattr(sys, "argv", [argv0, "resume=x"])
    assert train_command() == expected
