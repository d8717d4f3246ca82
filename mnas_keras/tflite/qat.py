"""Quantization-aware training and magnitude pruning through tensorflow-model-optimization.

tfmot 0.8.1 only wraps ``tf_keras`` (Keras 2) models, and only in a process where
``TF_USE_LEGACY_KERAS=1`` was set before TensorFlow was first imported. So the functions here
save the Keras 3 model (``.keras``) and the data (``.npz``) to a temporary folder and run the
job in a fresh Python process with that variable set; there the model is rebuilt in
``tf_keras`` from its block strings by the package's own graph builder, the weights are
copied layer by layer, tfmot wraps it (``quantize_model`` with quantize configs for
hard-swish, hard-sigmoid, the SE ``Multiply`` and preprocessing; or ``prune_low_magnitude`` on
every Conv2D/Dense kernel), it is fine-tuned with ``fit``, stripped and converted to TFLite.
Only files (JSON, ``.npz``, ``.keras``, ``.tflite``) cross the process boundary.

A process that itself set ``TF_USE_LEGACY_KERAS=1`` before importing TensorFlow runs the job
in-process (Keras 3, used for the ``.keras`` file and the converter, still works there).

Example:
    >>> from mnas_keras.tflite.qat import legacy_keras_active
    >>> legacy_keras_active()
    False
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from mnas_keras.tflite.errors import QATError, TFLiteError

_QAT_QUANTIZATIONS = ("int8", "int8_io")


@dataclasses.dataclass
class CompressionResult:
    """The output of :func:`quantization_aware_training` or :func:`prune`.

    Attributes:
        tflite: the converted flatbuffer.
        method: ``"qat"`` or ``"prune"``.
        quantization: the TFLite quantization used for the conversion.
        history: per-epoch training metrics from ``fit`` (``loss``, ``accuracy``).
        sparsity: share of zeros in the pruned Conv2D/Dense kernels (pruning only).
        seconds: wall time of the job, including the worker's start.
    """

    tflite: bytes
    method: str
    quantization: str | None
    history: dict
    sparsity: float | None = None
    seconds: float = 0.0


def legacy_keras_active() -> bool:
    """Whether this process runs ``tf.keras`` as ``tf_keras`` (so tfmot works in-process)."""
    if os.environ.get("TF_USE_LEGACY_KERAS", "").lower() not in ("1", "true"):
        return False
    if "tensorflow" not in sys.modules:
        return True
    import tensorflow as tf

    return "tf_keras" in getattr(tf.keras, "__name__", "")


def _check_data(x, y):
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise QATError(
            f"expected images (N, H, W, C) and integer labels (N,); received x {x.shape}, y {y.shape}"
        )
    return x.astype(np.float32), y.astype(np.int64)


def _submit(method, model, x, y, options, timeout):
    import keras

    if not isinstance(model, keras.Model):
        raise QATError(f"expected a Keras 3 mnas_keras.MnasNet model, received {type(model).__name__}")
    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise QATError(
            f"model {model.name!r} nests model(s) {nested}; the QAT/pruning bridge rebuilds one "
            "mnas_keras.MnasNet from its block strings: pass the MnasNet itself (e.g. with "
            "include_top=True and your classes) instead of a model wrapping it"
        )
    if "blocks" not in model.get_config():
        raise QATError(
            f"model {model.name!r} is not a mnas_keras.MnasNet (its config has no 'blocks'); the "
            "QAT/pruning bridge rebuilds models from their block strings"
        )
    from mnas_keras.codec import decode

    hybrid = [s.to_string() for s in decode(model.get_config()["blocks"]) if s.op == "mqa" or s.layer_scale]
    if hybrid:
        raise QATError(
            f"block {hybrid[0]!r} of model {model.name!r}: Mobile MQA ('mqa') and layer-scale ('ls') "
            "blocks (MobileNetV4 Hybrid) have no tf_keras twin in the QAT/pruning bridge; use "
            "post-training int8 (mnas_keras.tflite.convert(model, 'int8', data))"
        )
    x, y = _check_data(x, y)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mnas_qat_") as folder:
        request = {
            "method": method,
            "model": os.path.join(folder, "model.keras"),
            "data": os.path.join(folder, "data.npz"),
            "output": os.path.join(folder, "model.tflite"),
            "result": os.path.join(folder, "result.json"),
            **options,
        }
        model.save(request["model"])
        np.savez(request["data"], x=x, y=y)
        request_path = os.path.join(folder, "request.json")
        with open(request_path, "w") as f:
            json.dump(request, f)
        if legacy_keras_active():
            _run_job(request)
        else:
            _spawn(request_path, timeout)
        with open(request["result"]) as f:
            answer = json.load(f)
        if "error" in answer:
            from mnas_keras.tflite import errors

            raise getattr(errors, answer["error"]["type"], QATError)(answer["error"]["message"])
        with open(request["output"], "rb") as f:
            tflite = f.read()
    return CompressionResult(
        tflite=tflite,
        method=method,
        quantization=options["quantization"],
        history=answer["history"],
        sparsity=answer.get("sparsity"),
        seconds=time.perf_counter() - start,
    )


def _spawn(request_path, timeout):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["TF_USE_LEGACY_KERAS"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    command = [sys.executable, "-m", "mnas_keras.tflite.qat", request_path]
    try:
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise QATError(f"the QAT/pruning worker exceeded {timeout} s") from None
    result = os.path.join(os.path.dirname(request_path), "result.json")
    if proc.returncode != 0 or not os.path.isfile(result):
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        raise QATError(f"the QAT/pruning worker failed (status {proc.returncode}):\n{tail}")


def quantization_aware_training(
    model,
    x,
    y,
    *,
    epochs: int = 2,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    quantization: str = "int8",
    calibration_samples: int = 100,
    seed: int = 0,
    timeout: float | None = 1800.0,
) -> CompressionResult:
    """Fine-tunes ``model`` with fake quantization (tfmot) and converts it to full int8.

    Args:
        model: a trained Keras 3 ``mnas_keras.MnasNet`` (e.g. from ``create_model``).
        x, y: training images ``(N, H, W, C)`` and integer labels ``(N,)``.
        epochs, batch_size, learning_rate: the fine-tuning run (Adam with cosine decay from
            ``learning_rate``, sparse categorical cross-entropy, from logits when the model
            has no classifier activation).
        quantization: ``"int8"`` (float input/output) or ``"int8_io"``.
        calibration_samples: samples of ``x`` that set the starting activation ranges
            (tfmot's own start, [-6, 6] moved by a 0.999 moving average, needs thousands of
            steps to settle) and calibrate the few tensors tfmot leaves without learned
            ranges (inside hard-sigmoid).
        seed: seeds tf_keras (shuffling, initializers) in the worker.
        timeout: seconds allowed for the worker process.

    Returns:
        A :class:`CompressionResult` with the int8 flatbuffer and the training history.

    Raises:
        QATError: not a MnasNet, bad data, or the worker failed.
    """
    if quantization not in _QAT_QUANTIZATIONS:
        raise QATError(f"QAT converts to {_QAT_QUANTIZATIONS}; received quantization={quantization!r}")
    options = dict(epochs=int(epochs), batch_size=int(batch_size), learning_rate=float(learning_rate),
                   quantization=quantization, calibration_samples=int(calibration_samples),
                   seed=int(seed))
    return _submit("qat", model, x, y, options, timeout)


def prune(
    model,
    x,
    y,
    *,
    sparsity: float = 0.5,
    epochs: int = 2,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    quantization: str | None = "int8",
    calibration_samples: int = 100,
    seed: int = 0,
    timeout: float | None = 1800.0,
) -> CompressionResult:
    """Magnitude-prunes every Conv2D/Dense kernel to ``sparsity`` while fine-tuning, then converts.

    The sparsity ramps from 0 to ``sparsity`` over the first half of the steps (polynomial
    decay schedule), the rest fine-tunes at the target; the learning rate follows a cosine
    decay from ``learning_rate``. The stripped model is converted with
    ``quantization`` (post-training; ``None`` keeps float32).

    Returns:
        A :class:`CompressionResult` whose ``sparsity`` is the measured share of zeros.

    Raises:
        QATError: not a MnasNet, bad arguments or data, or the worker failed.
    """
    from mnas_keras.tflite.conversion import QUANTIZATIONS

    if not 0.0 < float(sparsity) < 1.0:
        raise QATError(f"sparsity must be in (0, 1); received {sparsity!r}")
    if quantization not in QUANTIZATIONS:
        raise QATError(f"unknown quantization {quantization!r}; expected one of {QUANTIZATIONS}")
    options = dict(epochs=int(epochs), batch_size=int(batch_size), learning_rate=float(learning_rate),
                   quantization=quantization, calibration_samples=int(calibration_samples),
                   sparsity=float(sparsity), seed=int(seed))
    return _submit("prune", model, x, y, options, timeout)


def tf_keras_parity(model, x):
    """Checks the tf_keras rebuild that QAT and pruning start from against ``model``.

    Rebuilds ``model`` in tf_keras (in the worker), converts the rebuild to float32 TFLite
    without training, and compares it with the Keras 3 model on ``x``.

    Returns:
        A :class:`mnas_keras.tflite.ParityReport`; float rounding (``max_rel_diff`` around
        1e-6) means the twin has the same graph, activations and weights.
    """
    from mnas_keras.tflite.verify import compare

    x = np.asarray(x, np.float32)
    options = dict(epochs=0, batch_size=1, learning_rate=0.0, quantization=None,
                   calibration_samples=0, seed=0)
    result = _submit("rebuild", model, x[:1], np.zeros(1, np.int64), options, None)
    return compare(model, result.tflite, x)


# ---------------------------------------------------------------- worker side
def _from_logits(model) -> bool:
    activation = model.get_config().get("classifier_activation")
    return activation in (None, "linear")


def _run_job(request: dict) -> None:
    """Runs one QAT or pruning job described by ``request`` (needs legacy tf.keras)."""
    answer: dict
    try:
        import keras  # noqa: F401  (Keras 3 before tf_keras)
        import tf_keras

        from mnas_keras._serialization import load_model
        from mnas_keras.tflite import _legacy
        from mnas_keras.tflite.conversion import convert, save

        model = load_model(request["model"])  # any class this package registers
        with np.load(request["data"]) as data:
            x, y = data["x"], data["y"]
        tf_keras.utils.set_random_seed(request["seed"])
        twin = _legacy.rebuild(model)
        if request["method"] == "rebuild":
            save(convert(twin), request["output"])
            answer = {"history": {}, "sparsity": None}
            return _answer(request, answer)
        steps = int(np.ceil(len(x) / request["batch_size"])) * request["epochs"]
        callbacks = []
        if request["method"] == "qat":
            trainee = _legacy.quantize(twin)
            _legacy.calibrate_ranges(trainee, twin, x[: request["calibration_samples"]])
        else:
            import tensorflow_model_optimization as tfmot

            trainee = _legacy.prune(twin, request["sparsity"], steps)
            callbacks.append(tfmot.sparsity.keras.UpdatePruningStep())
        schedule = tf_keras.optimizers.schedules.CosineDecay(request["learning_rate"], steps)
        trainee.compile(
            optimizer=tf_keras.optimizers.Adam(schedule),
            loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=_from_logits(model)),
            metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
        # Slots and metric variables made now, not inside fit's first trace: a tf.function
        # whose first trace creates variables is traced twice (~20 s for MobileNetV3-Small).
        trainee.optimizer.build(trainee.trainable_variables)
        fit = trainee.fit(
            x, y, batch_size=request["batch_size"], epochs=request["epochs"], shuffle=True,
            verbose=0, callbacks=callbacks,
        )
        history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
        sparsity = None
        if request["method"] == "prune":
            import tensorflow_model_optimization as tfmot

            trainee = tfmot.sparsity.keras.strip_pruning(trainee)
            sparsity = _legacy.kernel_sparsity(trainee)
        quantization = request["quantization"]
        calibration = x[: request["calibration_samples"]] if quantization in ("int8", "int8_io") else None
        save(convert(trainee, quantization, representative_data=calibration), request["output"])
        answer = {"history": history, "sparsity": sparsity}
    except TFLiteError as err:
        answer = {"error": {"type": type(err).__name__, "message": str(err)}}
    _answer(request, answer)


def _answer(request: dict, answer: dict) -> None:
    tmp = request["result"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(answer, f)
    os.replace(tmp, request["result"])


def _worker(request_path: str) -> int:
    if not legacy_keras_active():
        print("the QAT worker needs TF_USE_LEGACY_KERAS=1 before TensorFlow is imported", file=sys.stderr)
        return 2
    with open(request_path) as f:
        _run_job(json.load(f))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
