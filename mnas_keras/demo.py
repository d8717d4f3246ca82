"""``mnas-demo``: decode a block string, build the model, fine-tune it on offline digits,
and print its profile. Runs offline with no flags in about a minute.

Example (shell):
    mnas-demo --blocks=r1_k3_s11_e1_i16_o16,r2_k3_s22_e3_i16_o24_se0.25 --epochs=2
"""

from __future__ import annotations

import math
import sys

from absl import app, flags

from mnas_keras import _cli
from mnas_keras.codec import BlockStringError, decode, get_architecture

_BLOCKS = flags.DEFINE_list(
    "blocks",
    list(get_architecture("mnasnet_small").blocks),
    "Block strings, comma-separated (default: MnasNet-small's).",
)
_ALPHA = flags.DEFINE_float("alpha", 0.5, "Width multiplier.")
_SIZE = flags.DEFINE_integer("size", 32, "Input size (digits upsampled to size x size).", lower_bound=8)
_EPOCHS = flags.DEFINE_integer("epochs", 5, "Fine-tuning epochs.", lower_bound=1)
_STEM = flags.DEFINE_integer("stem_filters", 8, "Stem filters.", lower_bound=1)


def check_flags():
    """Validates the flags before any TensorFlow work; raises ``_cli.UsageError`` naming the flag."""
    alpha = _ALPHA.value
    if not (math.isfinite(alpha) and alpha > 0):
        raise _cli.UsageError(f"--alpha={alpha!r}: expected a finite width multiplier > 0")
    try:
        return decode(_BLOCKS.value)
    except BlockStringError as err:
        raise _cli.UsageError(f"--blocks: {err}") from None


def main(argv):
    if len(argv) > 1:
        raise _cli.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    specs = check_flags()
    _cli.import_tensorflow(sys.argv)
    import keras

    from mnas_keras.datasets import load_digits
    from mnas_keras.models import MnasNet, profile

    print("Decoded block strings:")
    for spec in specs:
        print(f"  {spec.to_string():40s} repeats={spec.repeats} kernel={spec.kernel} "
              f"strides={spec.strides} expansion={spec.expansion} se={spec.se_ratio}")
    (x_train, y_train), (x_test, y_test) = load_digits(size=_SIZE.value)
    keras.utils.set_random_seed(0)
    model = MnasNet(specs, input_shape=(_SIZE.value, _SIZE.value, 3), alpha=_ALPHA.value,
                    stem_filters=_STEM.value, classes=10, include_preprocessing=True,
                    bn_momentum=0.9, dropout_rate=0.1, name="demo")
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=_EPOCHS.value, verbose=2,
              validation_data=(x_test, y_test))
    result = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    print(profile(model))
    print(f"\nTest accuracy on held-out digits: {result['accuracy']:.3f}")


def run():
    """Console script ``mnas-demo``: bad flags exit 2 with one ``mnas-demo: error:`` line."""
    _cli.quiet_logs(sys.argv)
    app.run(lambda argv: _cli.stop_on_interrupt("mnas-demo", _cli.guard, "mnas-demo", main, argv, resumable=False),
            flags_parser=_cli.flags_parser("mnas-demo"))


if __name__ == "__main__":
    run()
