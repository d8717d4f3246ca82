"""Visibility of a run: a progress line, TensorBoard scalars and JSON result files.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> bar = ProgressBar(total_steps=100, stream=out)
    >>> bar.update(50, {"loss": 0.5, "accuracy": 0.75}, images_per_second=1234.5, seconds_per_step=0.1)
    >>> print(out.getvalue().strip())
    step 50/100 [##########..........] loss 0.5000 accuracy 0.7500 1234 img/s ETA 0:00:05
"""

from __future__ import annotations

import datetime
import json
import os
import sys

import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _scalar_metadata() -> bytes:
    # What TensorBoard's scalar plugin writes; no tensorboard package needed to write it.
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    return metadata.SerializeToString()


_SCALAR_METADATA = _scalar_metadata()


def format_eta(seconds: float) -> str:
    """``h:mm:ss``."""
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class ProgressBar:
    """One line per update with step, metrics, images/s and ETA.

    On a terminal the line is redrawn in place; otherwise each update is a new line (logs).

    Args:
        total_steps: the run's last step.
        stream: where to write (default ``sys.stdout``).
        width: characters of the bar.
        enabled: ``False`` prints nothing.
    """

    def __init__(self, total_steps: int, stream=None, width: int = 20, enabled: bool = True):
        self.total_steps = int(total_steps)
        self.stream = stream or sys.stdout
        self.width = width
        self.enabled = enabled
        self._inline = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self, step: int, logs: dict, images_per_second: float, seconds_per_step: float) -> str:
        done = int(self.width * min(step, self.total_steps) / max(self.total_steps, 1))
        bar = "#" * done + "." * (self.width - done)
        metrics = " ".join(f"{k} {v:.4f}" for k, v in logs.items() if isinstance(v, float))
        eta = format_eta((self.total_steps - step) * seconds_per_step)
        return f"step {step}/{self.total_steps} [{bar}] {metrics} {images_per_second:.0f} img/s ETA {eta}"

    def update(self, step: int, logs: dict, *, images_per_second: float, seconds_per_step: float) -> None:
        if not self.enabled:
            return
        text = self.line(step, logs, images_per_second, seconds_per_step)
        if self._inline:
            self.stream.write("\r" + text + "\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A log line (ends an in-place progress line first)."""
        if not self.enabled:
            return
        if self._inline:
            self.stream.write("\n")
        self.stream.write(text + "\n")
        self.stream.flush()


class Summaries:
    """TensorBoard scalars under ``model_dir/train`` and ``model_dir/eval`` (chief only)."""

    def __init__(self, model_dir: str | None):
        self._writers = {}
        self.model_dir = model_dir

    def _writer(self, name: str):
        if self.model_dir is None:
            return None
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(os.path.join(self.model_dir, name))
        return self._writers[name]

    def write(self, name: str, step: int, scalars: dict) -> None:
        writer = self._writer(name)
        if writer is None:
            return
        with writer.as_default(step=int(step)):
            for key, value in scalars.items():
                if isinstance(value, (int, float)):
                    tf.summary.write(
                        key, tf.constant(float(value), tf.float32), metadata=_SCALAR_METADATA
                    )
        writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()


def write_json(path: str, data: dict) -> None:
    """Writes ``data`` atomically (temporary file, then rename)."""
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(data, indent=2, sort_keys=True))
    tf.io.gfile.rename(tmp, path, overwrite=True)
