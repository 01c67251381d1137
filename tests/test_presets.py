"""`experiment=` presets hold only deltas and compose; `debug=default` is a short run with no pictures."""

import csv

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import CONF, TINY, make_config
from vae.training import train

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def flat(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}"""
    items: dict[str, object] = {}
    for name, value in tree.items():
        items |= flat(value, f"{prefix}{name}.") if isinstance(value, dict) else {f"{prefix}{name}": value}
    return items


def test_the_readme_examples_are_presets():
    assert {"conv16", "warmup", "cifar10", "mnist_bench"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_an_experiment_holds_only_deltas_and_each_one_lands(tmp_path, name):
    preset = yaml.safe_load((CONF / "experiment" / f"{name}.yaml").read_text())
    choices = {k.removeprefix("override /"): v for entry in preset.pop("defaults", []) for k, v in entry.items()}
    default = make_config(tmp_path)
    composed = make_config(tmp_path, [f"experiment={name}"])
    default_choices = yaml.safe_load((CONF / "train.yaml").read_text())["defaults"]
    default_choices = {k: v for entry in default_choices if isinstance(entry, dict) for k, v in entry.items()}
    for group, option in choices.items():
        assert default_choices[group] != option, f"{name}: {group}={option} is already the default"
        alone = make_config(tmp_path, [f"{group}={option}"])
        assert composed[group].get("_target_") == alone[group].get("_target_")
    unresolved = OmegaConf.to_container(composed, resolve=False)
    for key, value in flat(preset).items():
        if isinstance(value, str) and value.startswith("${"):  # an interpolation lands as itself
            landed = unresolved
            for part in key.split("."):
                landed = landed[part]
        else:
            landed = OmegaConf.select(composed, key)
        assert landed == value, f"{name}: {key} did not land"
        base = make_config(tmp_path, [f"{g}={o}" for g, o in choices.items()]) if choices else default
        assert OmegaConf.select(base, key) != value, f"{name}: {key}={value} is no delta"


def test_a_command_line_override_beats_the_preset(tmp_path):
    assert make_config(tmp_path, ["experiment=conv16", "latent=3"]).latent == 3


def test_debug_run_is_short_and_draws_no_pictures(tmp_path):
    cfg = make_config(tmp_path, TINY)
    train(cfg)
    with open(tmp_path / "metrics.csv", newline="") as file:
        steps = {int(row["step"]) for row in csv.DictReader(file) if row["train/loss"]}
    assert len(steps) == cfg.trainer.limit_train_batches and cfg.trainer.max_epochs == 1
    assert not (tmp_path / "images").exists() and (tmp_path / "checkpoints" / "best.ckpt").is_file()


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "debug").glob("*.yaml")))
def test_each_debug_option_builds_a_cpu_trainer(tmp_path, name):
    from vae.build import build_trainer

    trainer = build_trainer(make_config(tmp_path, [f"debug={name}"]))
    assert trainer.accelerator.__class__.__name__ == "CPUAccelerator" and trainer.max_epochs >= 1
