"""reduced_tail: the MobileNetV3 paper's halved tail, checked against torchvision's tables."""

import pytest

from mnas_keras.codec import BlockStringError, get_architecture, reduced_tail


def test_mobilenet_v3_large_tail_matches_torchvision():
    # torchvision mobilenet_v3_large(reduced_tail=True): (112 -> 160//2, exp 672), then two
    # blocks 80 -> 80 with expansion 960//2 = 480 (= 6 x 80).
    blocks = reduced_tail(get_architecture("mobilenet_v3_large").blocks)
    assert blocks[:-1] == get_architecture("mobilenet_v3_large").blocks[:-1]
    assert blocks[-1] == "r3_k5_s22_e6_i112_o80_se0.25_hswish_hsig_sexp"


def test_mobilenet_v3_small_tail_matches_torchvision():
    # torchvision mobilenet_v3_small(reduced_tail=True): (48 -> 96//2, exp 288), then two
    # blocks 48 -> 48 with expansion 576//2 = 288 (= 6 x 48).
    blocks = reduced_tail(get_architecture("mobilenet_v3_small").blocks)
    assert blocks[-1] == "r3_k5_s22_e6_i48_o48_se0.25_hswish_hsig_sexp"


def test_mnasnet_a1_tail_halves_every_stage_after_the_last_stride_2():
    blocks = reduced_tail(get_architecture("mnasnet_a1").blocks)
    assert blocks[-2:] == ("r3_k5_s22_e6_i112_o80_se0.25", "r1_k3_s11_e6_i80_o160")


def test_odd_width_is_a_clear_error():
    with pytest.raises(BlockStringError, match="not divisible by 2"):
        reduced_tail(["r1_k3_s22_e6_i16_o25"])


def test_reduced_tail_backbone_has_torchvision_last_conv_width():
    from mnas_keras.applications import MobileNetV3Large, MobileNetV3Small

    large = MobileNetV3Large(input_shape=(64, 64, 3), include_top=False, weights=None, reduced_tail=True)
    small = MobileNetV3Small(input_shape=(64, 64, 3), include_top=False, weights=None, reduced_tail=True)
    # torchvision: lastconv_output_channels = 6 * 80 = 480 (Large), 6 * 48 = 288 (Small).
    assert large.output_shape == (None, 2, 2, 480)
    assert small.output_shape == (None, 2, 2, 288)
