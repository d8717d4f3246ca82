"""Evaluating a sampled architecture for real: build, proxy-train, validate, convert, time.

:class:`ProxyEvaluator` follows the evaluator protocol of :mod:`mnas_keras.search.run.search`:

1. build ``mnas_keras.MnasNet(blocks, ...)`` (spatial size left open);
2. proxy-train it ``epochs`` epochs with ``model.fit`` (Adam) on a training split;
3. recalibrate batch-norm statistics on a few training images (a short proxy training
   leaves the moving averages far from the weights' statistics; without this step the
   validation accuracy of a 1-2 epoch model is near chance), then measure validation
   accuracy on a held-out part of the training data (the test split is kept for reports);
4. ask its latency source (:mod:`mnas_keras.search.latency.sources`): by default convert
   with :func:`mnas_keras.tflite.convert` (built-in ops only) and time it with
   :func:`mnas_keras.tflite.benchmark` (one thread, warm-up, median; by default in a
   separate process pinned to one core) at ``latency_input_size``; optionally int8 too;
   or a latency table's prediction.

A failure (conversion error, NaN loss, out of memory, a timeout, anything raised) becomes
``{"status": "failed", "reason": ...}`` and the search goes on. After each sample the Keras
session is cleared and the model and interpreter released, so memory stays flat.

Example:
    >>> evaluator = ProxyEvaluator(epochs=1, train_subset=64, val_subset=32, runs=5)
    >>> evaluator.config()["image_size"], evaluator.saves_artifacts
    (32, True)
"""

from __future__ import annotations

import copy
import gc
import math
import os
import shutil
import time
from typing import Any, Sequence

import numpy as np

from mnas_keras import _files
from mnas_keras.search.errors import SearchConfigError

LATENCY_OBJECTIVES = ("fp32", "int8")
TRAIN_MODES = ("auto", "graph", "eager", "fit")
#: ``train_mode="auto"`` trains eagerly up to this many steps: tracing a training step costs
#: about as much as 20 eager steps of a MnasNet-sized model on a 2-core machine.
EAGER_STEPS = 20
#: ``model_kwargs`` that are settings of the network recipe.
_RECIPE_KWARGS = ("head_filters", "activation", "include_preprocessing")


class _Timeout(Exception):
    pass


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"[:400]


def _failure_reason(err: BaseException) -> str:
    import tensorflow as tf

    from mnas_keras.tflite.errors import BenchmarkError, TFLiteConversionError

    if isinstance(err, _Timeout):
        return f"timeout: {err}"
    if isinstance(err, (MemoryError, tf.errors.ResourceExhaustedError)):
        return f"out_of_memory: {_first_line(err)}"
    if isinstance(err, TFLiteConversionError):
        return f"conversion_error: {_first_line(err)}"
    if isinstance(err, BenchmarkError):
        return f"benchmark_error: {_first_line(err)}"
    return f"error: {_first_line(err)}"


class ProxyEvaluator:
    """Builds, proxy-trains and measures sampled architectures.

    Args:
        data: ``((x_train, y_train), (x_test, y_test))`` arrays (images in [0, 255]); default
            scikit-learn digits upsampled to ``image_size`` (offline).
        image_size: training/validation resolution (digits are upsampled to it).
        classes: number of classes (default: from the labels).
        validation_fraction: share of the training data held out for validation.
        train_subset, val_subset: use only this many training / validation images.
        epochs, batch_size, learning_rate: proxy training with Adam.
        train_mode: ``"graph"`` (a ``tf.function`` training step), ``"eager"``, ``"fit"``
            (``model.fit``; about 10% slower than ``"graph"`` per sample) or ``"auto"``
            (eager for at most 20 steps, else graph). Tracing a step is a one-off cost per
            model worth about 20 eager steps; ``benchmarks/search_train_step.py`` measures it.
        bn_recalibration: training images used to re-estimate batch-norm statistics after
            training (0 = off).
        dropout_rate: dropout before the classifier during proxy training.
        stem_filters: the model's stem width (the space's).
        latency_input_size: resolution the latency is measured at (default ``image_size``).
        num_threads, warmup, runs: LiteRT benchmark settings (one thread like the paper).
        isolate_latency: measure in a separate process pinned to one core.
        int8: also measure full-integer int8 latency (``int8_latency_ms``).
        latency_objective: ``"fp32"`` or ``"int8"``: which latency the reward sees.
        timeout_s: a sample whose training runs longer fails with reason ``timeout``.
        seed: seeds weights and data order (one architecture always gets the same result).
        model_kwargs: extra ``MnasNet`` arguments (e.g. ``head_filters``).
        save_artifacts: write ``model.keras`` and ``model.tflite`` into the artifact folder
            the runner passes (needed to export without retraining).
        latency_mode: ``"measured"``, ``"predicted"`` or ``"predicted_then_measured"``
            (see :mod:`mnas_keras.search.latency.modes`); the table modes need
            ``latency_table`` (a :class:`~mnas_keras.search.latency.table.LatencyTable`) and
            the fp32 objective.
        latency_source: a :class:`~mnas_keras.search.latency.sources.LatencySource` to use
            instead of the one ``latency_mode`` names.
    """

    def __init__(self, *, data=None, image_size: int = 32, classes: int | None = None,
                 validation_fraction: float = 0.2, train_subset: int | None = None,
                 val_subset: int | None = None, epochs: int = 2, batch_size: int = 64,
                 learning_rate: float = 2e-3, train_mode: str = "auto", bn_recalibration: int = 512, dropout_rate: float = 0.0,
                 stem_filters: int = 32, latency_input_size: int | None = None, num_threads: int = 1,
                 warmup: int = 10, runs: int = 50, isolate_latency: bool = True, int8: bool = False,
                 latency_objective: str = "fp32", timeout_s: float | None = None, seed: int = 0,
                 model_kwargs: dict | None = None, save_artifacts: bool = True,
                 latency_mode: str = "measured", latency_table=None, latency_source=None):
        checks = [
            (isinstance(image_size, int) and image_size >= 8, f"image_size must be an integer >= 8; received {image_size!r}"),
            (isinstance(epochs, int) and epochs >= 1, f"epochs must be a positive integer; received {epochs!r}"),
            (isinstance(batch_size, int) and batch_size >= 1, f"batch_size must be a positive integer; received {batch_size!r}"),
            (learning_rate > 0, f"learning_rate must be > 0; received {learning_rate!r}"),
            (train_mode in TRAIN_MODES, f"train_mode must be one of {TRAIN_MODES}; received {train_mode!r}"),
            (0 < validation_fraction < 1, f"validation_fraction must be in (0, 1); received {validation_fraction!r}"),
            (latency_objective in LATENCY_OBJECTIVES,
             f"latency_objective must be one of {LATENCY_OBJECTIVES}; received {latency_objective!r}"),
            (latency_objective != "int8" or int8, "latency_objective='int8' needs int8=True"),
            (timeout_s is None or timeout_s > 0, f"timeout_s must be > 0 or None; received {timeout_s!r}"),
            (runs >= 1 and warmup >= 0 and num_threads >= 1,
             f"need runs >= 1, warmup >= 0, num_threads >= 1; received {runs}, {warmup}, {num_threads}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SearchConfigError(message)
        self.image_size = image_size
        self.validation_fraction = float(validation_fraction)
        self.train_subset, self.val_subset = train_subset, val_subset
        self.epochs, self.batch_size, self.learning_rate = epochs, batch_size, float(learning_rate)
        self.train_mode = train_mode
        self.bn_recalibration = int(bn_recalibration)
        self.dropout_rate = float(dropout_rate)
        self.stem_filters = int(stem_filters)
        self.latency_input_size = int(latency_input_size or image_size)
        self.num_threads, self.warmup, self.runs = num_threads, warmup, runs
        self.isolate_latency = bool(isolate_latency)
        self.int8 = bool(int8)
        self.latency_objective = latency_objective
        self.timeout_s = timeout_s
        self.seed = int(seed)
        self.model_kwargs = dict(model_kwargs or {})
        self.saves_artifacts = bool(save_artifacts)
        self._given_data = data is not None
        self._data = data
        self._splits = None
        self._classes = classes
        self.latency_source = (latency_source if latency_source is not None
                               else self._latency_source(latency_mode, latency_table))

    def _measured(self):
        from mnas_keras.search.latency.sources import MeasuredLatency

        return MeasuredLatency(self.latency_input_size, num_threads=self.num_threads, warmup=self.warmup,
                               runs=self.runs, isolate=self.isolate_latency, int8=self.int8,
                               objective=self.latency_objective)

    def _latency_source(self, mode, table):
        from mnas_keras.search.latency.modes import TableLatency, check_mode

        check_mode(mode)
        if mode == "measured":
            return self._measured()
        if table is None or not hasattr(table, "predict"):
            raise SearchConfigError(f"latency_mode={mode!r} needs latency_table (a LatencyTable)")
        if self.int8:
            raise SearchConfigError(f"latency_mode={mode!r} predicts one latency (the table's objective); "
                                    "int8=True (measure fp32 and int8) needs latency_mode='measured'")
        # The table's recipe must be this evaluator's (classes only change the classifier:
        # compared when the evaluator knows them without loading its data).
        mine = self.recipe_for(classes=self._classes or table.recipe.classes)
        wrong = table.recipe.differences(mine)
        if table.settings.get("num_threads") != self.num_threads:
            wrong["num_threads"] = (table.settings.get("num_threads"), self.num_threads)
        if wrong:
            raise SearchConfigError(f"the latency table was built for other settings (table, evaluator): {wrong}")
        return TableLatency(table, mode)

    def recipe_for(self, classes: int):
        """The :class:`~mnas_keras.search.latency.recipe.NetworkRecipe` of this evaluator's
        networks with ``classes`` outputs."""
        from mnas_keras.search.latency.recipe import NetworkRecipe

        kwargs = {k: self.model_kwargs[k] for k in _RECIPE_KWARGS if k in self.model_kwargs}
        return NetworkRecipe(input_size=self.latency_input_size, objective=self.latency_objective,
                             stem_filters=self.stem_filters, classes=int(classes), **kwargs)

    @property
    def recipe(self):
        """The :class:`~mnas_keras.search.latency.recipe.NetworkRecipe` of the networks this
        evaluator trains and measures (what :meth:`build` builds)."""
        return self.recipe_for(self.classes)

    @property
    def latency_mode(self) -> str:
        """The latency source's mode (``"measured"``, ``"predicted"``, ...)."""
        return getattr(self.latency_source, "mode", type(self.latency_source).__name__)

    @property
    def latency_table(self):
        """The :class:`LatencyTable` of the table modes (None when measuring)."""
        return getattr(self.latency_source, "table", None)

    def with_latency_runner(self, runner) -> "ProxyEvaluator":
        """A copy whose latency measurements run through ``runner(fn, *args, **kwargs)``
        (the Ray executor passes one that runs them on a latency device's node)."""
        routed = copy.copy(self)
        routed.latency_source = self.latency_source.with_runner(runner)
        return routed

    def finalize(self, records: list[dict], journal, rescore, log=print) -> None:
        """After the search loop: the latency source's ``finalize`` (with
        ``latency_mode="predicted_then_measured"`` the Pareto front's predicted latencies
        are measured until the front is all measured, see
        :func:`~mnas_keras.search.latency.modes.measure_front`); in the other modes nothing."""
        self.latency_source.finalize(records, journal, rescore, log=log)

    def measure_latency(self, blocks: Sequence[str]) -> float:
        """Converts and times an (untrained) network the way ``"measured"`` mode does; ms.
        Latency does not depend on the weights."""
        import keras

        model = self.build(blocks)
        try:
            return self._measured().latency(model)[0]["latency_ms"]
        finally:
            del model
            keras.backend.clear_session(free_memory=True)

    # ------------------------------------------------------------------- data
    def config(self) -> dict[str, Any]:
        """The settings that define results (stored with the run, checked on resume)."""
        return {
            "type": "ProxyEvaluator", "dataset": "arrays" if self._given_data else "digits",
            "image_size": self.image_size, "validation_fraction": self.validation_fraction,
            "train_subset": self.train_subset, "val_subset": self.val_subset, "epochs": self.epochs,
            "batch_size": self.batch_size, "learning_rate": self.learning_rate, "train_mode": self.train_mode,
            "bn_recalibration": self.bn_recalibration, "dropout_rate": self.dropout_rate,
            "stem_filters": self.stem_filters, "latency_input_size": self.latency_input_size,
            "num_threads": self.num_threads, "warmup": self.warmup, "runs": self.runs,
            "isolate_latency": self.isolate_latency, "int8": self.int8,
            "latency_objective": self.latency_objective, "timeout_s": self.timeout_s, "seed": self.seed,
            "model_kwargs": self.model_kwargs,
            **self.latency_source.config(),
        }

    def splits(self):
        """``(x_train, y_train), (x_val, y_val), (x_test, y_test)`` as float32/int32 arrays."""
        if self._splits is not None:
            return self._splits
        if self._data is None:
            from mnas_keras.datasets import load_digits

            self._data = load_digits(size=self.image_size, seed=self.seed)
        try:
            (x, y), (x_test, y_test) = self._data
        except (TypeError, ValueError):
            raise SearchConfigError("data must be ((x_train, y_train), (x_test, y_test))") from None
        x, y = np.asarray(x, "float32"), np.asarray(y).astype("int32").reshape(-1)
        x_test, y_test = np.asarray(x_test, "float32"), np.asarray(y_test).astype("int32").reshape(-1)
        if x.ndim != 4 or x.shape[-1] != 3 or len(x) != len(y):
            raise SearchConfigError(f"x_train must be (n, height, width, 3) with one label each; received {x.shape}")
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(x))
        n_val = max(1, int(round(len(x) * self.validation_fraction)))
        val, train = order[:n_val], order[n_val:]
        if self.train_subset:
            train = train[: self.train_subset]
        if self.val_subset:
            val = val[: self.val_subset]
        if self._classes is None:
            self._classes = int(max(y.max(), y_test.max() if len(y_test) else 0)) + 1
        self._splits = (x[train], y[train]), (x[val], y[val]), (x_test, y_test)
        return self._splits

    @property
    def classes(self) -> int:
        self.splits()
        return self._classes

    # ------------------------------------------------------------------ model
    def build(self, blocks: Sequence[str]):
        """The (untrained) Keras model of an architecture, with open spatial size."""
        extra = {k: v for k, v in self.model_kwargs.items() if k not in _RECIPE_KWARGS}
        return self.recipe.build(blocks, dropout_rate=self.dropout_rate, seed=self.seed, **extra)

    def _train(self, model, x, y) -> dict:
        import keras
        import tensorflow as tf

        n = len(x)
        batch = min(self.batch_size, n)
        steps_per_epoch = math.ceil(n / batch)
        mode = self.train_mode
        if mode == "auto":
            mode = "eager" if steps_per_epoch * self.epochs <= EAGER_STEPS else "graph"
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        if mode == "fit":
            return self._fit(model, x, y, batch, deadline)
        optimizer = keras.optimizers.Adam(self.learning_rate)
        loss_fn = keras.losses.SparseCategoricalCrossentropy()
        variables = model.trainable_variables
        # Slots made now: a tf.function whose first trace creates variables is traced twice.
        optimizer.build(variables)

        def step(images, labels):
            with tf.GradientTape() as tape:
                probs = model(images, training=True)
                loss = loss_fn(labels, probs)
                if model.losses:
                    loss = loss + tf.add_n(model.losses)
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables))
            hits = tf.cast(tf.equal(tf.argmax(probs, axis=-1, output_type=tf.int32), labels), tf.float32)
            return loss, tf.reduce_mean(hits)

        if mode == "graph":
            signature = [tf.TensorSpec((None,) + tuple(x.shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int32)]
            step = tf.function(step, input_signature=signature, jit_compile=False)
        rng = np.random.default_rng(self.seed)
        losses, accs = [], []
        for _ in range(self.epochs):
            order = rng.permutation(n)
            losses, accs = [], []
            for start in range(0, n, batch):
                index = order[start:start + batch]
                loss, acc = step(tf.constant(x[index]), tf.constant(y[index]))
                loss = float(loss)
                if not math.isfinite(loss):
                    raise FloatingPointError("the training loss became NaN or infinite")
                losses.append(loss)
                accs.append(float(acc) * len(index))
                if deadline is not None and time.monotonic() > deadline:
                    raise _Timeout(f"training exceeded {self.timeout_s} s")
        return {"train_loss": float(np.mean(losses)), "train_accuracy": float(np.sum(accs) / n),
                "train_mode": mode}

    def _fit(self, model, x, y, batch, deadline) -> dict:
        import keras

        timeout_s = self.timeout_s

        class Guard(keras.callbacks.Callback):
            def on_train_batch_end(self, step, logs=None):
                if deadline is not None and time.monotonic() > deadline:
                    raise _Timeout(f"training exceeded {timeout_s} s")

        # The metric as an object and the optimizer built: fit's first trace then creates no
        # variables, so it is not traced a second time.
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss="sparse_categorical_crossentropy",
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")], jit_compile=False)
        model.optimizer.build(model.trainable_variables)
        history = model.fit(x, y, batch_size=batch, epochs=self.epochs, shuffle=True, verbose=0,
                            callbacks=[Guard(), keras.callbacks.TerminateOnNaN()])
        loss = history.history["loss"][-1]
        if not math.isfinite(loss):
            raise FloatingPointError("the training loss became NaN or infinite")
        return {"train_loss": float(loss), "train_accuracy": float(history.history["accuracy"][-1]),
                "train_mode": "fit"}

    def _recalibrate(self, model, x) -> None:
        import keras

        count = min(self.bn_recalibration, len(x))
        if count <= 0:
            return
        layers = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
        saved = [l.momentum for l in layers]
        for layer in layers:
            layer.momentum = 0.0  # moving statistics := this batch's statistics
        try:
            model(x[:count], training=True)
        finally:
            for layer, momentum in zip(layers, saved):
                layer.momentum = momentum

    def accuracy(self, model, x, y, batch_size: int = 256) -> float:
        """Top-1 accuracy with eager forward passes (no graph tracing per model)."""
        correct = 0
        for start in range(0, len(x), batch_size):
            probs = np.asarray(model(x[start:start + batch_size], training=False))
            if not np.all(np.isfinite(probs)):
                raise FloatingPointError("the model's outputs are NaN or infinite")
            correct += int(np.sum(np.argmax(probs, axis=-1) == y[start:start + batch_size]))
        return correct / max(1, len(x))

    # -------------------------------------------------------------- protocol
    def evaluate(self, blocks: Sequence[str], artifact_dir: str | None = None) -> dict:
        """Builds, trains, validates and measures one architecture; never raises for a
        failing architecture (``status`` is ``"failed"`` with a ``reason``)."""
        import keras

        (x_train, y_train), (x_val, y_val), _ = self.splits()
        start = time.perf_counter()
        model = None
        result: dict[str, Any] = {}
        try:
            model = self.build(blocks)
            result["params"] = int(model.count_params())
            t0 = time.perf_counter()
            result.update(self._train(model, x_train, y_train))
            result["train_seconds"] = time.perf_counter() - t0
            self._recalibrate(model, x_train)
            result["accuracy"] = self.accuracy(model, x_val, y_val)
            latency, fp32, int8 = self.latency_source.latency(model, x_train)
            result.update(latency)
            if artifact_dir is not None:
                self._save(model, fp32, int8, artifact_dir)
            result["status"] = "ok"
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:  # noqa: BLE001 - every failure is recorded, the search goes on
            result = {**result, "status": "failed", "reason": _failure_reason(err)}
            result.pop("accuracy", None)
            if artifact_dir is not None:
                shutil.rmtree(artifact_dir, ignore_errors=True)
        finally:
            del model
            keras.backend.clear_session(free_memory=True)
            gc.collect()
        result["eval_seconds"] = time.perf_counter() - start
        return result

    def _save(self, model, fp32: bytes, int8: bytes | None, folder: str) -> None:
        from mnas_keras.tflite import save

        os.makedirs(folder, exist_ok=True)
        fd, tmp = _files.mkstemp(dir=folder, suffix=".keras")
        os.close(fd)
        model.save(tmp)
        os.replace(tmp, os.path.join(folder, "model.keras"))
        if fp32 is not None:  # table modes convert at export time only
            save(fp32, os.path.join(folder, "model.tflite"))
        if int8 is not None:
            save(int8, os.path.join(folder, "model_int8.tflite"))

    # ----------------------------------------------------------------- export
    def export(self, entries: list[dict], folder: str) -> dict:
        """Copies (or rebuilds) each exported architecture's ``.keras`` and ``.tflite``, then
        measures them all again, interleaved and with more runs, for the latency report."""
        from mnas_keras.search.evaluation.export import export_models

        return export_models(self, entries, folder)
