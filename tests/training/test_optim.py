"""The recipe's optimizer, schedule, weight decay and weight averaging against their references."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnas_keras.training.config import OptimizerConfig, ScheduleConfig
from mnas_keras.training.optim import (
    ExponentialMovingAverage,
    RMSPropTF1,
    WarmupCosineDecay,
    averaged_variables,
    build_optimizer,
    build_schedule,
    decay_variables,
    l2_weight_decay,
)
from mnas_keras.training.tasks import StepContext, prepare_gradients


def _gradients(steps, shape, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype("float32") for _ in range(steps)]


def test_rmsprop_tf1_matches_tf1_rmsprop_optimizer():
    init = np.linspace(-1, 1, 6).astype("float32").reshape(2, 3)
    grads = _gradients(5, (2, 3))
    ours = keras.Variable(init)
    opt = RMSPropTF1(learning_rate=0.05, rho=0.9, momentum=0.9, epsilon=1e-3)
    ref = tf.Variable(init)
    tf1 = tf.compat.v1.train.RMSPropOptimizer(0.05, decay=0.9, momentum=0.9, epsilon=1e-3)
    for g in grads:
        opt.apply([g], [ours])
        tf1.apply_gradients([(tf.constant(g), ref)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), ref.numpy(), rtol=1e-5, atol=1e-6)
    # Keras' own RMSprop (accumulator from zeros) takes a visibly different path.
    plain = keras.Variable(init)
    keras_opt = keras.optimizers.RMSprop(0.05, rho=0.9, momentum=0.9, epsilon=1e-3)
    for g in grads:
        keras_opt.apply([g], [plain])
    assert np.abs(keras.ops.convert_to_numpy(plain) - ref.numpy()).max() > 1e-2


def test_rmsprop_tf1_serializes():
    opt = RMSPropTF1(learning_rate=0.1, rho=0.8, momentum=0.5, epsilon=0.01)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(clone) is RMSPropTF1 and clone.rho == 0.8 and clone.momentum == 0.5


def _tf1_schedule(step, peak, warmup_steps, decay_steps, rate):
    # tensorflow/tpu mnasnet_main: exponential_decay(staircase) from step 0, linear warmup.
    decayed = peak * rate ** (step // decay_steps)
    return peak * step / warmup_steps if step < warmup_steps else decayed


def test_schedule_follows_tpu_mnasnet_formula():
    steps_per_epoch, batch = 125, 1024
    schedule = build_schedule(ScheduleConfig(), steps_per_epoch=steps_per_epoch,
                              global_batch_size=batch, total_steps=350 * steps_per_epoch)
    peak = 0.016 * batch / 256
    warmup, decay = 5 * steps_per_epoch, int(2.4 * steps_per_epoch)
    for step in [0, 1, 100, 624, 625, 899, 900, 5000, 43749]:
        expected = _tf1_schedule(step, peak, warmup, decay, 0.97)
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5), step


def test_cosine_and_constant_schedules():
    cosine = build_schedule(ScheduleConfig(name="cosine", warmup_epochs=1), steps_per_epoch=10,
                            global_batch_size=256, total_steps=110)
    assert isinstance(cosine, WarmupCosineDecay)
    assert float(cosine(5)) == pytest.approx(0.008)
    assert float(cosine(10)) == pytest.approx(0.016)
    assert float(cosine(60)) == pytest.approx(0.008, rel=1e-4)
    assert float(cosine(110)) == pytest.approx(0.0, abs=1e-7)
    constant = build_schedule(ScheduleConfig(name="constant", warmup_epochs=0), steps_per_epoch=10,
                              global_batch_size=512, total_steps=100)
    assert [float(constant(s)) for s in (0, 50, 99)] == pytest.approx([0.032] * 3)


def _bn_model():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, name="fc")(x)
    return keras.Model(inputs, outputs)


def test_weight_decay_is_tf1_l2_loss_on_non_bn_weights():
    model = _bn_model()
    paths = sorted(v.path for v in decay_variables(model))
    assert paths == ["conv/bias", "conv/kernel", "fc/bias", "fc/kernel"]  # conv + dense, no gamma/beta
    # The expected value from the layers' own weights and TF1's tf.nn.l2_loss.
    weights = [model.get_layer(n).weights for n in ("conv", "fc")]
    expected = 1e-5 * sum(float(tf.nn.l2_loss(w.value)) for ws in weights for w in ws)
    assert float(l2_weight_decay(decay_variables(model), 1e-5)) == pytest.approx(expected, rel=1e-6)


def test_ema_covers_bn_statistics_and_uses_tf1_num_updates():
    model = _bn_model()
    variables = averaged_variables(model)
    paths = {v.path for v in variables}
    assert {"bn/moving_mean", "bn/moving_variance", "conv/kernel"} <= paths
    ema = ExponentialMovingAverage(variables, decay=0.9999, dynamic_decay=True)
    mean = model.get_layer("bn").moving_mean
    index = [v.path for v in variables].index("bn/moving_mean")
    start = ema.averages[index].numpy().copy()
    model(np.random.default_rng(0).normal(size=(8, 4, 4, 2)).astype("float32") + 3.0, training=True)
    ema.update()  # n = 1: decay = min(0.9999, 2 / 11)
    decay = 2.0 / 11.0
    expected = decay * start + (1 - decay) * keras.ops.convert_to_numpy(mean)
    np.testing.assert_allclose(ema.averages[index].numpy(), expected, rtol=1e-6)
    assert not np.allclose(ema.averages[index].numpy(), start)
    before = keras.ops.convert_to_numpy(mean).copy()
    with ema.swapped():
        np.testing.assert_allclose(keras.ops.convert_to_numpy(mean), expected, rtol=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(mean), before)


def test_prepare_gradients_clips_by_global_norm_of_all_gradients():
    grads = [tf.constant([3.0, 0.0]), None, tf.constant([0.0, 4.0])]
    context = StepContext(global_batch_size=1, clipnorm=1.0)
    clipped = prepare_gradients(grads, keras.optimizers.SGD(), context)
    assert clipped[1] is None
    np.testing.assert_allclose(clipped[0].numpy(), [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped[2].numpy(), [0.0, 0.8], rtol=1e-6)
    # Mixed float16: gradients of the scaled loss are unscaled before clipping, rescaled after.
    lso = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(), initial_scale=8.0)
    scaled = prepare_gradients([tf.constant([24.0, 32.0])], lso, context)
    np.testing.assert_allclose(scaled[0].numpy(), [4.8, 6.4], rtol=1e-6)


@pytest.mark.parametrize("name, cls", [("rmsprop_tf1", RMSPropTF1), ("rmsprop", keras.optimizers.RMSprop),
                                       ("sgd", keras.optimizers.SGD), ("adam", keras.optimizers.Adam)])
def test_build_optimizer_by_name(name, cls):
    assert type(build_optimizer(OptimizerConfig(name=name), 0.1)) is cls
