"""A run whose loss goes non-finite stops, names the step, the term and the cause, and keeps its last good checkpoint."""

import re

import pytest

from conftest import TINY
from vae.checkpoints import load_checkpoint
from vae.errors import divergence_message


@pytest.mark.slow
def test_exploding_learning_rate_stops_with_the_step_and_term(tmp_path, run_cli):
    result = run_cli(*TINY, "trainer.limit_train_batches=20", "callbacks.steps.every_n_train_steps=1", "optimizer.lr=1e6")

    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    found = re.fullmatch(r"error: training diverged at step (\d+): (rec|kl) is (nan|inf); lower optimizer.lr.*", errors[0])
    assert found, errors[0]
    (run_dir,) = (tmp_path / "outputs").glob("*/*")
    last = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # saved every step until the blow-up
    assert last["global_step"] == int(found.group(1))  # the weights the failing step started from
    assert all(t.isfinite().all() for t in last["state_dict"].values())
    assert not (run_dir / "results.json").exists()


@pytest.mark.slow
def test_a_kl_weight_too_large_for_float32_is_blamed_not_the_learning_rate(run_cli):
    result = run_cli(*TINY, "beta.value=1e39")  # finite as a float64 setting, inf once it multiplies a float32 KL

    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: training diverged at step 0: loss is inf with beta = 1e+39: lower the KL weight (beta.*); "
                      "the checkpoints saved before this step are kept"]  # fmt: skip


def test_the_divergence_message_names_the_cause():
    def cause(**given):
        arguments = {"step": 7, "term": "rec", "value": float("nan"), "lr": 0.1, "beta": 1.0, "inputs_finite": True}
        return divergence_message(**(arguments | given))

    assert "lower optimizer.lr (now 0.1)" in cause()
    assert "the input batch holds NaN or inf" in cause(inputs_finite=False) and "optimizer.lr" not in cause(inputs_finite=False)
    assert "lower the KL weight" in cause(beta=float("inf")) and "optimizer.lr" not in cause(beta=float("inf"))
    assert "before any update, so not the learning rate" in cause(step=0)
