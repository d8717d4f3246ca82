"""The NetAdapt loop (NetAdapt Algorithm 1 with MobileNetV3's settings, section 4.2).

Each iteration, with ``L`` the current latency and ``delta`` = ``delta_fraction`` x the seed's
latency (MobileNetV3: 1%):

1. for every proposal (:func:`~mnas_keras.search.netadapt.proposals.proposals`: each
   expansion layer, each residual width group) take the largest width, in steps of 8 below
   the current one, whose network's latency (the latency source) is at most ``L - delta``;
2. build it with the parent's weights truncated (:func:`~mnas_keras.search.netadapt.surgery.shrink`)
   and fine-tune it ``steps`` steps (SGD with momentum 0.9, as NetAdapt's reference code);
   with ``evaluate="adaptive_bn"`` (EagleEye, Li et al., ECCV 2020) only recompute its
   batch-norm statistics, and fine-tune just the chosen proposal;
3. keep the proposal with the largest accuracy change per millisecond saved
   (``criterion="per_latency"``, MobileNetV3) or the highest accuracy (``"accuracy"``,
   NetAdapt), accuracy measured on a validation split carved from the training data;

until the latency is at most the target; then an optional longer fine-tune
(``final_steps``). When no proposal can cut ``delta`` (NetAdapt stops there), a
``min_delta_fraction`` halves ``delta`` and retries the iteration while it stays at or above
that fraction, as NNI's ``NetAdaptPruner`` halves its per-iteration sparsity when no layer can
take it (journaled as ``{"event": "delta"}``; the halved step is kept from then on).
NetAdapt's published effect: up to 1.7x measured speed-up at equal or better ImageNet
accuracy on MobileNetV1/V2 (NetAdapt abstract).

Run directory (plain JSON and Keras files, no pickle; ``kill -9`` safe)::

    config.json            the run's definition (settings, latency source, seed blocks and a
                           digest of its weights, data; a resumed run must match it)
    journal.jsonl          {"event": "seed" | "proposal" | "rejected" | "accepted" | "delta" | "stalled" | "final", ...}
    seed.keras             the seed network (flat blocks, width multiplier applied)
    iter_<k>.keras         the network after k accepted steps
    proposals/<k>/<name>.weights.h5   each fine-tuned proposal of iteration k (<k>.r<n> after
                                      the n-th halving of delta)
    final.keras, final.tflite, blocks.json, summary.json, netadapt.png

Every proposal is journaled when its fine-tune ends (with its weights saved first), and each
accepted network is saved before its ``accepted`` record, so a resumed run repeats no
finished proposal and ends with the same result.

Example:
    >>> cfg = NetAdaptConfig(target_fraction=0.7, steps=10)
    >>> cfg.criterion, cfg.delta_fraction
    ('per_latency', 0.01)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from typing import Any, Callable

import numpy as np

from mnas_keras import _files
from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.netadapt.latency import latency_ms
from mnas_keras.search.netadapt.proposals import ProposalError, flatten, merge, proposals
from mnas_keras.search.run.journal import RunDirectory, atomic_write_json

CRITERIA = ("per_latency", "accuracy")
EVALUATIONS = ("fine_tune", "adaptive_bn")


@dataclasses.dataclass(frozen=True)
class NetAdaptConfig:
    """The settings that define a NetAdapt run.

    Attributes:
        target_fraction: target latency as a fraction of the seed's (used when
            ``target_ms`` is None).
        target_ms: absolute target latency in the source's milliseconds.
        delta_fraction: latency cut per iteration as a fraction of the seed's latency
            (MobileNetV3: 0.01).
        min_delta_fraction: when no proposal cuts ``delta``, halve it while it stays at or
            above this fraction of the seed's latency and try again (NNI ``NetAdaptPruner``'s
            rule); ``None`` (NetAdapt's rule): stop there (status ``"stalled"``).
        steps: short fine-tune steps per proposal (MobileNetV3's T; 10,000 there).
        evaluate: how proposals are compared. ``"fine_tune"`` (NetAdapt): each proposal is
            fine-tuned ``steps`` steps, its batch norm recalibrated, then its validation
            accuracy measured. ``"adaptive_bn"`` (EagleEye, Li et al., ECCV 2020: the
            accuracy of a pruned network after only recomputing its batch-norm statistics
            ranks candidates as their fine-tuned accuracy does): each proposal is only
            recalibrated (``bn_batches``) and measured; the chosen one is then fine-tuned
            ``steps`` steps before it becomes the next network. A fine-tune costs a
            ``tf.function`` trace per child network (about 7 s on one core for MnasNet-small
            at 32x32, against 0.1 s per step), so this does one per iteration, not one per
            proposal.
        final_steps: the long fine-tune after the target is met (0 = none).
        batch_size, learning_rate, momentum: SGD fine-tuning (NetAdapt's code: lr 1e-3,
            momentum 0.9).
        criterion: ``"per_latency"`` (accuracy change / latency saved) or ``"accuracy"``.
        max_iterations: stop after this many accepted steps even above the target.
        validation_fraction, val_subset: the held-out share of the training data that picks
            proposals, and an optional cap on its size.
        divisor: widths are multiples of this (8).
        seed: seeds data order and fine-tuning.
        bn_batches: after each fine-tune, batch-norm statistics are recomputed over this
            many training batches of 256 (:func:`recalibrate_batch_norm`; 0 = keep the moving
            averages).
    """

    target_fraction: float = 0.7
    target_ms: float | None = None
    delta_fraction: float = 0.01
    min_delta_fraction: float | None = None
    steps: int = 100
    evaluate: str = "fine_tune"
    final_steps: int = 0
    batch_size: int = 32
    learning_rate: float = 0.005
    momentum: float = 0.9
    criterion: str = "per_latency"
    max_iterations: int = 100
    validation_fraction: float = 0.2
    val_subset: int | None = None
    divisor: int = 8
    seed: int = 0
    bn_batches: int = 2

    def __post_init__(self):
        checks = [
            (0 < self.target_fraction < 1, f"target_fraction must be in (0, 1); received {self.target_fraction!r}"),
            (self.target_ms is None or self.target_ms > 0, f"target_ms must be > 0; received {self.target_ms!r}"),
            (0 < self.delta_fraction < 1, f"delta_fraction must be in (0, 1); received {self.delta_fraction!r}"),
            (self.min_delta_fraction is None or 0 < self.min_delta_fraction <= self.delta_fraction,
             f"min_delta_fraction must be None or in (0, delta_fraction={self.delta_fraction!r}]; received "
             f"{self.min_delta_fraction!r}"),
            (self.steps >= 0 and self.final_steps >= 0, f"steps and final_steps must be >= 0; received "
                                                        f"{self.steps!r}, {self.final_steps!r}"),
            (self.batch_size >= 1 and 0 < self.learning_rate < math.inf, "batch_size must be >= 1 and learning_rate "
                                                                          "finite and > 0; "
                                                               f"received {self.batch_size!r}, {self.learning_rate!r}"),
            (self.criterion in CRITERIA, f"criterion must be one of {CRITERIA}; received {self.criterion!r}"),
            (self.evaluate in EVALUATIONS, f"evaluate must be one of {EVALUATIONS}; received {self.evaluate!r}"),
            (self.max_iterations >= 1, f"max_iterations must be >= 1; received {self.max_iterations!r}"),
            (0 < self.validation_fraction < 1, f"validation_fraction must be in (0, 1); received "
                                               f"{self.validation_fraction!r}"),
            (self.divisor >= 1, f"divisor must be >= 1; received {self.divisor!r}"),
            (self.bn_batches >= 0, f"bn_batches must be >= 0; received {self.bn_batches!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SearchConfigError(message)


@dataclasses.dataclass
class NetAdaptResult:
    """What a run produced (also in ``summary.json``)."""

    blocks: list
    stem_filters: int
    seed_latency_ms: float
    latency_ms: float
    target_ms: float
    seed_accuracy: float
    accuracy: float
    test_accuracy_before: float | None
    test_accuracy_after: float | None
    iterations: int
    status: str
    run_dir: str
    latency_vs_seed_ms: float | None = None  # the final network timed interleaved with the seed
    model: Any = dataclasses.field(default=None, repr=False)


def _bisection(n: int):
    """The probe order for the largest fitting candidate among ``n`` (index 0 the largest
    width): a generator that yields an index to probe and is sent whether that candidate
    meets the constraint; it returns the first fitting index, or None when the smallest
    (index ``n - 1``, probed first) does not fit.

    Example:
        >>> search = _bisection(8); fits = lambda i: i >= 3  # widths 0-2 too slow
        >>> i = next(search); probes = [i]
        >>> try:
        ...     while True:
        ...         i = search.send(fits(i)); probes.append(i)
        ... except StopIteration as stop:
        ...     found = stop.value
        >>> probes, found
        ([7, 3, 1, 2], 3)
    """
    if not (yield n - 1):
        return None
    lo, hi = 0, n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if (yield mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def data_definition(data) -> dict:
    """What a run's ``config.json`` records of its data: the training images' count and a
    digest of the first 64 (a resumed run must match it)."""
    x = np.asarray(data[0][0])
    return {"train": int(len(x)), "digest": hashlib.sha256(x[: min(len(x), 64)].tobytes()).hexdigest()[:16]}


def weights_digest(model) -> str:
    """What a run's ``config.json`` records of its seed's weights (every variable of the
    model, nested models included, in order): 16 hex digits of a SHA-256, so a resumed run
    must start from the same trained network, not another one of the same blocks."""
    digest = hashlib.sha256()
    for variable in model.weights:
        value = np.ascontiguousarray(np.asarray(variable))
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:16]


def table_reference(path: str, run_dir: str) -> str:
    """How a run's ``config.json`` names its latency table: where it is, not how its path was
    spelt (its real path), and the run's own table relative to the run directory (it moves
    with the run)."""
    table, run = os.path.realpath(path), os.path.realpath(run_dir)
    return os.path.relpath(table, run) if table.startswith(run + os.sep) else table


def _seed_of(*parts) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:4], "little")


def _safe(key: str) -> str:
    return key.replace(":", "_").replace(",", "-")


def split_data(data, validation_fraction: float, seed: int, val_subset: int | None = None):
    """``(x_train, y_train), (x_val, y_val), (x_test, y_test)`` from ``((x, y), (x_test, y_test))``
    (a seeded permutation; the validation share comes from the training data)."""
    try:
        (x, y), (x_test, y_test) = data
    except (TypeError, ValueError):
        raise SearchConfigError("data must be ((x_train, y_train), (x_test, y_test))") from None
    x, y = np.asarray(x, "float32"), np.asarray(y).astype("int32").reshape(-1)
    if x.ndim != 4 or len(x) != len(y) or len(x) < 2:
        raise SearchConfigError(f"x_train must be (n, height, width, channels) with one label each; received {x.shape}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(len(x) * validation_fraction)))
    val, train = order[:n_val], order[n_val:]
    if val_subset:
        val = val[:val_subset]
    x_test = np.asarray(x_test, "float32")
    y_test = np.asarray(y_test).astype("int32").reshape(-1)
    return (x[train], y[train]), (x[val], y[val]), (x_test, y_test)


def accuracy(model, x, y, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` (inference mode)."""
    if len(x) == 0:
        return float("nan")
    hits = 0
    for start in range(0, len(x), batch_size):
        probs = np.asarray(model(x[start:start + batch_size], training=False))
        hits += int(np.sum(np.argmax(probs, axis=-1) == y[start:start + batch_size]))
    return hits / len(x)


def outputs_probabilities(model) -> bool:
    """Whether ``model`` ends in a softmax (an ``MnasNet`` with ``classifier_activation=
    "softmax"``, or a functional model whose output layer, or nested model, does)."""
    import keras

    config = model.get_config() if hasattr(model, "get_config") else {}
    if isinstance(config, dict) and "classifier_activation" in config:
        return config["classifier_activation"] == "softmax"
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1:
        return False
    last = outputs[0]._keras_history[0]
    if isinstance(last, keras.layers.Softmax):
        return True
    if isinstance(last, keras.Model):
        return outputs_probabilities(last)
    activation = getattr(last, "activation", None)
    return activation is keras.activations.softmax or getattr(activation, "__name__", "") == "softmax"


GRAPH_MIN_STEPS = 8


class FineTuneDivergedError(SearchConfigError, FloatingPointError):
    """A fine-tune whose loss became NaN or infinite (a learning rate too large): a
    ``ValueError`` naming the learning rate, and a ``FloatingPointError`` as divergence is
    elsewhere in the project."""


def fine_tune(model, x, y, steps: int, *, batch_size: int, learning_rate: float, momentum: float, seed: int,
              graph: bool | None = None, cosine: bool = False) -> None:
    """``steps`` SGD steps on random batches (seeded): sparse categorical cross-entropy on
    the model's softmax output (from logits when it has no softmax). ``graph`` traces the
    step once (a ``tf.function``); ``None`` (default) traces from :data:`GRAPH_MIN_STEPS`
    steps on: 40 steps of a fresh MnasNet-small 0.5 child at 32x32 took 78 s traced against
    215 s eager on one shared core (tracing included), while one or two steps are cheaper
    eager. ``cosine`` decays the learning rate to 0 over the steps
    (``keras.optimizers.schedules.CosineDecay``) instead of keeping it constant."""
    if steps <= 0:
        return
    if graph is None:
        graph = steps >= GRAPH_MIN_STEPS
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    if cosine:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    optimizer = keras.optimizers.SGD(learning_rate, momentum=momentum)
    logits = not outputs_probabilities(model)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
    variables = model.trainable_variables
    optimizer.build(variables)  # not inside the traced step, which would then be traced twice
    batch = min(batch_size, len(x))

    def step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    if graph:
        step = tf.function(step, input_signature=[tf.TensorSpec((None,) + tuple(x.shape[1:]), tf.float32),
                                                  tf.TensorSpec((None,), tf.int32)])
    for number in range(1, steps + 1):
        index = rng.choice(len(x), batch, replace=False)
        loss = step(tf.constant(x[index]), tf.constant(y[index].astype("int32")))
        if not math.isfinite(float(loss)):
            rate = learning_rate.initial_learning_rate if cosine else learning_rate
            raise FineTuneDivergedError(f"the fine-tuning loss became NaN or infinite at step {number} of {steps} "
                                        f"with learning rate {rate!r}; expected a smaller learning rate")


def recalibrate_batch_norm(model, x, *, batches: int = 8, batch_size: int = 64, seed: int = 0) -> None:
    """Sets every batch norm's moving mean and variance (nested models included) to the
    average of its batch statistics over ``batches`` random batches of ``x`` (training-mode
    forward passes, no weight update): the cumulative average, as PyTorch's
    ``torch.optim.swa_utils.update_bn``.

    A short, high-learning-rate training leaves the moving averages (momentum 0.99) far from
    the statistics the final weights produce, so inference-mode accuracy can sit at chance
    while training-mode accuracy is high; NetAdapt's children, fine-tuned only ``T`` steps
    after surgery, have the same lag. Recalibrating makes inference mode measure the trained
    weights.

    Args:
        model: a Keras model (any functional model; nested models are walked).
        x: images ``(n, height, width, channels)`` in the model's input range.
        batches: number of batches (0: do nothing).
        batch_size: images per batch (at most ``n``).
        seed: seeds which images form the batches.

    Example:
        >>> import keras, numpy as np
        >>> inputs = keras.Input((4,))
        >>> bn = keras.layers.BatchNormalization()
        >>> model = keras.Model(inputs, bn(inputs))
        >>> x = np.arange(16, dtype="float32").reshape(4, 4)
        >>> recalibrate_batch_norm(model, x, batches=1, batch_size=4)
        >>> [float(v) for v in bn.moving_mean.numpy()]
        [6.0, 7.0, 8.0, 9.0]
    """
    if batches <= 0 or len(x) == 0:
        return
    import keras

    layers, stack = [], [model]
    while stack:
        for layer in getattr(stack.pop(), "layers", ()):
            if isinstance(layer, keras.layers.BatchNormalization):
                layers.append(layer)
            elif hasattr(layer, "layers"):
                stack.append(layer)
    if not layers:
        return
    saved = [layer.momentum for layer in layers]
    rng = np.random.default_rng(seed)
    batch = min(batch_size, len(x))
    try:
        for i in range(batches):
            for layer in layers:  # cumulative average: the first batch replaces the old statistics
                layer.momentum = i / (i + 1)
            model(np.asarray(x[rng.choice(len(x), batch, replace=False)], "float32"), training=True)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum


class NetAdapt:
    """Refines a trained ``MnasNet`` to a latency target (see the module docstring).

    Args:
        model: the trained network: an ``MnasNet``, a model nesting one, or a ``.keras`` path.
        data: ``((x_train, y_train), (x_test, y_test))`` arrays in the model's input range.
        latency: a latency source (:mod:`mnas_keras.search.netadapt.latency`).
        config: :class:`NetAdaptConfig`.
        run_dir: the run directory (resumed when it holds this run).
        export_tflite: write ``final.tflite`` (float32) at the end.
        log: a ``print``-like function (None: silent).
        overwrite: delete the run in ``run_dir`` first (only a directory holding a run's
            ``journal.jsonl`` or nothing; as ``mnas-search --overwrite``).
        confirm: time each iteration's winner again before accepting it, and take the next
            best proposal when the second timing misses the constraint (journaled as
            ``rejected``). Default: for sources timed on a machine (those with an anchor,
            :class:`~mnas_keras.search.netadapt.latency.MeasuredLatency`), not for
            deterministic ones. Without it the accepted latencies are biased low: on digits
            at 32x32 the chain claimed 69% of the seed where the final network timed against
            the seed directly took 95%.
        verify: a measured source (:class:`~mnas_keras.search.netadapt.latency.MeasuredLatency`)
            that times the final network against the seed in one interleaved run when
            ``latency`` is not itself measured (a latency table): ``latency_vs_seed_ms`` is then
            the seed's milliseconds in ``latency``'s scale times that measured ratio.

    Raises:
        SearchConfigError (a ``ValueError``): bad settings, or a run directory holding a
            different run.
    """

    def __init__(self, model, data, latency: Callable, config: NetAdaptConfig = NetAdaptConfig(),
                 run_dir: str = "netadapt_run", *, export_tflite: bool = True, log: Callable | None = print,
                 overwrite: bool = False, confirm: bool | None = None, verify: Callable | None = None):
        self.model, self.data, self.latency, self.config = model, data, latency, config
        self.run = RunDirectory(run_dir)
        self.export_tflite = bool(export_tflite)
        self.log = log or (lambda *a, **k: None)
        self.overwrite = bool(overwrite)
        # a measured source is timed again for the winner of each iteration (see _iteration)
        self.confirm = hasattr(latency, "set_anchor") if confirm is None else bool(confirm)
        self.verify = verify

    # ------------------------------------------------------------------ helpers
    def _path(self, *names) -> str:
        return os.path.join(self.run.path, *names)

    def _save_keras(self, model, name: str) -> str:
        path = self._path(name)
        fd, tmp = _files.mkstemp(dir=self.run.path, suffix=".keras")
        os.close(fd)
        model.save(tmp)
        os.replace(tmp, path)
        return path

    def _load(self, name: str):
        import keras

        return keras.saving.load_model(self._path(name), compile=False)

    def _definition(self, model, backbone) -> dict:
        cfg = dataclasses.asdict(self.config)
        source = {"source": type(self.latency).__name__}
        if hasattr(self.latency, "config"):
            source.update(self.latency.config())
        if isinstance(source.get("table"), str):
            source["table"] = self._table_reference(source["table"])
        return {"netadapt": cfg, "latency": source, "blocks": list(backbone.blocks),
                "weights": weights_digest(model), "data": data_definition(self.data)}

    def _table_reference(self, path: str) -> str:
        return table_reference(path, self.run.path)

    def _measure(self, model, cache: dict) -> float:
        from mnas_keras.search.netadapt.surgery import find_backbone

        model = find_backbone(model)
        key = (tuple(b.to_string() for b in flatten(model.blocks)), model.get_config()["stem_filters"])
        if key not in cache:
            cache[key] = latency_ms(self.latency, model)
        return cache[key]

    # --------------------------------------------------------------------- run
    def run_loop(self) -> NetAdaptResult:
        """Runs (or resumes) the refinement; returns the result and writes the outputs."""
        from mnas_keras.search.netadapt.surgery import build, find_backbone, flat_config, rewrap, shrink, transfer

        cfg = self.config
        model = self.model
        if isinstance(model, (str, os.PathLike)):
            from mnas_keras._serialization import load_model

            model = load_model(os.fspath(model))  # a missing or garbage file is named
        backbone = find_backbone(model)
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = split_data(
            self.data, cfg.validation_fraction, cfg.seed, cfg.val_subset)
        takes = model.input_shape[1:] if isinstance(model.input_shape, tuple) else None
        if takes is not None and (len(takes) != x_train.ndim - 1 or any(
                t is not None and t != d for t, d in zip(takes, x_train.shape[1:]))):
            raise SearchConfigError(f"the data's images are {tuple(x_train.shape[1:])}; the model takes "
                                    f"{tuple(takes)} (give images of the model's input size)")
        resumed = self.run.prepare(self._definition(model, backbone), overwrite=self.overwrite)
        journal = self.run.journal
        try:
            records = journal.records
            seed_rec = next((r for r in records if r.get("event") == "seed"), None)
            if seed_rec is None or not os.path.exists(self._path("seed.keras")):
                config = flat_config(backbone)
                seed_backbone = build(config, flatten(config["blocks"]), config["stem_filters"])
                transfer(backbone, seed_backbone)
                seed_model = rewrap(model, backbone, seed_backbone)  # in the caller's wrapping
                self._save_keras(seed_model, "seed.keras")
            seed_model = self._load("seed.keras")
            if hasattr(self.latency, "set_anchor"):
                anchor_ms = seed_rec["latency_ms"] if seed_rec else None
                self.latency.set_anchor(find_backbone(seed_model), anchor_ms)
            cache: dict = {}
            if seed_rec is None:
                seed_rec = {"event": "seed", "blocks": merge(find_backbone(seed_model).blocks),
                            "stem_filters": find_backbone(seed_model).get_config()["stem_filters"],
                            "latency_ms": self._measure(seed_model, cache),
                            "accuracy": accuracy(seed_model, x_val, y_val),
                            "test_accuracy": accuracy(seed_model, x_test, y_test), "time": time.time()}
                journal.append(seed_rec)
            seed_ms = seed_rec["latency_ms"]
            goal = target = cfg.target_ms if cfg.target_ms is not None else cfg.target_fraction * seed_ms
            halvings = [r for r in journal.records if r.get("event") == "delta"]
            delta_fraction = halvings[-1]["delta_fraction"] if halvings else cfg.delta_fraction
            delta = delta_fraction * seed_ms
            self.log(f"netadapt: {'resuming' if resumed else 'starting'}; seed {seed_ms:.4g} ms, "
                     f"accuracy {seed_rec['accuracy']:.4f}; target {target:.4g} ms, delta {delta:.4g} ms")
            accepted = [r for r in journal.records if r.get("event") == "accepted"]
            current = self._load(f"iter_{len(accepted)}.keras") if accepted else seed_model
            current_ms = accepted[-1]["latency_ms"] if accepted else seed_ms
            current_acc = accepted[-1]["accuracy"] if accepted else seed_rec["accuracy"]
            status = "target_met"
            checks = {r["iteration"]: r for r in journal.records if r.get("event") == "verified"}
            if checks:  # a resumed run keeps the target its checks set
                target = checks[max(checks)]["next_target_ms"]
            while True:
                while current_ms > target:
                    iteration = len(accepted)
                    if iteration >= cfg.max_iterations:
                        status = "max_iterations"
                        break
                    if any(r.get("event") == "stalled" and r["iteration"] == iteration for r in journal.records):
                        status = "stalled"
                        break
                    winner = self._iteration(current, current_ms, current_acc, iteration, delta, cache,
                                             (x_train, y_train), (x_val, y_val), shrink, build, len(halvings))
                    if winner is None and cfg.min_delta_fraction is not None \
                            and delta_fraction / 2 >= cfg.min_delta_fraction * (1 - 1e-9):
                        delta_fraction /= 2
                        delta = delta_fraction * seed_ms
                        record = {"event": "delta", "iteration": iteration, "delta_fraction": delta_fraction,
                                  "delta_ms": delta, "time": time.time()}
                        journal.append(record)
                        halvings.append(record)
                        self.log(f"netadapt: iteration {iteration}: no proposal cuts the step; delta halved to "
                                 f"{delta:.4g} ms ({delta_fraction:.4g} of the seed)")
                        continue
                    if winner is None:
                        journal.append({"event": "stalled", "iteration": iteration, "time": time.time()})
                        status = "stalled"
                        self.log(f"netadapt: iteration {iteration}: no proposal meets the constraint; stopping")
                        break
                    record, model_next = winner
                    self._save_keras(model_next, f"iter_{iteration + 1}.keras")
                    record = {**record, "event": "accepted", "time": time.time()}
                    journal.append(record)
                    accepted.append(record)
                    current, current_ms, current_acc = model_next, record["latency_ms"], record["accuracy"]
                    self.log(f"netadapt: iteration {iteration}: {record['key']} -> {record['width']} filters, "
                             f"{current_ms:.4g} ms, accuracy {current_acc:.4f}")
                if status != "target_met" or not accepted:
                    break
                # The source says the target is met. The accepted latencies chain one A/B ratio
                # (or one table prediction) per step, so time the network against the seed
                # directly; when that misses the goal, the source's target becomes the goal
                # over this network's measured/source ratio (the goal, not the previous
                # target, which already holds an earlier ratio) and the loop goes on.
                check = checks.get(len(accepted))
                if check is None:
                    measured = self._time_against_seed(seed_model, seed_ms, current)
                    if measured is None:  # nothing to check with (multiply-adds, no verify)
                        break
                    check = {"event": "verified", "iteration": len(accepted), "latency_ms": current_ms,
                             "latency_vs_seed_ms": measured,
                             "next_target_ms": target if measured <= goal else goal * current_ms / measured,
                             "time": time.time()}
                    journal.append(check)
                    checks[len(accepted)] = check
                if check["latency_vs_seed_ms"] <= goal:
                    break
                target = check["next_target_ms"]
                self.log(f"netadapt: timed against the seed the network takes {check['latency_vs_seed_ms']:.4g} ms, "
                         f"above the target {goal:.4g}; going on to {target:.4g} ms by the source")
            final_rec = next((r for r in journal.records if r.get("event") == "final"), None)
            if final_rec is None:
                final = current
                if cfg.final_steps:
                    fine_tune(final, x_train, y_train, cfg.final_steps, batch_size=cfg.batch_size,
                              learning_rate=cfg.learning_rate, momentum=cfg.momentum,
                              seed=_seed_of(cfg.seed, "final"))
                    recalibrate_batch_norm(final, x_train, batches=cfg.bn_batches, batch_size=256,
                                           seed=_seed_of(cfg.seed, "final", "bn"))
                self._save_keras(final, "final.keras")
                if len(accepted) in checks:  # the same architecture: its timing stands
                    remeasured = checks[len(accepted)]["latency_vs_seed_ms"]
                else:
                    remeasured = self._time_against_seed(seed_model, seed_ms, final) if accepted else None
                final_rec = {"event": "final", "status": status, "blocks": merge(find_backbone(final).blocks),
                             "stem_filters": find_backbone(final).get_config()["stem_filters"],
                             "latency_ms": current_ms, "latency_vs_seed_ms": remeasured,
                             "accuracy": accuracy(final, x_val, y_val),
                             "test_accuracy": accuracy(final, x_test, y_test), "time": time.time()}
                journal.append(final_rec)
            final = self._load("final.keras")
            result = NetAdaptResult(
                blocks=final_rec["blocks"], stem_filters=final_rec["stem_filters"], seed_latency_ms=seed_ms,
                latency_ms=final_rec["latency_ms"], target_ms=goal, seed_accuracy=seed_rec["accuracy"],
                accuracy=final_rec["accuracy"], test_accuracy_before=seed_rec["test_accuracy"],
                test_accuracy_after=final_rec["test_accuracy"], iterations=len(accepted),
                status=final_rec["status"], run_dir=self.run.path,
                latency_vs_seed_ms=final_rec.get("latency_vs_seed_ms"), model=final)
            self._outputs(result, journal.records, final)
            return result
        finally:
            self.run.close()

    def _time_against_seed(self, seed_model, seed_ms: float, model) -> float | None:
        """``model``'s backbone timed against the seed's in one interleaved run, in the
        source's milliseconds (the seed's ``seed_ms`` times the measured ratio); None without
        a measured source (``latency`` itself, or ``verify``)."""
        from mnas_keras.search.netadapt.surgery import find_backbone

        checker = self.latency if hasattr(self.latency, "set_anchor") else self.verify
        if checker is None:
            return None
        if checker is self.latency:
            checker.set_anchor(find_backbone(seed_model), seed_ms)
            return latency_ms(checker, find_backbone(model))
        anchor_ms = checker.set_anchor(find_backbone(seed_model))
        return seed_ms * latency_ms(checker, find_backbone(model)) / anchor_ms

    def _iteration(self, current, current_ms, current_acc, iteration, delta, cache, train, val, shrink, build,
                   round_: int = 0):
        import keras

        from mnas_keras.search.netadapt.surgery import find_backbone, rewrap

        cfg = self.config
        journal = self.run.journal
        config = find_backbone(current).get_config()
        flat = flatten(config["blocks"])
        constraint = current_ms - delta
        if hasattr(self.latency, "set_anchor"):
            # every proposal is timed interleaved with the network it must beat by delta (an
            # A/B ratio), not with the seed: on a shared machine the run-to-run spread of two
            # separate timings is larger than delta
            self.latency.set_anchor(find_backbone(current), current_ms)
        def this_round(r, event):  # records of this iteration at this delta
            return r.get("event") == event and r["iteration"] == iteration and r.get("round", 0) == round_

        done = {r["key"]: r for r in journal.records if this_round(r, "proposal")}
        folder = self._path("proposals", str(iteration) + (f".r{round_}" if round_ else ""))
        os.makedirs(folder, exist_ok=True)
        if hasattr(self.latency, "prefetch"):
            self._prefetch(config, flat, [p for p in proposals(flat, config["stem_filters"]) if p.key not in done],
                           constraint, cache, build)
        for proposal in proposals(flat, config["stem_filters"]):
            if proposal.key in done:
                continue
            started = time.perf_counter()
            width, child_ms, tried = self._largest_width(config, flat, proposal, constraint, cache, build)
            child = None if width is None else shrink(current, proposal, width)
            record = {"event": "proposal", "iteration": iteration, "key": proposal.key,
                      "from_width": proposal.width, "tried": tried, **({"round": round_} if round_ else {}),
                      "latency_seconds": round(time.perf_counter() - started, 3)}
            if child is None:
                record["status"] = "infeasible"
            else:
                started = time.perf_counter()
                if cfg.evaluate == "fine_tune":
                    fine_tune(child, train[0], train[1], cfg.steps, batch_size=cfg.batch_size,
                              learning_rate=cfg.learning_rate, momentum=cfg.momentum,
                              seed=_seed_of(cfg.seed, iteration, proposal.key))
                recalibrate_batch_norm(child, train[0], batches=cfg.bn_batches, batch_size=256,
                                       seed=_seed_of(cfg.seed, iteration, proposal.key, "bn"))
                acc = accuracy(child, *val)
                seconds = "fine_tune_seconds" if cfg.evaluate == "fine_tune" else "evaluate_seconds"
                record[seconds] = round(time.perf_counter() - started, 3)
                weights = os.path.join(folder, _safe(proposal.key) + ".weights.h5")
                tmp = weights + ".tmp.weights.h5"
                child.save_weights(tmp)
                os.replace(tmp, weights)
                record.update(status="ok", width=width, latency_ms=child_ms, accuracy=acc,
                              blocks=merge(find_backbone(child).blocks),
                              stem_filters=find_backbone(child).get_config()["stem_filters"],
                              score=self._score(acc, child_ms, current_acc, current_ms))
                self.log(f"netadapt: iteration {iteration}: {proposal.key} {proposal.width}->{record['width']}: "
                         f"{child_ms:.4g} ms, accuracy {acc:.4f}")
            journal.append(record)
            done[proposal.key] = record
            del child
            keras.backend.clear_session(free_memory=True)
        rejected = {r["key"] for r in journal.records if this_round(r, "rejected")}
        ok = [r for r in done.values() if r["status"] == "ok" and r["key"] not in rejected]
        order = {p.key: i for i, p in enumerate(proposals(flat, config["stem_filters"]))}
        for best in sorted(ok, key=lambda r: (-r["score"], order.get(r["key"], 0))):
            chosen = {k: best[k] for k in ("iteration", "key", "from_width", "width", "latency_ms", "accuracy",
                                           "blocks", "stem_filters", "score")}
            if self.confirm:
                # The winner's latency was the lowest of many noisy timings that passed the
                # constraint (a winner's curse): time it again, afresh, before it sets the next
                # iteration's starting latency, and drop it if it no longer meets the constraint.
                child = build(config, flatten(best["blocks"]), best["stem_filters"])
                confirmed = latency_ms(self.latency, child)
                del child
                if confirmed > constraint:
                    journal.append({"event": "rejected", "iteration": iteration, "key": best["key"],
                                    **({"round": round_} if round_ else {}),
                                    "latency_ms": best["latency_ms"], "confirmed_ms": confirmed, "time": time.time()})
                    self.log(f"netadapt: iteration {iteration}: {best['key']} timed again at {confirmed:.4g} ms, "
                             f"above {constraint:.4g}; next proposal")
                    continue
                chosen.update(latency_ms=confirmed, first_latency_ms=best["latency_ms"])
            winner = rewrap(current, find_backbone(current), build(config, flatten(best["blocks"]), best["stem_filters"]))
            winner.load_weights(os.path.join(folder, _safe(best["key"]) + ".weights.h5"))
            if cfg.evaluate == "adaptive_bn" and cfg.steps:  # only the chosen proposal is fine-tuned
                started = time.perf_counter()
                fine_tune(winner, train[0], train[1], cfg.steps, batch_size=cfg.batch_size,
                          learning_rate=cfg.learning_rate, momentum=cfg.momentum,
                          seed=_seed_of(cfg.seed, iteration, best["key"], "chosen"))
                recalibrate_batch_norm(winner, train[0], batches=cfg.bn_batches, batch_size=256,
                                       seed=_seed_of(cfg.seed, iteration, best["key"], "chosen", "bn"))
                chosen.update(proposal_accuracy=chosen["accuracy"], accuracy=accuracy(winner, *val),
                              fine_tune_seconds=round(time.perf_counter() - started, 3))
            return chosen, winner
        return None

    def _candidates(self, config, flat, proposal) -> list:
        """``[(width, (blocks, stem)), ...]``, largest width first, for the widths the
        proposal can take without changing the network's structure."""
        from mnas_keras.search.netadapt.proposals import apply

        valid = []
        for width in proposal.candidates(self.config.divisor):
            try:
                valid.append((width, apply(flat, config["stem_filters"], proposal, width)))
            except ProposalError:
                continue
        return valid

    def _probe_ms(self, config, network, cache, build) -> float:
        """The source's milliseconds for ``(blocks, stem)``, cached by block strings."""
        blocks, stem = network
        key = (tuple(b.to_string() for b in blocks), stem)
        if key not in cache:
            if hasattr(self.latency, "blocks_ms"):  # a table: no network to build
                cache[key] = float(self.latency.blocks_ms(blocks, stem))
            else:
                model = build(config, blocks, stem)
                cache[key] = latency_ms(self.latency, model)
                del model
        return cache[key]

    def _largest_width(self, config, flat, proposal, constraint, cache, build):
        """``(width, ms, tried)``: the largest candidate width whose network's latency is at
        most ``constraint`` (``width`` None when even the smallest misses it). Latency is
        taken to fall with the width, so the smallest candidate is tried first and the rest
        by bisection (:func:`_bisection`; NetAdapt's code walks down in steps of 8; the answer
        is the same for a monotone latency, in about log2 as many measurements)."""
        valid = self._candidates(config, flat, proposal)
        if not valid:
            return None, None, []
        tried: dict[int, float] = {}
        search = _bisection(len(valid))
        index = next(search)
        try:
            while True:
                ms = tried[valid[index][0]] = self._probe_ms(config, valid[index][1], cache, build)
                index = search.send(ms <= constraint)
        except StopIteration as stop:
            found = stop.value
        if found is None:
            return None, None, [[w, ms] for w, ms in tried.items()]
        return valid[found][0], tried[valid[found][0]], [[w, ms] for w, ms in tried.items()]

    def _prefetch(self, config, flat, pending, constraint, cache, build) -> None:
        """For a source that measures missing parts (a latency table's ``prefetch``): runs
        the proposals' bisections in lock step, so each round's missing parts are converted
        and timed in one batch instead of one small batch per probe; the predictions land in
        ``cache``, where :meth:`_largest_width` then finds them."""
        states = []
        for proposal in pending:
            valid = self._candidates(config, flat, proposal)
            if valid:
                search = _bisection(len(valid))
                states.append((valid, search, next(search)))
        while states:
            self.latency.prefetch([valid[index][1] for valid, _, index in states])
            following = []
            for valid, search, index in states:
                ms = self._probe_ms(config, valid[index][1], cache, build)
                try:
                    following.append((valid, search, search.send(ms <= constraint)))
                except StopIteration:
                    pass
            states = following

    def _score(self, acc, ms, current_acc, current_ms) -> float:
        if self.config.criterion == "accuracy":
            return float(acc)
        return float((acc - current_acc) / max(current_ms - ms, 1e-12))

    # ----------------------------------------------------------------- outputs
    def _outputs(self, result: NetAdaptResult, records: list, final) -> None:
        summary = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "model"}
        atomic_write_json(self._path("summary.json"), summary, indent=2)
        atomic_write_json(self._path("blocks.json"), {"blocks": result.blocks, "stem_filters": result.stem_filters},
                          indent=2)
        if self.export_tflite and not os.path.exists(self._path("final.tflite")):
            from mnas_keras.tflite import convert, save

            size = tuple(self.data[0][0].shape[1:])
            tmp = self._path(".final.tflite.tmp")
            save(convert(final, input_shape=size), tmp)
            os.replace(tmp, self._path("final.tflite"))
        plot_trajectory(records, self._path("netadapt.png"))


def plot_trajectory(records: list, path: str) -> str:
    """Accuracy vs latency: every fine-tuned proposal (grey) and the accepted path (line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seed = next(r for r in records if r.get("event") == "seed")
    path_pts = [(seed["latency_ms"], seed["accuracy"])] + [
        (r["latency_ms"], r["accuracy"]) for r in records if r.get("event") == "accepted"]
    props = [(r["latency_ms"], r["accuracy"]) for r in records if r.get("event") == "proposal" and r["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(6, 4))
    if props:
        adaptive_bn = any("evaluate_seconds" in r for r in records if r.get("event") == "proposal")
        label = "proposals (batch norm recomputed)" if adaptive_bn else "proposals (short fine-tune)"
        ax.scatter(*zip(*props), s=8, color="0.7", label=label)
    ax.plot(*zip(*path_pts), "o-", color="C0", label="accepted")
    final = next((r for r in records if r.get("event") == "final"), None)
    if final is not None:
        ax.scatter([final["latency_ms"]], [final["accuracy"]], marker="*", s=120, color="C3", label="final", zorder=3)
    ax.set_xlabel("latency (ms, latency source)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("NetAdapt trajectory")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_journal(run_dir: str) -> list[dict]:
    """The records of a NetAdapt run's journal."""
    with open(os.path.join(run_dir, "journal.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]
