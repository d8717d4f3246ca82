"""Network recipes of the NASNet cell and NAS-RL macro spaces (fixed input size).

:class:`~mnas_keras.search.latency.recipe.NetworkRecipe` builds MnasNet block strings with an
open spatial size. The cell and macro builders need a fixed size (they pad and reduce by
shape), so these recipes build at ``input_size``: the proxy training resolution and the one
latency is measured at. Both normalise [0, 255] pixels to [-1, 1] first (``Rescaling``) and
use stock Keras layers only, so LiteRT runs them with built-in ops. They have no latency-table
parts (``build_part`` raises): these spaces are measured only.

:func:`recipe_for_space` picks the recipe a space names in its ``network`` attribute.

Example:
    >>> from mnas_keras.search.spaces import NASRLMacroSpace
    >>> recipe = recipe_for_space(NASRLMacroSpace(num_layers=2), input_size=32, classes=10)
    >>> model = recipe.build(["k3x3_f24,k1x1_f36_in1"])
    >>> model.input_shape, model.output_shape
    ((None, 32, 32, 3), (None, 10))
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from mnas_keras.search.errors import SearchConfigError


@dataclasses.dataclass(frozen=True)
class _FixedSizeRecipe:
    input_size: int = 32
    objective: str = "fp32"
    classes: int = 10

    def settings(self) -> dict:
        """The recipe's settings (stored with a run's evaluator config)."""
        return {"network": self.network, **dataclasses.asdict(self)}

    def differences(self, other) -> dict:
        """``{field: (this, other)}`` of the settings that differ."""
        mine, theirs = self.settings(), other.settings()
        return {k: (mine.get(k), theirs.get(k)) for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)}

    def build_part(self, part: str, prefix: str = ""):
        raise SearchConfigError(f"the {self.network} network has no latency-table parts (measured latency only)")

    def _input(self):
        import keras

        inputs = keras.Input((self.input_size, self.input_size, 3))
        return inputs, keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="rescaling")(inputs)

    def _check(self, model_kwargs):
        if model_kwargs:
            raise SearchConfigError(f"the {self.network} network takes no model_kwargs; received {sorted(model_kwargs)}")


@dataclasses.dataclass(frozen=True)
class CellNetworkRecipe(_FixedSizeRecipe):
    """``build_cell_network`` around ``[normal, reduction]`` cell strings.

    Attributes:
        input_size: square input (pixels, >= 32), training and latency resolution.
        objective: ``"fp32"`` or ``"int8"``.
        classes: classifier outputs.
        num_cells, filters, stem_filters, stem_cells: see
            :func:`mnas_keras.models.cells.build_cell_network`.
    """

    num_cells: int = 1
    filters: int = 8
    stem_filters: int = 16
    stem_cells: int = 0
    network = "cells"

    def build(self, blocks: Sequence[str], *, dropout_rate: float = 0.0, seed: int = 0, **model_kwargs):
        """The untrained Keras model of ``[normal, reduction]``."""
        import keras

        from mnas_keras.models.cells import build_cell_network

        self._check(model_kwargs)
        normal, reduction = blocks
        keras.utils.set_random_seed(seed)
        inputs, x = self._input()
        net = build_cell_network(normal, reduction, input_tensor=x, num_cells=self.num_cells, filters=self.filters,
                                 stem_filters=self.stem_filters, stem_cells=self.stem_cells, classes=self.classes,
                                 dropout_rate=dropout_rate)
        return keras.Model(inputs, net.output, name="nasnet_cells")  # one input tensor, not a list


@dataclasses.dataclass(frozen=True)
class MacroNetworkRecipe(_FixedSizeRecipe):
    """``build_macro_network`` of ``[macro_string]``."""

    network = "macro"

    def build(self, blocks: Sequence[str], *, dropout_rate: float = 0.0, seed: int = 0, **model_kwargs):
        """The untrained Keras model of ``[macro_string]``."""
        import keras

        from mnas_keras.models.macro import build_macro_network

        self._check(model_kwargs)
        (text,) = blocks
        keras.utils.set_random_seed(seed)
        inputs, x = self._input()
        net = build_macro_network(text, input_tensor=x, classes=self.classes, dropout_rate=dropout_rate)
        return keras.Model(inputs, net.output, name="nasrl")  # one input tensor, not a list


def recipe_for_space(space, *, input_size: int, classes: int = 10, objective: str = "fp32"):
    """The recipe that builds ``space``'s decoded samples at ``input_size`` (``space.network``
    ``"cells"`` or ``"macro"``; MnasNet's space uses ``NetworkRecipe``)."""
    network = getattr(space, "network", "mnasnet")
    if network == "cells":
        return CellNetworkRecipe(input_size=int(input_size), objective=objective, classes=int(classes),
                                 **space.network_settings())
    if network == "macro":
        return MacroNetworkRecipe(input_size=int(input_size), objective=objective, classes=int(classes))
    raise SearchConfigError(f"no fixed-size recipe for network {network!r}; expected 'cells' or 'macro'")
