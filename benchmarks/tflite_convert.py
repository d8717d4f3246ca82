"""Per-model cost of Keras -> TFLite conversion: the stock converter against mnas_keras's path.

For each model (224x224, float32) in one process, interleaved over ``--repeats`` rounds:

* ``stock``: ``tf.lite.TFLiteConverter.from_keras_model(model).convert()`` (Keras 3 exports a
  temporary SavedModel first);
* ``ours``: ``mnas_keras.tflite.convert(model)`` (one traced ``tf.function``, frozen graph,
  no SavedModel) including its built-in-ops check;
* ``ours+measure``: conversion plus a LiteRT latency measurement (10 warm-up, 50 runs, one
  thread): the whole cost of measuring one sampled architecture in a search.

Each pair is checked for equality: identical operator counts and LiteRT outputs equal to
float rounding on the same inputs (the speed-up must not change results).

Usage: ``python benchmarks/tflite_convert.py [--repeats=3] [--models=...]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

MODELS = {
    "mobilenet_v3_small": lambda: _ours("mobilenet_v3_small"),
    "mobilenet_v3_large": lambda: _ours("mobilenet_v3_large"),
    "mnasnet_a1": lambda: _ours("mnasnet_a1"),
    "mnasnet_small": lambda: _ours("mnasnet_small"),
    "keras:MobileNetV2": lambda: _keras("MobileNetV2"),
    "keras:NASNetMobile": lambda: _keras("NASNetMobile"),
}


def _ours(name):
    import mnas_keras

    return mnas_keras.create_model(name, input_shape=(224, 224, 3))


def _keras(name):
    import keras

    return getattr(keras.applications, name)(input_shape=(224, 224, 3), weights=None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()

    import tensorflow as tf

    from mnas_keras.tflite import benchmark, convert, list_operators, run_tflite

    names = args.models.split(",")
    models = {name: MODELS[name]() for name in names}
    x = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    times = {name: {"stock": [], "ours": [], "ours+measure": []} for name in names}
    checked = {}
    for _ in range(args.repeats):
        for name, model in models.items():
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # Keras prints its export summary
                stock = tf.lite.TFLiteConverter.from_keras_model(model).convert()
            times[name]["stock"].append(time.perf_counter() - start)
            start = time.perf_counter()
            ours = convert(model)
            times[name]["ours"].append(time.perf_counter() - start)
            start = time.perf_counter()
            benchmark(convert(model), warmup=10, runs=50)
            times[name]["ours+measure"].append(time.perf_counter() - start)
            if name not in checked:
                same_ops = list_operators(stock) == list_operators(ours)
                a, b = run_tflite(stock, x)[0], run_tflite(ours, x)[0]
                checked[name] = (same_ops, float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30)))

    print(f"{'model':<22}{'stock s':>9}{'ours s':>9}{'speed-up':>10}{'ours+measure s':>16}  same ops / max rel diff")
    for name in names:
        med = {k: statistics.median(v) for k, v in times[name].items()}
        same_ops, rel = checked[name]
        print(
            f"{name:<22}{med['stock']:>9.2f}{med['ours']:>9.2f}{med['stock'] / med['ours']:>9.2f}x"
            f"{med['ours+measure']:>16.2f}  {same_ops} / {rel:.1e}"
        )
    print(f"(median of {args.repeats} interleaved repeats; TF {tf.__version__})")


if __name__ == "__main__":
    main()
