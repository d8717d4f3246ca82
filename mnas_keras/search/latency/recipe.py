"""The network a search measures: one recipe for the evaluator, the latency table and its parts.

:class:`NetworkRecipe` is a frozen value of the settings that decide a sampled network's
latency besides its blocks (input size, objective, stem and head widths, classes,
activation, preprocessing). :meth:`NetworkRecipe.build` builds the whole network the way
the proxy evaluator trains and measures it, :meth:`NetworkRecipe.build_part` one part of
it the way the latency table times it (the parts are converted together and cut apart by
:mod:`mnas_keras.search.latency.slice`). A latency table stores its recipe in its settings
(the ``MODEL_KEYS``), and a table fits an evaluator when their recipes are equal.

Example:
    >>> recipe = NetworkRecipe(input_size=32, stem_filters=8, head_filters=16)
    >>> recipe == NetworkRecipe.from_settings(recipe.settings())
    True
    >>> recipe.differences(NetworkRecipe(input_size=64, stem_filters=8, head_filters=16))
    {'input_size': (32, 64)}
    >>> model = recipe.build(["r1_k3_s11_e1_i8_o8_dsconv"])
    >>> model.output_shape, model.input_shape
    ((None, 10), (None, None, None, 3))
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.latency.parts import DEFAULT_SETTINGS, parse_part


@dataclasses.dataclass(frozen=True)
class NetworkRecipe:
    """How a search builds the network it measures (see the module docstring).

    Attributes:
        input_size: square input resolution latency is measured at (pixels).
        objective: ``"fp32"`` or ``"int8"`` (full-integer) LiteRT model.
        stem_filters, head_filters: widths of the stem convolution and of the head's 1x1.
        classes: classifier outputs.
        activation: the network's activation (``"relu"``, ``"swish"``, ...).
        include_preprocessing: the model normalizes [0, 255] images itself.
    """

    input_size: int = DEFAULT_SETTINGS["input_size"]
    objective: str = DEFAULT_SETTINGS["objective"]
    stem_filters: int = DEFAULT_SETTINGS["stem_filters"]
    head_filters: int = DEFAULT_SETTINGS["head_filters"]
    classes: int = DEFAULT_SETTINGS["classes"]
    activation: str = DEFAULT_SETTINGS["activation"]
    include_preprocessing: bool = DEFAULT_SETTINGS["include_preprocessing"]

    @classmethod
    def from_settings(cls, settings: Mapping) -> "NetworkRecipe":
        """The recipe of a latency table's settings (missing keys take the defaults)."""
        return cls(**{f.name: settings.get(f.name, f.default) for f in dataclasses.fields(cls)})

    def settings(self) -> dict:
        """The recipe as a latency table's settings entries."""
        return dataclasses.asdict(self)

    def differences(self, other: "NetworkRecipe") -> dict:
        """``{field: (this, other)}`` of the fields that differ."""
        return {f.name: (getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(other, f.name)}

    def build(self, blocks: Sequence[str], *, dropout_rate: float = 0.0, seed: int = 0, **model_kwargs):
        """The untrained Keras model of ``blocks`` (open spatial size; ``model_kwargs`` go to
        :class:`mnas_keras.MnasNet` besides the recipe's own settings)."""
        import keras

        from mnas_keras.models import MnasNet

        clash = set(model_kwargs) & {f.name for f in dataclasses.fields(self)}
        if clash:
            raise SearchConfigError(f"{sorted(clash)} are recipe settings; set them on the NetworkRecipe")
        keras.utils.set_random_seed(seed)
        return MnasNet(list(blocks), input_shape=(None, None, 3), classes=self.classes,
                       stem_filters=self.stem_filters, head_filters=self.head_filters, activation=self.activation,
                       dropout_rate=dropout_rate, include_preprocessing=self.include_preprocessing, **model_kwargs)

    def build_part(self, part: str, prefix: str = ""):
        """``(input, output)`` Keras tensors of one latency-table part (a part key, see
        :mod:`mnas_keras.search.latency.parts`), layer names prefixed with ``prefix``."""
        import keras

        from mnas_keras.models import BuildOptions, build_block, build_head, build_stem
        from mnas_keras.models.backbone import IMAGENET_MEAN, IMAGENET_STD

        parsed = parse_part(part)
        options = BuildOptions(stem_filters=parsed.get("filters", self.stem_filters), scale_stem=False,
                               activation=self.activation, head_filters=self.head_filters, classes=self.classes,
                               dropout_rate=0.0)
        x = keras.Input(parsed["input_shape"], name=f"{prefix}input")
        if parsed["kind"] == "stem":
            y = x
            if self.include_preprocessing:
                y = keras.layers.Normalization(mean=list(IMAGENET_MEAN), variance=[v * v for v in IMAGENET_STD],
                                               name=prefix + "normalization")(y)
            y = build_stem(y, options, prefix=prefix)
        elif parsed["kind"] == "head":
            y = build_head(x, options, prefix=prefix)
        else:
            y = build_block(x, parsed["spec"], options, prefix=prefix)
        return x, y
