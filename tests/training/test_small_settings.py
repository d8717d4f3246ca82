"""Tiny settings a new user tries first: the generated detection shapes at a small size, and
a cosine schedule whose warmup outlasts a few-step run, end with a clear result.

Found by a new user's pass: ``mnas-train --recipe=ssdlite_shapes --image_size=16`` said
"zero-size array to reduction operation minimum which has no identity" (a shape too small
to cover one pixel), and ``--recipe=lraspp_shapes --train_steps=1`` said "total_steps (1)
must exceed warmup_steps (31)" without naming the setting to change.
"""

import numpy as np
import pytest

from mnas_keras.training.config import ScheduleConfig
from mnas_keras.training.data.detection import ShapesDetectionSource
from mnas_keras.training.errors import ConfigError
from mnas_keras.training.optim import build_schedule


def test_shapes_detection_at_16_pixels():
    source = ShapesDetectionSource(num_train=64, num_eval=8, image_size=16)
    images, boxes, classes = source._splits["train"]
    assert len(images) == 64 and all(img.shape == (16, 16, 3) for img in images)
    for b, c in zip(boxes, classes):
        assert len(b) == len(c)
        if len(b):  # every kept box covers at least one pixel, inside the image
            assert np.all(b[:, 2] - b[:, 0] >= 1 / 16) and np.all(b[:, 3] - b[:, 1] >= 1 / 16)
            assert b.min() >= 0 and b.max() <= 1


def test_cosine_warmup_longer_than_the_run_names_the_setting():
    config = ScheduleConfig(name="cosine", warmup_epochs=1.0)
    with pytest.raises(ConfigError, match=r"schedule.warmup_epochs=1.0 is 31 steps, as long as the whole run "
                                          r"\(1 steps\); shorten it, e.g. --overrides=schedule.warmup_epochs=0"):
        build_schedule(config, steps_per_epoch=31, global_batch_size=32, total_steps=1)
    assert build_schedule(ScheduleConfig(name="cosine", warmup_epochs=0.0), steps_per_epoch=31, global_batch_size=32,
                          total_steps=1).warmup_steps == 0
