"""Weight surgery: a narrower copy of an ``MnasNet`` that inherits the parent's weights.

:func:`shrink` builds the network of a NetAdapt proposal (:mod:`.proposals`) and fills it
with the parent's weights by truncation. Channels are tracked through the graph: every
Conv2D/Dense output starts a *channel space*; depthwise convs, batch norms, activations,
pools and dropout pass their input's space on; an ``Add`` or ``Multiply`` joins the spaces
of its inputs (a residual chain, or a squeeze-excite gate and the tensor it scales). A
space that got narrower keeps the channels of largest L2 norm, the norm summed over the
convolutions that produce it (the SE expand conv excluded): NetAdapt's rule, and for a
residual chain that of its reference code, which prunes the joined layers together. Every
weight tensor is then the parent's tensor indexed by the kept channels on each axis, so
the kept weights equal the parent's bit for bit and nothing that could be kept is
re-initialised.

Example:
    >>> from mnas_keras.models import MnasNet
    >>> parent = MnasNet(["r1_k3_s11_e1_i8_o8", "r2_k3_s22_e6_i8_o16_se0.25"], stem_filters=8,
    ...                  input_shape=(32, 32, 3), classes=4, head_filters=32)
    >>> child = shrink(parent, "expansion:1", 32)
    >>> child.blocks
    ['r1_k3_s11_e1_i8_o8', 'r1_k3_s22_e4_i8_o16_se0.25', 'r1_k3_s11_e6_i16_o16_se0.25']
"""

from __future__ import annotations

import re
from typing import Sequence

import keras
import numpy as np

from mnas_keras.codec import round_filters
from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.netadapt.proposals import apply, find_proposal, flatten, merge

_PREFIX = re.compile(r"^stage(\d+)_block(\d+)_")
_PASS = (keras.layers.DepthwiseConv2D,)


class SurgeryError(SearchConfigError):
    """A model NetAdapt cannot refine (not an ``MnasNet``, or its weights do not match)."""


def find_backbone(model):
    """The ``MnasNet`` to refine: ``model`` itself, or the one ``MnasNet`` nested in it.

    Raises:
        SurgeryError: no ``MnasNet``, or several.
    """
    from mnas_keras.models import MnasNet

    if isinstance(model, MnasNet):
        return model
    found = []

    def walk(m):
        for layer in getattr(m, "layers", ()):
            if isinstance(layer, MnasNet):
                found.append(layer)
            elif isinstance(layer, keras.Model):
                walk(layer)

    walk(model)
    if len(found) != 1:
        raise SurgeryError(
            f"NetAdapt refines an mnas_keras.MnasNet (block strings); {getattr(model, 'name', model)!r} "
            f"{'is none and nests none' if not found else f'nests {len(found)}'}; pass the MnasNet itself"
        )
    return found[0]


def _nests(model, target) -> bool:
    return any(layer is target or (isinstance(layer, keras.Model) and _nests(layer, target))
               for layer in getattr(model, "layers", ()))


def rewrap(model, backbone, replacement):
    """``model`` with its nested ``backbone`` replaced by ``replacement``: every other layer
    is a copy (same config, same weights), the backbone's call (e.g. ``training=False``) and
    the graph around it kept; models nested deeper are rebuilt the same way. ``model`` itself
    being ``backbone`` gives ``replacement``.

    Args:
        model: a functional or Sequential model containing ``backbone``.
        backbone: the layer (an ``MnasNet``) to replace.
        replacement: the new backbone (same input shape and output width).

    Returns:
        A new model; ``model`` is left unchanged.

    Raises:
        SurgeryError: ``backbone`` is not in ``model``.

    Example:
        >>> from mnas_keras.models import MnasNet
        >>> inner = MnasNet(["r1_k3_s11_e1_i8_o8"], stem_filters=8, input_shape=(32, 32, 3),
        ...                 include_top=False, pooling="avg", head_filters=16)
        >>> x = keras.Input((32, 32, 3), name="image")
        >>> outer = keras.Model(x, keras.layers.Dense(3, name="top")(inner(x)), name="classifier")
        >>> narrow = MnasNet(["r1_k3_s11_e1_i8_o8"], stem_filters=8, input_shape=(32, 32, 3),
        ...                  include_top=False, pooling="avg", head_filters=16, name="narrow")
        >>> new = rewrap(outer, inner, narrow)
        >>> new.name, [layer.name for layer in new.layers]
        ('classifier', ['image', 'narrow', 'top'])
    """
    if model is backbone:
        return replacement
    if not _nests(model, backbone):
        raise SurgeryError(f"{getattr(backbone, 'name', backbone)!r} is not nested in "
                           f"{getattr(model, 'name', model)!r}")
    copied = {}

    def clone(layer):
        if layer is backbone:
            return replacement
        if isinstance(layer, keras.Model) and _nests(layer, backbone):
            new = rewrap(layer, backbone, replacement)
        else:
            new = layer.__class__.from_config(layer.get_config())
            copied[id(new)] = layer
        return new

    inputs = None
    if not isinstance(model, keras.Sequential):  # keep the input layers' names
        inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t._keras_history[0].name)
                  for t in model.inputs]
        inputs = inputs if len(inputs) > 1 else inputs[0]
    out = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    for layer in out.layers:
        source = copied.get(id(layer))
        if source is not None and source.weights:
            layer.set_weights(source.get_weights())
    return out


def flat_config(model) -> dict:
    """The model's ``MnasNet`` config with flat blocks and the width multiplier applied
    (``alpha`` 1.0, scaled block widths and stem), which builds the same graph.

    Example:
        >>> from mnas_keras.models import MnasNet
        >>> m = MnasNet(["r2_k3_s22_e6_i16_o24"], alpha=0.5, input_shape=(32, 32, 3), classes=3)
        >>> c = flat_config(m)
        >>> c["blocks"], c["stem_filters"], c["alpha"]
        (['r1_k3_s22_e6_i8_o16', 'r1_k3_s11_e6_i16_o16'], 16, 1.0)
    """
    config = dict(find_backbone(model).get_config())
    alpha = float(config.get("alpha", 1.0))
    blocks = [
        b.replace(input_filters=round_filters(b.input_filters, alpha),
                  output_filters=round_filters(b.output_filters, alpha))
        for b in flatten(config["blocks"])
    ]
    if config.get("scale_stem", True):
        config["stem_filters"] = round_filters(config["stem_filters"], alpha)
    if config.get("head") == "mobilenetv3" and alpha > 1.0:
        from mnas_keras.codec import make_divisible

        config["head_filters"] = make_divisible(config["head_filters"] * alpha, 8)
    config.update(blocks=[b.to_string() for b in blocks], alpha=1.0, scale_stem=True)
    config.pop("layer_overrides", None)
    return config


def build(config: dict, blocks: Sequence, stem_filters: int):
    """An ``MnasNet`` from ``config`` with other (flat) blocks and stem width, blocks merged."""
    from mnas_keras.models import MnasNet

    return MnasNet.from_config({**config, "blocks": merge(blocks), "stem_filters": int(stem_filters)})


def canonical_names(model) -> dict[str, str]:
    """Layer name -> a name independent of how repeats are grouped into stages
    (``stage3_block2_expand`` -> ``b5_expand``, flat block index 5)."""
    prefixes = {}
    flat = 0
    for si, spec in enumerate(model.specs):
        for bi in range(spec.repeats):
            prefixes[(si + 1, bi + 1)] = flat
            flat += 1
    out = {}
    for layer in model.layers:
        match = _PREFIX.match(layer.name)
        if match:
            index = prefixes[(int(match.group(1)), int(match.group(2)))]
            out[layer.name] = f"b{index}_" + layer.name[match.end():]
        else:
            out[layer.name] = layer.name
    return out


def _inputs(layer) -> list[str]:
    node = layer._inbound_nodes[0]
    return [t._keras_history[0].name for t in node.input_tensors]


class ChannelSpaces:
    """The channel spaces of a flat functional model (see the module docstring).

    Attributes:
        space: layer name -> the root of its output's channel space.
        members: root -> the Conv2D/Dense layers producing it.
    """

    def __init__(self, model):
        parent: dict[str, str] = {}

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        out: dict[str, str] = {}
        for layer in model.layers:
            name = layer.name
            if isinstance(layer, keras.layers.InputLayer):
                out[name] = parent.setdefault("input", "input")
                continue
            sources = [out[s] for s in _inputs(layer)]
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and not isinstance(layer, _PASS):
                parent[name] = name
                out[name] = name
            elif len(sources) == 1:
                out[name] = sources[0]
            else:
                roots = [find(s) for s in sources]
                for r in roots[1:]:
                    parent[r] = roots[0]
                out[name] = roots[0]
        self.space = {name: find(s) for name, s in out.items()}
        self.input_space = {layer.name: [self.space[s] for s in _inputs(layer)]
                            for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)}
        self.members: dict[str, list[str]] = {}
        for layer in model.layers:
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and not isinstance(layer, _PASS):
                self.members.setdefault(self.space[layer.name], []).append(layer.name)
        self.width = {self.space[l.name]: int(l.output.shape[-1]) for l in model.layers}


def filter_norms(model, spaces: ChannelSpaces, root: str) -> np.ndarray:
    """Per output channel of a space: the summed squared L2 norm of the kernels producing it
    (SE expand convs excluded unless they are the only producers)."""
    names = [n for n in spaces.members.get(root, []) if not n.endswith("se_expand")] or spaces.members.get(root, [])
    if not names:
        raise SurgeryError(f"channel space {root!r} has no convolution producing it; it cannot shrink")
    total = 0.0
    for name in names:
        kernel = np.asarray(model.get_layer(name).kernel, dtype="float64")
        total = total + np.sum(kernel.reshape(-1, kernel.shape[-1]) ** 2, axis=0)
    return total


def keep_indices(norms: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` channels of largest norm, in their original order (ties: lower index).

    Example:
        >>> keep_indices(np.array([3.0, 1.0, 2.0, 5.0]), 2)
        array([0, 3])
    """
    order = np.argsort(-np.asarray(norms), kind="stable")
    return np.sort(order[:width])


def _weight_axes(layer, spaces: ChannelSpaces, weight_index: int, ndim: int) -> list[str | None]:
    """The channel space of each axis of one weight tensor (None: not a channel axis)."""
    own = spaces.space[layer.name]
    source = spaces.input_space[layer.name][0] if spaces.input_space.get(layer.name) else None
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [None, None, source, None] if ndim == 4 else [source]
    if isinstance(layer, keras.layers.Conv2D):
        return [None, None, source, own] if ndim == 4 else [own]
    if isinstance(layer, keras.layers.Dense):
        return [source, own] if ndim == 2 else [own]
    if isinstance(layer, keras.layers.BatchNormalization):
        return [source]
    return [None] * ndim


def transfer(parent, child) -> dict[str, list]:
    """Copies ``parent``'s weights into the narrower ``child`` by truncation.

    Both are ``MnasNet`` s with the same structure; layers are matched by their canonical
    names (:func:`canonical_names`). Returns the kept channel indices of every space that
    got narrower, keyed by the canonical name of its first producing layer.

    Raises:
        SurgeryError: the two graphs differ in more than widths.
    """
    p_names, c_names = canonical_names(parent), canonical_names(child)
    p_by_canon = {v: k for k, v in p_names.items()}
    if sorted(p_names.values()) != sorted(c_names.values()):
        missing = sorted(set(p_names.values()) ^ set(c_names.values()))[:5]
        raise SurgeryError(f"parent and child differ in layers (e.g. {missing}); only widths may change")
    p_spaces, c_spaces = ChannelSpaces(parent), ChannelSpaces(child)
    keep: dict[str, np.ndarray] = {}  # parent space root -> kept indices

    def kept(c_root: str) -> np.ndarray | None:
        p_root = p_spaces.space[p_by_canon[c_names[c_root]]] if c_root != "input" else "input"
        old, new = p_spaces.width[p_root], c_spaces.width[c_root]
        if old == new:
            return None
        if new > old:
            raise SurgeryError(f"channel space {c_names.get(c_root, c_root)!r} grew from {old} to {new}")
        if p_root not in keep:
            keep[p_root] = keep_indices(filter_norms(parent, p_spaces, p_root), new)
        return keep[p_root]

    for layer in child.layers:
        if not layer.weights:
            continue
        source = parent.get_layer(p_by_canon[c_names[layer.name]])
        values = []
        for index, (w_child, w_parent) in enumerate(zip(layer.weights, source.weights)):
            array = np.asarray(w_parent)
            for axis, root in enumerate(_weight_axes(layer, c_spaces, index, array.ndim)):
                if root is None:
                    continue
                indices = kept(root)
                if indices is not None:
                    array = np.take(array, indices, axis=axis)
            if tuple(array.shape) != tuple(w_child.shape):
                raise SurgeryError(f"weight {w_child.path} of shape {tuple(w_child.shape)} cannot take the "
                                   f"parent's {tuple(np.shape(w_parent))} (truncated to {array.shape})")
            values.append(array)
        layer.set_weights(values)
    names = {root: p_names[p_spaces.members[root][0]] if root in p_spaces.members else root for root in keep}
    return {names[root]: [int(i) for i in indices] for root, indices in keep.items()}


def shrink(model, proposal, width: int):
    """A copy of ``model`` (an ``MnasNet`` or a model nesting one) with one proposal set to
    ``width`` filters and every other weight inherited.

    Args:
        model: the trained parent.
        proposal: a :class:`~mnas_keras.search.netadapt.proposals.Proposal` or its key (``"expansion:4"``).
        width: the new filter count (below the current one).

    Returns:
        A new ``MnasNet`` (blocks merged into stages where repeats are identical), in the
        same wrapping as ``model`` when ``model`` nests it (:func:`rewrap`: outer layers
        copied with their weights), with ``netadapt_kept`` (kept channel indices per narrowed
        space) set on it.

    Raises:
        ProposalError: the width would change the structure. SurgeryError: bad model.
    """
    backbone = find_backbone(model)
    config = flat_config(backbone)
    blocks = flatten(config["blocks"])
    if isinstance(proposal, str):
        proposal = find_proposal(blocks, config["stem_filters"], proposal)
    new_blocks, stem = apply(blocks, config["stem_filters"], proposal, width)
    child = build(config, new_blocks, stem)
    child.netadapt_kept = transfer(backbone, child)
    if model is not backbone:
        kept = child.netadapt_kept
        child = rewrap(model, backbone, child)
        child.netadapt_kept = kept
    return child
