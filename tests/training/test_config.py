"""Configs, overrides, recipes and the CLI's config building (no training here)."""

import dataclasses
import json

import pytest

from mnas_keras.training import config as C
from mnas_keras.training.cli import build_config
from mnas_keras.training.errors import ConfigError
from mnas_keras.training.recipes import RECIPES, get_recipe


def test_configs_are_frozen():
    cfg = C.ExperimentConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.trainer.epochs = 3


def test_override_coerces_each_type_from_strings():
    cfg = C.override(
        C.ExperimentConfig(),
        [
            "trainer.epochs=7",
            "optimizer.momentum=0.5",
            "trainer.jit_compile=true",
            "optimizer.clipnorm=1",
            "optimizer.ema_decay=none",
            "model.blocks=r1_k3_s11_e1_i32_o16,r2_k3_s22_e6_i16_o24",
            "data.data_dir=/x=y",
        ],
    )
    assert cfg.trainer.epochs == 7 and isinstance(cfg.trainer.epochs, int)
    assert cfg.optimizer.momentum == 0.5
    assert cfg.trainer.jit_compile is True
    assert cfg.optimizer.clipnorm == 1.0 and isinstance(cfg.optimizer.clipnorm, float)
    assert cfg.optimizer.ema_decay is None
    assert cfg.model.blocks == ("r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24")
    assert cfg.data.data_dir == "/x=y"  # only the first '=' splits


def test_override_mapping_and_json_list():
    cfg = C.override(C.ExperimentConfig(), {"model.blocks": '["a", "b"]', "trainer.seed": 4})
    assert cfg.model.blocks == ("a", "b") and cfg.trainer.seed == 4


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("trainer.epoch=3", "'epoch' is not a field of TrainerConfig"),
        ("trainer.epochs=three", "trainer.epochs expects an integer; received 'three'"),
        ("trainer.epochs=0", "trainer.epochs must be > 0"),
        ("trainer.jit_compile=maybe", "expects a boolean"),
        ("runtime.strategy=mirored", "runtime.strategy must be one of"),
        ("optimizer.name=lamb", "optimizer.name must be one of"),
        ("trainer.epochs.x=1", "'epochs' has no sub-keys"),
        ("trainer=1", "is a section"),
        ("noequals", "must look like 'section.key=value'"),
        ("task.name=nonexistent", "task.name must be one of"),
        ("data.augmentation=mixup", "data.augmentation must be one of"),
    ],
)
def test_bad_overrides_name_the_key(override, fragment):
    with pytest.raises(ConfigError, match=None) as info:
        C.override(C.ExperimentConfig(), [override])
    assert fragment in str(info.value)


def test_json_round_trip_and_unknown_keys():
    cfg = get_recipe("mnasnet", ["trainer.epochs=2", "model.blocks=r1_k3_s11_e1_i32_o16"])
    text = C.to_json(cfg)
    assert C.from_json(text) == cfg
    data = json.loads(text)
    data["trainer"]["bogus"] = 1
    with pytest.raises(ConfigError, match="trainer.'bogus'|'bogus'"):
        C.from_dict(data)
    with pytest.raises(ConfigError, match="not valid JSON"):
        C.from_json("{")


def test_task_config_registry_switches_class():
    @dataclasses.dataclass(frozen=True)
    class ToyConfig(C.TaskConfig):
        name: str = "toy_task"
        anchors: int = 6

    C.register_task_config("toy_task", ToyConfig)
    try:
        cfg = C.override(C.ExperimentConfig(), ["task.name=toy_task", "task.anchors=9"])
        assert isinstance(cfg.task, ToyConfig) and cfg.task.anchors == 9
        assert C.from_dict(C.to_dict(cfg)) == cfg
    finally:
        del C.TASK_CONFIGS["toy_task"]


def test_mnasnet_recipe_has_the_published_values():
    cfg = get_recipe("mnasnet")
    opt, sched = cfg.optimizer, cfg.schedule
    assert (opt.name, opt.rho, opt.momentum, opt.epsilon) == ("rmsprop_tf1", 0.9, 0.9, 1e-3)
    assert (opt.weight_decay, opt.ema_decay) == (1e-5, 0.9999)
    assert (sched.base_learning_rate, sched.base_batch_size) == (0.016, 256)
    assert (sched.warmup_epochs, sched.decay_epochs, sched.decay_rate, sched.staircase) == (5.0, 2.4, 0.97, True)
    assert cfg.task.label_smoothing == 0.1 and cfg.model.dropout_rate == 0.2
    assert (cfg.trainer.epochs, cfg.trainer.global_batch_size) == (350, 1024)
    assert (cfg.data.image_size, cfg.data.augmentation, cfg.data.crop_padding) == (224, "inception", 32)
    large, small = get_recipe("mobilenet_v3_large"), get_recipe("mobilenet_v3_small")
    assert (large.schedule.base_learning_rate, large.trainer.global_batch_size) == (0.1, 4096)
    assert (small.schedule.base_learning_rate, small.optimizer.epsilon) == (0.01, 0.002)
    assert small.schedule.decay_epochs == 3.0 and small.schedule.decay_rate == 0.99


def test_every_recipe_round_trips_and_unknown_recipe_errors():
    for name in RECIPES:
        cfg = get_recipe(name)
        assert C.from_dict(C.to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="unknown recipe 'mnas'; expected one of"):
        get_recipe("mnas")


def test_cli_build_config_order_recipe_shortcuts_then_overrides(tmp_path):
    cfg = build_config(
        recipe="digits", blocks=["r1_k3_s11_e1_i32_o16"], batch_size=32, epochs=5,
        overrides=["trainer.epochs=6"], strategy="mirrored", devices="/cpu:0,/cpu:1",
    )
    assert cfg.model.blocks == ("r1_k3_s11_e1_i32_o16",)
    assert cfg.trainer.global_batch_size == 32 and cfg.trainer.epochs == 6
    assert (cfg.runtime.strategy, cfg.runtime.devices) == ("mirrored", "/cpu:0,/cpu:1")
    path = tmp_path / "c.json"
    path.write_text(C.to_json(cfg))
    assert build_config(config_file=str(path)) == cfg
    with pytest.raises(ConfigError, match="cannot be read"):
        build_config(config_file=str(tmp_path / "missing.json"))
