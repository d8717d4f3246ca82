"""SSD anchors, laid out as the TF Object Detection API's ``ssd_anchor_generator``.

Facts (TF OD API ``anchor_generators/multiple_grid_anchor_generator.create_ssd_anchors``,
the SSD paper's eq. 4): scales linear from ``min_scale`` to ``max_scale`` over the maps;
per map one anchor per aspect ratio ``a`` of height ``s / sqrt(a)`` and width ``s * sqrt(a)``,
then an extra square of scale ``sqrt(s_k * s_k+1)`` (``s_K+1 = 1``); on the lowest map
(``reduce_boxes_in_lowest_layer``) only ``(0.1, 1), (s, 2), (s, 1/2)``. Anchor centres sit at
``(i + 0.5) / h, (j + 0.5) / w``; anchors are ordered row, column, then box within a cell
(the order of a ``[batch, h, w, anchors * k]`` predictor reshaped to ``[batch, -1, k]``).
For a non-square image the base size is ``min(H, W) / H`` by ``min(H, W) / W`` (normalized).

Boxes here are normalized; an anchor is ``(ycenter, xcenter, height, width)``
(``keras.utils.bounding_boxes``' ``"center_yxhw"``, and the layout that LiteRT's
``TFLite_Detection_PostProcess`` reads).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class AnchorConfig:
    """The SSD anchor layout (defaults: the TF OD API's SSDLite configs).

    Attributes:
        min_scale, max_scale: anchor scale of the first and last map (fraction of the
            shorter image side); TF OD API 0.2 and 0.95.
        aspect_ratios: width / height ratios; TF OD API ``(1, 2, 0.5, 3, 0.3333)``.
        interpolated_scale_aspect_ratio: aspect ratio of the extra anchor of scale
            ``sqrt(s_k s_k+1)`` (0 for none); TF OD API 1.0.
        reduce_boxes_in_lowest_layer: only 3 anchors on the first map (TF OD API default
            True; torchvision's ssdlite320 uses 6 everywhere, i.e. False).
    """

    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple = (1.0, 2.0, 0.5, 3.0, 0.3333)
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = True

    def __post_init__(self):
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(
                f"Expected 0 < min_scale <= max_scale. Received: min_scale={self.min_scale}, "
                f"max_scale={self.max_scale}"
            )
        if not self.aspect_ratios or any(float(a) <= 0 for a in self.aspect_ratios):
            raise ValueError(f"Expected positive aspect_ratios. Received: {self.aspect_ratios}")
        object.__setattr__(self, "aspect_ratios", tuple(float(a) for a in self.aspect_ratios))

    def box_specs(self, num_layers: int) -> list[list[tuple[float, float]]]:
        """``(scale, aspect_ratio)`` of each anchor of each map.

        Example:
            >>> [len(s) for s in AnchorConfig().box_specs(6)]
            [3, 6, 6, 6, 6, 6]
        """
        if num_layers < 1:
            raise ValueError(f"Expected at least one feature map. Received: {num_layers}")
        if num_layers == 1:
            scales = [self.min_scale]
        else:
            step = (self.max_scale - self.min_scale) / (num_layers - 1)
            scales = [self.min_scale + step * i for i in range(num_layers)]
        scales = scales + [1.0]
        specs = []
        for i in range(num_layers):
            scale, scale_next = scales[i], scales[i + 1]
            if i == 0 and self.reduce_boxes_in_lowest_layer:
                layer = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
            else:
                layer = [(scale, a) for a in self.aspect_ratios]
                if self.interpolated_scale_aspect_ratio > 0:
                    layer.append((math.sqrt(scale * scale_next), self.interpolated_scale_aspect_ratio))
            specs.append(layer)
        return specs

    def anchors_per_location(self, num_layers: int) -> list[int]:
        """Anchors per cell of each map."""
        return [len(s) for s in self.box_specs(num_layers)]

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "aspect_ratios": list(self.aspect_ratios)}


def generate_anchors(
    feature_map_sizes: Sequence[tuple[int, int]],
    config: AnchorConfig = AnchorConfig(),
    image_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """All anchors of all maps, ``[num_anchors, 4]`` float32 ``(ycenter, xcenter, h, w)``.

    Args:
        feature_map_sizes: ``(height, width)`` of each map, first (finest) map first.
        config: the anchor layout.
        image_size: ``(height, width)`` of the input image in pixels, for the base size of a
            non-square image; ``None`` = square.

    Returns:
        Normalized anchors (not clipped), row-major per map, maps concatenated.

    Example:
        >>> a = generate_anchors([(2, 2), (1, 1)], AnchorConfig(reduce_boxes_in_lowest_layer=False))
        >>> a.shape
        (30, 4)
        >>> [round(float(v), 4) for v in a[0]]  # first cell, aspect 1, scale 0.2
        [0.25, 0.25, 0.2, 0.2]
    """
    sizes = [tuple(int(v) for v in s) for s in feature_map_sizes]
    for s in sizes:
        if len(s) != 2 or min(s) < 1:
            raise ValueError(f"Expected feature map sizes (height, width) >= 1. Received: {sizes}")
    base_h = base_w = 1.0
    if image_size is not None:
        im_h, im_w = (float(v) for v in image_size)
        if im_h <= 0 or im_w <= 0:
            raise ValueError(f"Expected a positive image size. Received: {image_size}")
        base_h, base_w = min(im_h, im_w) / im_h, min(im_h, im_w) / im_w
    out = []
    for (h, w), specs in zip(sizes, config.box_specs(len(sizes))):
        scales = np.array([s for s, _ in specs], np.float64)
        ratios = np.sqrt(np.array([a for _, a in specs], np.float64))
        heights = scales / ratios * base_h
        widths = scales * ratios * base_w
        yc = (np.arange(h) + 0.5) / h
        xc = (np.arange(w) + 0.5) / w
        grid_y, grid_x, box = np.meshgrid(yc, xc, np.arange(len(specs)), indexing="ij")
        layer = np.stack([grid_y, grid_x, heights[box], widths[box]], axis=-1)
        out.append(layer.reshape(-1, 4))
    return np.concatenate(out, axis=0).astype(np.float32)
