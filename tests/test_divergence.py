"""A run whose loss goes non-finite stops, names the step and the term, and keeps its last good checkpoint."""

import re

from conftest import TINY
from vae.checkpoints import load_checkpoint


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
