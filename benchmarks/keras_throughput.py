"""Keras inference throughput (batch 32, CPU) of this package's MobileNetV3 against
keras.applications', measured in one run with interleaved repeats.

    python benchmarks/keras_throughput.py [--size 224] [--repeats 5]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mnas_keras.applications import MobileNetV3Large, MobileNetV3Small  # noqa: E402


def images_per_second(fn, x, steps):
    fn(x)  # warm-up / trace
    start = time.perf_counter()
    for _ in range(steps):
        fn(x)
    return steps * x.shape[0] / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    x = np.random.default_rng(0).uniform(0, 255, (args.batch, args.size, args.size, 3)).astype("float32")
    print(f"TF {tf.__version__}, Keras {keras.__version__}, batch {args.batch}, {args.size}x{args.size}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'model':<18} {'ours img/s':>11} {'keras img/s':>12} {'ratio':>7}")
    for ours_fn, ref_fn in [(MobileNetV3Large, keras.applications.MobileNetV3Large),
                            (MobileNetV3Small, keras.applications.MobileNetV3Small)]:
        shape = (args.size, args.size, 3)
        ours = ours_fn(input_shape=shape, weights=None)
        ref = ref_fn(input_shape=shape, weights=None)
        ours.set_weights(ref.get_weights())
        ours_call = tf.function(lambda t, m=ours: m(t, training=False))
        ref_call = tf.function(lambda t, m=ref: m(t, training=False))
        a, b = [], []
        for _ in range(args.repeats):  # interleaved
            a.append(images_per_second(ours_call, x, args.steps))
            b.append(images_per_second(ref_call, x, args.steps))
        ours_ips, ref_ips = float(np.median(a)), float(np.median(b))
        print(f"{ours_fn.__name__:<18} {ours_ips:>11.1f} {ref_ips:>12.1f} {ours_ips / ref_ips:>7.3f}")


if __name__ == "__main__":
    main()
