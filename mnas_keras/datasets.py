"""Offline data for demos and tests: scikit-learn's bundled 8x8 digits, upsampled.

Example:
    >>> (x_train, y_train), (x_test, y_test) = load_digits(size=32)
    >>> x_train.shape[1:], x_train.dtype.name, int(x_train.max()) <= 255
    ((32, 32, 3), 'float32', True)
"""

from __future__ import annotations

import numpy as np


def load_digits(size: int = 32, channels: int = 3, test_fraction: float = 0.2, seed: int = 0):
    """scikit-learn's digits (1,797 images, 10 classes) as RGB-like images in [0, 255].

    Returns ``(x_train, y_train), (x_test, y_test)``: images ``(n, size, size, channels)``
    float32 upsampled bilinearly from 8x8, labels int32; a seeded stratified split.
    """
    try:
        from scipy.ndimage import zoom
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_digits needs scikit-learn and scipy: pip install 'mnas_keras[data]'"
        ) from err

    if size < 8 or channels not in (1, 3):
        raise ValueError(f"Expected size >= 8 and channels in (1, 3). Received: size={size}, channels={channels}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"Expected 0 < test_fraction < 1. Received: test_fraction={test_fraction}")
    bunch = sk_load_digits()
    images = bunch.images.astype("float32") * (255.0 / 16.0)
    images = zoom(images, (1, size / 8, size / 8), order=1)
    images = np.clip(images, 0.0, 255.0)[..., None]
    if channels == 3:
        images = np.repeat(images, 3, axis=-1)
    labels = bunch.target.astype("int32")
    rng = np.random.default_rng(seed)
    test_index = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        test_index.extend(members[: int(round(len(members) * test_fraction))])
    test_mask = np.zeros(len(labels), bool)
    test_mask[test_index] = True
    train = rng.permutation(np.flatnonzero(~test_mask))
    test = np.flatnonzero(test_mask)
    return (images[train], labels[train]), (images[test], labels[test])
