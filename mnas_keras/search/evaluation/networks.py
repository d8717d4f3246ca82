"""Proxy evaluation of the NASNet cell and NAS-RL macro spaces.

:class:`SpaceProxyEvaluator` is :class:`~mnas_keras.search.evaluation.proxy.ProxyEvaluator`
(same proxy training, validation, TFLite conversion and LiteRT timing) with the network
recipe the space names (:func:`~mnas_keras.search.latency.networks.recipe_for_space`). These
networks have a fixed input size, so latency is measured at the training resolution
(``image_size``), and only measured latency applies (no latency-table parts).

Example:
    >>> from mnas_keras.search.spaces import NASNetCellSpace
    >>> evaluator = SpaceProxyEvaluator(NASNetCellSpace(), image_size=32, epochs=1)
    >>> evaluator.config()["network"]["network"], evaluator.latency_input_size
    ('cells', 32)
    >>> SpaceProxyEvaluator(NASNetCellSpace(), image_size=32, latency_input_size=224)
    Traceback (most recent call last):
    ...
    mnas_keras.search.errors.SearchConfigError: the nasnet space builds networks at a fixed size: latency is measured at image_size (32); received latency_input_size=224
"""

from __future__ import annotations

from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.evaluation.proxy import ProxyEvaluator


class SpaceProxyEvaluator(ProxyEvaluator):
    """A :class:`ProxyEvaluator` for a space whose ``network`` is ``"cells"`` or ``"macro"``.

    Args:
        space: the space (:class:`~mnas_keras.search.spaces.NASNetCellSpace`,
            :class:`~mnas_keras.search.spaces.NASRLMacroSpace`).
        **kwargs: :class:`ProxyEvaluator`'s arguments; ``latency_input_size`` must be
            ``None`` or ``image_size``, ``latency_mode`` ``"measured"``, no ``model_kwargs``.

    Raises:
        SearchConfigError: a latency size other than ``image_size``, a table latency mode,
            ``model_kwargs``, or a space without such a network.
    """

    def __init__(self, space, **kwargs):
        if getattr(space, "network", "mnasnet") not in ("cells", "macro"):
            raise SearchConfigError(f"SpaceProxyEvaluator takes a cell or macro space; received {space!r} "
                                    "(use ProxyEvaluator for MnasNet's space)")
        image_size = kwargs.get("image_size", 32)
        size = kwargs.get("latency_input_size")
        if size is not None and size != image_size:
            raise SearchConfigError(f"the {space.name} space builds networks at a fixed size: latency is measured at "
                                    f"image_size ({image_size}); received latency_input_size={size}")
        mode = kwargs.get("latency_mode", "measured")
        if mode != "measured" or kwargs.get("latency_table") is not None:
            raise SearchConfigError(f"the {space.name} space has no latency-table parts: only measured latency "
                                    f"applies; received latency_mode={mode!r}")
        if kwargs.get("model_kwargs"):
            raise SearchConfigError(f"the {space.name} space's networks take no model_kwargs; "
                                    f"received {sorted(kwargs['model_kwargs'])}")
        self.space = space
        super().__init__(**{**kwargs, "stem_filters": space.stem_filters or 1})

    def recipe_for(self, classes: int):
        """The space's fixed-size recipe at ``image_size`` with ``classes`` outputs."""
        from mnas_keras.search.latency.networks import recipe_for_space

        return recipe_for_space(self.space, input_size=self.image_size, classes=classes,
                                objective=self.latency_objective)

    def config(self) -> dict:
        """:meth:`ProxyEvaluator.config` plus the network recipe's settings."""
        out = super().config()
        out["type"] = "SpaceProxyEvaluator"
        out["network"] = self.recipe_for(self._classes or 10).settings()
        return out
