"""Shared pieces of the detection task tests: a tiny SSDLite, small data sources and one
short training run shared by the training and the TFLite tests."""

import atexit
import functools
import io
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from mnas_keras.training import get_recipe
from mnas_keras.training.data.detection import DetectionSource, ShapesDetectionSource

TINY = [
    "trainer.progress=false", "trainer.export=false", "trainer.global_batch_size=8",
    "trainer.steps_per_loop=2", "trainer.train_steps=4", "trainer.checkpoint_every_steps=2",
    "trainer.deterministic=true", "trainer.seed=3", "trainer.eval_steps=1", "task.max_boxes=6",
    "data.image_size=32", "optimizer.ema_decay=0.9", "task.augmentation=ssd",
    "schedule.name=constant", "schedule.warmup_epochs=0", "task.num_visuals=0",
]


def tiny_config(*extra):
    return get_recipe("ssdlite_shapes", TINY + list(extra))


def tiny_detector(num_classes=4):
    import keras

    from mnas_keras.heads import SSDLite

    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="c1")(x)
    x = keras.layers.BatchNormalization(name="c1_bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(16, 3, strides=4, padding="same", name="c4")(x)
    x = keras.layers.BatchNormalization(name="c4_bn")(x)
    x = keras.layers.ReLU(name="c4_relu")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="c5")(x)
    backbone = keras.Model(inp, x)
    return SSDLite(backbone, num_classes, feature_layers=("c4_relu", "c5"), extra_filters=(16, 8))


def shapes(n=16, size=32):
    return ShapesDetectionSource(num_train=n, num_eval=8, image_size=size, seed=0)


class EmptySource(DetectionSource):
    """Images without any box (all anchors background)."""

    num_classes, category_ids = 4, (1, 2, 3, 4)

    def num_examples(self, split):
        return 16

    def dataset(self, split, *, shuffle_files=False, seed=0, input_context=None):
        images = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3), dtype=np.uint8)
        return tf.data.Dataset.from_tensor_slices({"image": images}).map(lambda e: {
            "image": e["image"], "boxes": tf.zeros([0, 4]), "classes": tf.zeros([0], tf.int32),
            "image_id": tf.constant(1, tf.int64)})


@functools.lru_cache(maxsize=1)
def trained_shapes_detector():
    """SSDLite MobileNetV3-Small trained 80 steps (batch 16) on 32 generated 64x64 images.

    Run once per test session. Returns ``{"model", "source", "untrained", "trained"}``: the
    trained model, the source, and the COCO metrics (pycocotools) before and after training,
    evaluated on the 32 training images (``data.eval_split=train``) with score threshold 1e-8.
    """
    from mnas_keras.training import Trainer
    from mnas_keras.training.tasks.detection import DetectionTask

    config = get_recipe("ssdlite_shapes", [
        "trainer.progress=false", "trainer.export=false", "data.eval_split=train", "task.augmentation=none",
        "task.score_threshold=1e-8", "trainer.global_batch_size=16", "trainer.steps_per_loop=20",
        "task.reduce_boxes_in_lowest_layer=false", "schedule.warmup_epochs=0", "trainer.train_steps=80",
        "trainer.seed=0", "task.num_visuals=0", "data.image_size=64",
        # one checkpoint at the end, not one per 2-step epoch (40 saves took ~30 s)
        "trainer.checkpoint_every_steps=80",
    ])
    source = shapes(n=32, size=64)
    model_dir = tempfile.mkdtemp(prefix="ssdlite_shapes_")
    atexit.register(shutil.rmtree, model_dir, True)
    trainer = Trainer(config, model_dir, task=DetectionTask(config, source=source), stream=io.StringIO())
    untrained = trainer.evaluate()
    trained = trainer.train()["eval"]
    return {"model": trainer.model, "source": source, "untrained": untrained, "trained": trained}
