from mnas_keras.codec import make_divisible, round_filters, round_repeats


def test_make_divisible_matches_keras_depth_rule():
    # keras.applications' _depth: 18 -> 16 would lose > 10%, so 24.
    assert make_divisible(18) == 24
    assert make_divisible(16 * 0.75) == 16
    assert make_divisible(147.2) == 144
    assert make_divisible(183.99999999999997) == 184
    assert make_divisible(3) == 8


def test_round_filters_tpu_rule():
    assert round_filters(32, 0.5) == 16
    assert round_filters(36, 1.0) == 36  # D1: no multiplier means no rounding
    assert round_filters(36, None) == 36
    assert round_filters(36, 1.25) == 48
    assert round_repeats(3, 1.1) == 4 and round_repeats(3, None) == 3
