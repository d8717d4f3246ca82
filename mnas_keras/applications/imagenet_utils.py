"""``preprocess_input`` and ``decode_predictions`` for the application models.

The ImageNet class index ships with the package (no download).

Example:
    >>> import numpy as np
    >>> preds = np.zeros((1, 1000)); preds[0, 1] = 0.9; preds[0, 0] = 0.1
    >>> decode_predictions(preds, top=2)[0]
    [('n01443537', 'goldfish', 0.9), ('n01440764', 'tench', 0.1)]
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np

_INDEX_FILE = os.path.join(os.path.dirname(__file__), "imagenet_class_index.json")


def preprocess_input(x, data_format=None):
    """A placeholder that returns ``x`` unchanged, as in keras.applications' MobileNetV3.

    The application models normalize inside the model (``include_preprocessing=True``), so
    they take raw pixels in [0, 255].
    """
    return x


@functools.lru_cache(maxsize=1)
def _class_index() -> dict:
    with open(_INDEX_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def decode_predictions(preds, top: int = 5):
    """Decodes ImageNet predictions of shape ``(batch, 1000)`` into
    ``[(wnid, name, score), ...]`` per example, best first."""
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            "decode_predictions expects a batch of predictions of shape (samples, 1000). "
            f"Received: preds.shape={preds.shape}"
        )
    index = _class_index()
    results = []
    for row in preds:
        best = np.argsort(row)[::-1][:top]
        results.append([(index[str(i)][0], index[str(i)][1], float(row[i])) for i in best])
    return results
