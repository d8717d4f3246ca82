"""``postprocess`` names outputs and anchors that do not fit each other (it ended in a
TensorFlow ``Incompatible shapes`` error, or a ``KeyError`` for a missing tensor)."""

import numpy as np
import pytest

from mnas_keras.heads import AnchorConfig, generate_anchors, postprocess


def _outputs(anchors: int, classes: int = 3):
    return {"box_encodings": np.zeros((1, anchors, 4), "float32"),
            "class_logits": np.zeros((1, anchors, classes + 1), "float32")}


def test_anchors_of_another_model_are_named():
    # 6 anchors per cell on a 2x2 and a 1x1 map (TF OD API layout; the lowest layer reduced
    # to 3 boxes): 3 * 4 + 6 * 1 = 18 anchors; the same layout on 3x3 + 1x1: 3 * 9 + 6 = 33
    small = generate_anchors([(2, 2), (1, 1)], AnchorConfig(), (64, 64))
    large = generate_anchors([(3, 3), (1, 1)], AnchorConfig(), (96, 96))
    assert (len(small), len(large)) == (18, 33)
    assert postprocess(_outputs(18), small)["boxes"].shape == (1, 100, 4)
    with pytest.raises(ValueError, match=r"the outputs have 18 anchors .* but anchors has 33; pass the anchors of "
                                         r"the model that made the outputs"):
        postprocess(_outputs(18), large)


def test_missing_tensor_and_bad_shapes_are_named():
    anchors = generate_anchors([(2, 2), (1, 1)], AnchorConfig(), (64, 64))
    with pytest.raises(ValueError, match=r"a dict of 'box_encodings' .* received \['box_encodings'\]"):
        postprocess({"box_encodings": np.zeros((1, 18, 4), "float32")}, anchors)
    bad = {"box_encodings": np.zeros((1, 18, 5), "float32"), "class_logits": np.zeros((1, 18, 4), "float32")}
    with pytest.raises(ValueError, match=r"received \[1, 18, 5\], \[1, 18, 4\] and \[18, 4\]"):
        postprocess(bad, anchors)
