"""``--devices`` naming a device this process does not have is refused (``mnas-train
--strategy=mirrored --devices=/gpu:7`` trained on the CPU without a word)."""

import pytest
import tensorflow as tf

from mnas_keras.training.errors import ConfigError
from mnas_keras.training.strategy import create_strategy


def test_unknown_device_is_named():
    known = [d.name for d in tf.config.list_logical_devices()]  # the reference: TensorFlow's own list
    assert "/device:GPU:7" not in known
    for strategy in ("mirrored", "one_device"):
        with pytest.raises(ConfigError, match=r"device '/gpu:7' \(--devices\) is not a device of this process; "
                                              r"expected some of \["):
            create_strategy(strategy, devices="/gpu:7")
    with pytest.raises(ConfigError, match="device 'cpu0'"):
        create_strategy("mirrored", devices="cpu0")


def test_known_device_still_works():
    cpu = tf.config.list_logical_devices("CPU")[0].name
    assert create_strategy("mirrored", devices=cpu).num_replicas_in_sync == 1
    assert create_strategy("one_device", devices="/cpu:0").num_replicas_in_sync == 1
