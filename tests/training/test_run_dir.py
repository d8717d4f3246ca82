"""mnas-train's run directory: config.json written atomically; a resume whose run definition
changed is refused naming the keys, unless the change is allowed explicitly."""

import io
import json
import os

import pytest

from mnas_keras.training import checkpoints
from mnas_keras.training.checkpoints import check_run_config, config_changes, write_run_config
from mnas_keras.training.config import override, to_dict
from mnas_keras.training.errors import CheckpointError
from mnas_keras.training.recipes import get_recipe


def _config(*overrides):
    return get_recipe("digits", ["trainer.train_steps=10", "data.image_size=32", *overrides])


def _fake_checkpoint(model_dir):
    """What tf.train.latest_checkpoint needs to see a checkpoint: the state file and an index."""
    with open(os.path.join(model_dir, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-5"\nall_model_checkpoint_paths: "ckpt-5"\n')
    open(os.path.join(model_dir, "ckpt-5.index"), "wb").close()


def test_config_changes_by_hand():
    old = {"trainer": {"global_batch_size": 32, "seed": 0}, "schedule": {"base_learning_rate": 0.1}}
    new = {"trainer": {"global_batch_size": 64, "seed": 0, "added_later": 1}, "schedule": {"base_learning_rate": 0.2}}
    assert config_changes(old, new) == ["schedule.base_learning_rate: 0.1 -> 0.2",
                                        "trainer.global_batch_size: 32 -> 64"]


@pytest.mark.parametrize(
    "change, key",
    [("trainer.global_batch_size=48", "trainer.global_batch_size"),
     ("schedule.base_learning_rate=0.5", "schedule.base_learning_rate"),
     ("trainer.seed=7", "trainer.seed"),
     ("trainer.train_steps=20", "trainer.train_steps")],
)
def test_changed_run_definition_refused_naming_key(tmp_path, change, key):
    write_run_config(str(tmp_path), _config())
    with pytest.raises(CheckpointError, match=rf"different run \({key}: .* --allow_changes={key}$"):
        check_run_config(str(tmp_path), _config(change), has_checkpoint=True)
    check_run_config(str(tmp_path), _config(change), has_checkpoint=True, allow_changes=[key])
    check_run_config(str(tmp_path), _config(change), has_checkpoint=True, allow_changes=[key.split(".")[0]])
    check_run_config(str(tmp_path), _config(change), has_checkpoint=False)  # nothing to resume


def test_where_and_how_may_change(tmp_path):
    write_run_config(str(tmp_path), _config())
    moved = _config("data.data_dir=/elsewhere", "runtime.strategy=mirrored", "trainer.eval_steps=3",
                    "trainer.progress=false")
    check_run_config(str(tmp_path), moved, has_checkpoint=True)


def test_config_json_write_is_atomic(tmp_path, monkeypatch):
    first = _config()
    path = write_run_config(str(tmp_path), first)
    before = open(path).read()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(checkpoints.json, "dumps", killed)
    with pytest.raises(KeyboardInterrupt):
        write_run_config(str(tmp_path), override(first, ["trainer.seed=9"]))
    monkeypatch.undo()
    assert open(path).read() == before  # the old file is whole
    assert json.load(open(path)) == json.loads(json.dumps(to_dict(first)))
    write_run_config(str(tmp_path), override(first, ["trainer.seed=9"]))
    assert json.load(open(path))["trainer"]["seed"] == 9
    assert os.listdir(tmp_path) == ["config.json"]  # no temporary file left behind


def test_trainer_refuses_before_building(tmp_path):
    from mnas_keras.training.trainer import Trainer

    write_run_config(str(tmp_path), _config())
    _fake_checkpoint(str(tmp_path))
    with pytest.raises(CheckpointError, match=r"trainer.global_batch_size: \d+ -> 8"):
        Trainer(_config("trainer.global_batch_size=8"), str(tmp_path), stream=io.StringIO())
    assert json.load(open(tmp_path / "config.json")) == json.loads(json.dumps(to_dict(_config())))
