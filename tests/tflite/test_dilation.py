"""Dilated convolutions reach LiteRT as native dilated ops (LR-ASPP segmenters, OS 16 and 8)."""

import numpy as np
import pytest

from mnas_keras.heads import LRASPPMnasNetA1, LRASPPMobileNetV3Small
from mnas_keras.tflite import compare, convert, delegation, list_operators, randomize_batch_norm
from mnas_keras.tflite.dilation import count_dilated

SHAPE = (65, 47, 3)  # odd, non-square; converted with a dynamic batch
_BUILDERS = {"mnasnet_a1": LRASPPMnasNetA1, "mobilenet_v3_small": LRASPPMobileNetV3Small}


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (4, *SHAPE)).astype("float32")


def _segmenter(name, output_stride):
    model = _BUILDERS[name](num_classes=5, output_stride=output_stride, alpha=0.5 if "v3" in name else 0.35)
    randomize_batch_norm(model, seed=1)
    return model


@pytest.mark.parametrize("name", sorted(_BUILDERS))
@pytest.mark.parametrize("output_stride", [16, 8])
def test_float_native_dilation_one_partition_parity(name, output_stride, images):
    model = _segmenter(name, output_stride)
    assert count_dilated(model) > 0
    fb = convert(model, input_shape=SHAPE)
    ops = list_operators(fb)
    assert "SPACE_TO_BATCH_ND" not in ops and "BATCH_TO_SPACE_ND" not in ops
    # BN folded: every MUL/ADD left is the model's own (SE gates, residual adds, the
    # LR-ASPP gate and sum, the input normalization), counted from the Keras graph.
    own_mul = sum(1 for layer in model.layers if type(layer).__name__ in ("Multiply", "Normalization"))
    own_add = sum(1 for layer in model.layers if type(layer).__name__ == "Add")
    hard_swish = "v3" in name  # hard-sigmoid gates convert to ADD+MUL pairs in MobileNetV3
    if not hard_swish:
        assert ops.get("MUL", 0) == own_mul and ops.get("ADD", 0) == own_add
    report = delegation(fb, input_shape=(1, *SHAPE))
    assert report.partitions == 1 and report.undelegated == {}
    parity = compare(model, fb, images[:2])
    assert parity.max_rel_diff < 1e-4


def test_dynamic_batch_without_rewrite_keeps_space_to_batch(images):
    # The defect fixed (DENSE_HEADS.md): TF's lowering with a dynamic batch leaves 3 unfused
    # pairs and unfolded BN in MnasNet-A1 at output stride 16; at a fully static shape the
    # converter's own fusion gives exactly the rewrite's operators.
    model = _segmenter("mnasnet_a1", 16)
    ops = list_operators(convert(model, input_shape=SHAPE, dilation="keras"))
    assert ops["SPACE_TO_BATCH_ND"] == ops["BATCH_TO_SPACE_ND"] == 3
    static = list_operators(convert(model, input_shape=SHAPE, batch_size=1, dilation="keras"))
    assert list_operators(convert(model, input_shape=SHAPE)) == static


@pytest.mark.parametrize("name,output_stride", [("mnasnet_a1", 16), ("mobilenet_v3_small", 8)])
def test_int8_native_dilation_one_partition(name, output_stride, images):
    model = _segmenter(name, output_stride)
    fb = convert(model, "int8", representative_data=images, input_shape=SHAPE)
    ops = list_operators(fb)
    assert "SPACE_TO_BATCH_ND" not in ops and "BATCH_TO_SPACE_ND" not in ops
    report = delegation(fb, input_shape=(1, *SHAPE))
    assert report.partitions == 1 and report.undelegated == {}


def test_mnas_tflite_cli_converts_a_saved_segmenter(tmp_path, capsys):
    # A .keras segmenter (custom LRASPP and ResizeLike classes) loads in safe mode and
    # converts through the command line; the flatbuffer reproduces the Keras logits.
    from mnas_keras.tflite.cli import main
    from mnas_keras.tflite import run_tflite

    model = LRASPPMobileNetV3Small(num_classes=3, alpha=0.35, output_stride=8)
    randomize_batch_norm(model, seed=2)
    path, out = str(tmp_path / "seg.keras"), str(tmp_path / "seg.tflite")
    model.save(path)
    assert main(["mnas-tflite", "convert", f"--model={path}", "--input_size=64", f"--output={out}"]) == 0
    fb = open(out, "rb").read()
    assert "SPACE_TO_BATCH_ND" not in list_operators(fb)
    x = np.random.default_rng(3).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    expected = model(x).numpy()
    np.testing.assert_allclose(run_tflite(fb, x)[0], expected, atol=1e-4 * np.abs(expected).max())


def test_int8_paper_pooling_runs_in_one_partition(images):
    # XNNPACK runs int8 AVERAGE_POOL_2D on no kernel of its own; the gate's strided pooling
    # is converted as a constant depthwise conv (same function) in the int8 modes.
    from mnas_keras.tflite import conversion_info, run_tflite
    from mnas_keras.tflite.dilation import average_pools_as_depthwise

    model = LRASPPMobileNetV3Small(input_shape=(96, 128, 3), num_classes=3, alpha=0.35, pooling=(5, (2, 3)))
    randomize_batch_norm(model, seed=4)
    data = np.random.default_rng(5).uniform(0, 255, (4, 96, 128, 3)).astype("float32")
    copy, count = average_pools_as_depthwise(model)
    assert count == 1
    np.testing.assert_allclose(copy(data).numpy(), model(data).numpy(), rtol=1e-5, atol=1e-5)
    fb = convert(model, "int8", representative_data=data)
    assert "AVERAGE_POOL_2D" not in list_operators(fb)
    assert conversion_info(fb)["average_pools_as_depthwise"] == 1
    report = delegation(fb, input_shape=(1, 96, 128, 3))
    assert report.partitions == 1 and report.undelegated == {}
    assert "AVERAGE_POOL_2D" in list_operators(convert(model))  # float keeps the fast pool
