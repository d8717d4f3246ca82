"""Training throughput: mnas_keras.training's loop against ``model.fit``, XLA off and on.

Same model architecture, optimizer (RMSPropTF1, same schedule), data (one cached tf.data
pipeline of digits upsampled to the model's size, repeated), batch and steps per
``tf.function`` call (``steps_per_loop`` = ``steps_per_execution``), in one process. The
loop is measured twice: "parity" (no EMA, no weight decay: the work ``fit`` does) and
"recipe" (EMA over weights and BN statistics + TF1 weight decay, as the MnasNet recipe
trains). Both are timed in steady state: ``fit`` from the end of its first
``steps_per_execution`` call to the end of its last (a callback), the loop over whole calls
after a warm-up call. Repeats are interleaved; the table shows medians and loop / fit ratios.

    .venv/bin/python benchmarks/training_throughput.py --model=mnasnet_small --alpha=0.5 \\
        --image_size=32 --batch=64 --steps_per_loop=20 --loops=5 --repeats=3
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import tensorflow as tf

from mnas_keras.training import Trainer, get_recipe
from mnas_keras.training.data import DigitsSource, train_dataset
from mnas_keras.training.optim import build_optimizer, build_schedule
from mnas_keras.training.tasks import build_classifier


def make_dataset(image_size: int, batch: int) -> tf.data.Dataset:
    ds = train_dataset(DigitsSource(), "train", batch_size=batch, image_size=image_size,
                       augmentation="none", crop_padding=0)
    return ds.cache().repeat().prefetch(tf.data.AUTOTUNE)


def config_for(args, jit: bool, recipe: bool):
    return get_recipe("digits", [
        f"model.name={args.model}", f"model.alpha={args.alpha}", f"data.image_size={args.image_size}",
        f"trainer.global_batch_size={args.batch}", f"trainer.steps_per_loop={args.steps_per_loop}",
        f"trainer.jit_compile={str(jit).lower()}", "trainer.progress=false",
        f"optimizer.ema_decay={'0.9999' if recipe else 'none'}",
        f"optimizer.weight_decay={'1e-5' if recipe else '0'}",
    ])


class LoopRunner:
    def __init__(self, args, jit, recipe, dataset, model_dir):
        self.trainer = Trainer(config_for(args, jit, recipe), model_dir)
        self.trainer._build()
        self.iterator = iter(self.trainer.strategy.experimental_distribute_dataset(dataset))
        self.n = tf.constant(args.steps_per_loop, tf.int32)
        self.run(1)  # trace + first execution

    def run(self, loops) -> float:
        t0 = time.perf_counter()
        for _ in range(loops):
            self.trainer._train_loop(self.iterator, self.n)  # returns numbers: synchronous
        return time.perf_counter() - t0


class _BatchEndTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())  # once per steps_per_execution call


class FitRunner:
    """``model.fit``, timed between the ends of its first and last calls (steady state)."""

    def __init__(self, args, jit, dataset):
        cfg = config_for(args, jit, recipe=False)
        self.model = build_classifier(cfg.model, image_size=args.image_size, num_classes=10)
        schedule = build_schedule(cfg.schedule, steps_per_epoch=22, global_batch_size=args.batch,
                                  total_steps=10**6)
        self.model.compile(
            optimizer=build_optimizer(cfg.optimizer, schedule),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"], jit_compile=jit, steps_per_execution=args.steps_per_loop,
        )
        self.dataset, self.steps_per_loop = dataset, args.steps_per_loop
        self.run(1)

    def run(self, loops) -> float:
        timer = _BatchEndTimes()
        self.model.fit(self.dataset, epochs=1, steps_per_epoch=(loops + 1) * self.steps_per_loop,
                       verbose=0, callbacks=[timer])
        return timer.times[-1] - timer.times[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mnasnet_small")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps_per_loop", type=int, default=20)
    parser.add_argument("--loops", type=int, default=5, help="loop calls per timed repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--xla", default="off,on")
    args = parser.parse_args()
    import tempfile

    dataset = make_dataset(args.image_size, args.batch)
    images = args.loops * args.steps_per_loop * args.batch
    rows = []
    for xla in [x == "on" for x in args.xla.split(",")]:
        runners = {
            "fit": FitRunner(args, xla, dataset),
            "loop (parity)": LoopRunner(args, xla, False, dataset, tempfile.mkdtemp()),
            "loop (recipe)": LoopRunner(args, xla, True, dataset, tempfile.mkdtemp()),
        }
        times = {name: [] for name in runners}
        for _ in range(args.repeats):
            for name, runner in runners.items():
                times[name].append(runner.run(args.loops))
        speed = {name: images / statistics.median(t) for name, t in times.items()}
        rows.append((xla, speed))
    print(f"model {args.model} alpha {args.alpha} at {args.image_size}x{args.image_size}, batch "
          f"{args.batch}, {args.steps_per_loop} steps per call, median of {args.repeats} interleaved "
          f"repeats of {args.loops} calls")
    print("| XLA | fit img/s | loop (parity) img/s | loop (recipe) img/s | parity / fit | recipe / fit |")
    print("|---|---|---|---|---|---|")
    for xla, s in rows:
        print(f"| {'on' if xla else 'off'} | {s['fit']:.0f} | {s['loop (parity)']:.0f} | "
              f"{s['loop (recipe)']:.0f} | {s['loop (parity)'] / s['fit']:.2f} | "
              f"{s['loop (recipe)'] / s['fit']:.2f} |")


if __name__ == "__main__":
    main()
