"""Box drawing against hand-drawn pixel masks."""

import numpy as np
import pytest

from mnas_keras.heads.drawing import draw_boxes


def test_outline_pixels_by_hand():
    # a 10x8 (H x W) image; box rows 0.2*10=2 .. 0.7*10-1=6, columns 0.25*8=2 .. 0.75*8-1=5
    out = draw_boxes(np.full((10, 8, 3), 7, np.uint8), [[0.2, 0.25, 0.7, 0.75]], color=(1, 2, 3))
    want = np.zeros((10, 8), bool)
    want[2, 2:6] = want[6, 2:6] = True
    want[2:7, 2] = want[2:7, 5] = True
    np.testing.assert_array_equal(np.all(out == (1, 2, 3), -1), want)
    np.testing.assert_array_equal(out[~want], np.full((int((~want).sum()), 3), 7))


def test_boxes_outside_are_clipped_and_labels_drawn():
    image = np.zeros((16, 16, 3), np.float32)
    out = draw_boxes(image, [[-0.5, -0.5, 2.0, 2.0]], color=(255, 0, 0))
    assert out.dtype == np.uint8 and out.shape == (16, 16, 3)
    edge = np.zeros((16, 16), bool)
    edge[[0, 15], :] = edge[:, [0, 15]] = True
    np.testing.assert_array_equal(out[..., 0] == 255, edge)
    labelled = draw_boxes(np.zeros((32, 32, 3)), [[0.0, 0.0, 1.0, 1.0]], [2], [0.5], names=["a", "b"])
    inside = labelled[1:-1, 1:-1, 0] > 0  # the text "b 0.50" is drawn inside the outline
    assert inside.any()
    np.testing.assert_array_equal(draw_boxes(image, np.zeros((0, 4))), image.astype(np.uint8))


def test_bad_shapes_name_what_was_expected():
    with pytest.raises(ValueError, match=r"image \[H, W, 3\]"):
        draw_boxes(np.zeros((4, 4)), [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match=r"boxes \[N, 4\]"):
        draw_boxes(np.zeros((4, 4, 3)), [[0, 0, 1]])
