"""mnas_keras: MnasNet-family mobile networks and platform-aware architecture search for Keras 3.

The codec (``BlockSpec``, ``decode``, ``encode``) imports no TensorFlow; the model-side names
(``MnasNet``, ``profile``, ...) load Keras on first use.

Example:
    >>> import mnas_keras
    >>> mnas_keras.BlockSpec.from_string("r1_k3_s11_e1_i32_o16_se0.25").se_ratio
    0.25
"""

from mnas_keras.codec import (
    ARCHITECTURES,
    Architecture,
    BlockSpec,
    BlockStringError,
    NetworkOptions,
    decode,
    encode,
    get_architecture,
)

from mnas_keras import _serialization

__version__ = "0.1.0"

# Keras finds "mnas_keras>..." classes in any .keras file once this package is imported,
# without importing Keras or TensorFlow here (see mnas_keras._serialization).
_serialization.install()

_LAZY = {
    "MnasNet": "mnas_keras.models.backbone",
    "create_model": "mnas_keras.applications.registry",
    "list_models": "mnas_keras.applications.registry",
    "load_model": "mnas_keras._serialization",
    "profile": "mnas_keras.models.profiler",
    "Profile": "mnas_keras.models.profiler",
    "layers": "mnas_keras.layers",
    "applications": "mnas_keras.applications",
}

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "BlockSpec",
    "BlockStringError",
    "NetworkOptions",
    "decode",
    "encode",
    "get_architecture",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        value = module if name in ("layers", "applications") else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mnas_keras' has no attribute {name!r}")
