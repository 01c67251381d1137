"""The conditional VAE draws the digit it is asked for (issue 26, first hour, point 5).

`family=cvae`, then `src/sample.py ... label=7`: the samples of label 7 must be sevens at the default
latent size, not only with latent=2. An independent classifier judges them: the project's feature net
(`vae.metrics.features`), a small CNN trained on the embedded data's labelled train digits, which never
sees the VAE. With the one-hot label (`family.label_embedding=0`, the layout before the fix) the
decoder follows z: 0.3-0.6 of each label's samples after the README's run, 0.13 of label 7's after the
short run below (docs/reproductions.md#the-conditional-vaes-labels).
"""

import sys

import pytest
import torch

from conftest import ROOT, make_config

sys.path.insert(0, str(ROOT / "benchmarks"))
from cvae_labels import classifier, label_shares  # noqa: E402

# a fifth of the README's run, no pictures or log p(x)
SHORT = ["family=cvae", "trainer.max_epochs=10", "nll_samples=0", "callbacks=no_pictures",
         "trainer.enable_progress_bar=false"]  # fmt: skip


@pytest.fixture(scope="module")
def digit_classifier(tmp_path_factory):
    """A loader of (the feature net of mnist5k, its test accuracy), trained once for this file's tests."""
    cache = tmp_path_factory.mktemp("feature_nets")
    return lambda model: classifier(model, cache, steps=300)


@pytest.mark.slow  # 10 epochs and a classifier: 20 s
def test_a_briefly_trained_cvae_draws_the_digit_of_each_label(tmp_path, digit_classifier):
    """A fifth of the README's run (10 epochs at the defaults: latent 20, the MLP 784-400-20) already does."""
    import vae

    vae.train(make_config(tmp_path, SHORT))
    model = vae.load(tmp_path / "checkpoints" / "best.ckpt", device="cpu")
    net, accuracy = digit_classifier(model)
    assert accuracy > 0.9  # the judge itself reads held-out digits
    shares = label_shares(model, net, n=100)
    assert shares[7] >= 0.8 and min(shares) >= 0.7 and sum(shares) / 10 >= 0.8, [round(s, 2) for s in shares]


@pytest.mark.slow
def test_the_readmes_cvae_run_draws_the_digit_of_each_label(run_cli, tmp_path, digit_classifier):
    """The README's command as written (`src/train.py family=cvae`: 50 epochs, about a minute on 2 CPU cores)."""
    import vae

    result = run_cli("family=cvae", "hydra.run.dir=run", timeout=900)  # 30 s on a free machine; a loaded one is slower
    assert result.returncode == 0, result.stderr[-3000:]
    model = vae.load(tmp_path / "run" / "checkpoints" / "best.ckpt", device="cpu")
    net, accuracy = digit_classifier(model)
    shares = label_shares(model, net, n=200)
    assert accuracy > 0.9 and shares[7] >= 0.8 and min(shares) >= 0.8, [round(s, 2) for s in shares]


def test_a_cvae_checkpoint_from_before_the_label_embedding_loads_as_the_one_hot_layout(tmp_path):
    """A checkpoint whose config has no family.label_embedding was trained with the one-hot label: it loads as such."""
    import vae
    from vae.checkpoints import config_digest

    vae.train(make_config(tmp_path, ["debug=default", "family=cvae", "family.label_embedding=0", "model.hidden=[16]",
                                     "latent=3", "nll_samples=0"]))  # fmt: skip
    path = tmp_path / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["hyper_parameters"]["config"]["family"]["label_embedding"]  # as written before it existed
    checkpoint["config_digest"] = config_digest(checkpoint)
    torch.save(checkpoint, tmp_path / "old.ckpt")
    old, new = vae.load(tmp_path / "old.ckpt", device="cpu"), vae.load(path, device="cpu")
    assert old.model.label_embedding is None
    z, y = torch.randn(4, 3), torch.tensor([0, 3, 7, 9])
    torch.testing.assert_close(vae.decode(old, z, y), vae.decode(new, z, y))
    assert make_config(tmp_path, ["family=cvae"]).family.label_embedding == 32  # a new run gets the learned code
