"""Drawing boxes on images (Pillow's ``ImageDraw``), for evaluation visuals and ``mnas-tflite detect``.

Example:
    >>> import numpy as np
    >>> out = draw_boxes(np.zeros((8, 8, 3), np.uint8), [[0.25, 0.25, 0.75, 0.75]])
    >>> out[2, 2:6, 0].tolist(), out[4, 4].tolist()  # top edge red, inside untouched
    ([255, 255, 255, 255], [0, 0, 0])
"""

from __future__ import annotations

import numpy as np

GT_COLOR = (0, 255, 0)
PREDICTION_COLOR = (255, 0, 0)


def draw_boxes(image, boxes, classes=None, scores=None, *, color=PREDICTION_COLOR, width: int = 1,
               names=None) -> np.ndarray:
    """Draws boxes (and optional ``class score`` labels) on a copy of ``image``.

    A box ``(ymin, xmin, ymax, xmax)`` normalized to [0, 1] (clipped to it) covers the pixel
    rows ``round(ymin H)`` to ``round(ymax H) - 1`` and the columns likewise; its outline is
    drawn on the outermost ``width`` rows and columns of that area.

    Args:
        image: ``[H, W, 3]`` pixels 0-255 (any dtype; clipped and cast to uint8).
        boxes: ``[N, 4]`` normalized yxyx.
        classes: optional ``[N]`` class ids; with it each box gets a label at its top left.
        scores: optional ``[N]`` scores, added to the labels.
        color: RGB of the outlines and labels.
        width: outline width in pixels.
        names: optional class names, ``names[k - 1]`` labelling class ``k``.

    Returns:
        ``uint8 [H, W, 3]``.

    Raises:
        ValueError: ``image`` is not ``[H, W, 3]`` or ``boxes`` not ``[N, 4]``.
    """
    from PIL import Image, ImageDraw

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"draw_boxes: expected an image [H, W, 3]. Received shape {image.shape}")
    boxes = np.asarray(boxes, np.float64)
    if boxes.size == 0:
        boxes = np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"draw_boxes: expected boxes [N, 4]. Received shape {boxes.shape}")
    height, width_px = image.shape[:2]
    pil = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for i, box in enumerate(np.clip(boxes, 0.0, 1.0)):
        y0, x0 = round(box[0] * height), round(box[1] * width_px)
        y1, x1 = max(round(box[2] * height) - 1, y0), max(round(box[3] * width_px) - 1, x0)
        draw.rectangle([x0, y0, x1, y1], outline=tuple(color), width=int(width))
        if classes is not None:
            k = int(classes[i])
            label = names[k - 1] if names is not None and 1 <= k <= len(names) else str(k)
            if scores is not None:
                label += f" {float(scores[i]):.2f}"
            draw.text((x0 + 2, y0 + 1), label, fill=tuple(color))
    return np.asarray(pil)
