"""The generated shapes x textures classification dataset (issue 21): geometry against hand
computations, texture fill against an independent colour count, determinism, registration."""

import math

import numpy as np
import pytest

from mnas_keras.training.config import DataConfig
from mnas_keras.training.data import load_source, train_dataset
from mnas_keras.training.data.shapes_classification import (
    NUM_CLASSES,
    SHAPES,
    TEXTURES,
    ShapesClassificationSource,
    class_name,
    load_shapes_classification,
    make_shapes_classification,
    shape_mask,
    texture_pattern,
)
from mnas_keras.training.errors import DataError
from mnas_keras.training.recipes import get_recipe


@pytest.fixture(scope="module")
def clean64():
    """Noise- and distractor-free 64x64 images: every class three times."""
    return make_shapes_classification(3 * NUM_CLASSES, size=64, seed=3, max_distractors=0, noise=0.0)


def test_shape_areas_match_hand_computations():
    side, r = 40, 20.0
    expected = {
        "square": side**2,
        "disc": math.pi * r**2,
        "triangle": side * (side + 1) / 2,  # apex up, row k (0-based) is k + 1 pixels wide
        "cross": side**2 * (2 * 0.34 - 0.34**2),  # two bars 0.34 of the side wide
        "ring": math.pi * (r**2 - (0.55 * r) ** 2),
    }
    for shape, area in expected.items():
        mask = shape_mask(shape, 64, 10, 12, side)
        assert mask.shape == (64, 64)
        assert abs(mask.sum() - area) <= 0.04 * area, (shape, int(mask.sum()), area)
        ys, xs = np.nonzero(mask)  # inside its box
        assert ys.min() >= 10 and ys.max() < 50 and xs.min() >= 12 and xs.max() < 52
    assert shape_mask("ring", 64, 10, 12, side)[30, 32] == 0  # the hole at the centre


def test_texture_fill_fractions_match_hand_computations():
    rng = np.random.default_rng(0)
    # stripes and checker: half of the pixels; dots: pi * 0.3^2 of each lattice cell
    for texture, share in (("solid", 1.0), ("stripes", 0.5), ("checker", 0.5), ("dots", math.pi * 0.09)):
        means = [texture_pattern(texture, 128, rng).mean() for _ in range(4)]
        assert abs(np.mean(means) - share) < 0.03, (texture, means)


def test_texture_of_each_label_seen_by_an_independent_colour_count(clean64):
    images, labels = clean64
    for image, label in zip(images, labels):
        colours, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
        # The object's fill colours are the only colours repeated over many pixels (the
        # background is a continuous gradient plus gratings, flat only where a channel clips
        # at 0 or 255): solid one, textures two.
        clipped = np.any((colours == 0) | (colours == 255), axis=1)
        dominant = int(((counts >= 40) & ~clipped).sum())
        assert dominant == (1 if TEXTURES[label % 4] == "solid" else 2), (class_name(int(label)), counts.max())


def test_deterministic_balanced_and_splits_disjoint():
    a_images, a_labels = make_shapes_classification(45, size=32, seed=5)
    b_images, b_labels = make_shapes_classification(45, size=32, seed=5)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_labels, b_labels)
    assert np.bincount(a_labels, minlength=NUM_CLASSES).tolist() == [3] * 5 + [2] * 15
    assert not np.array_equal(make_shapes_classification(45, size=32, seed=6)[0], a_images)
    (x, y), (xt, yt) = load_shapes_classification(size=32, num_train=20, num_test=20, seed=1)
    assert x.shape == (20, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
    assert not np.array_equal(x, xt)  # train and test come from different seeds
    assert (len(SHAPES), len(TEXTURES), class_name(9)) == (5, 4, "triangle/stripes")  # 9 = 2 * 4 + 1


def test_registered_as_dataset_and_recipe_and_feeds_the_pipeline():
    source = load_source(DataConfig(name="shapes_classification", image_size=48))
    assert isinstance(source, ShapesClassificationSource) and (source.size, source.num_classes) == (48, 20)
    assert get_recipe("shapes_classification").data.name == "shapes_classification"
    small = ShapesClassificationSource(size=32, num_train=16, num_test=8)
    images, labels = next(iter(train_dataset(small, "train", batch_size=8, image_size=32, augmentation="flip",
                                             seed=0, shuffle_buffer=16)))
    assert images.shape == (8, 32, 32, 3) and labels.shape == (8,)
    assert small.num_examples("test") == 8


def test_bad_arguments_name_the_value():
    with pytest.raises(DataError, match="image size must be an integer >= 16 pixels; received 8"):
        ShapesClassificationSource(size=8)
    with pytest.raises(DataError, match="num_train must be a positive integer; received 0"):
        ShapesClassificationSource(num_train=0)
    with pytest.raises(DataError, match="has no split 'validation'"):
        ShapesClassificationSource(num_train=4, num_test=4).dataset("validation")
    with pytest.raises(DataError, match="unknown texture 'plaid'"):
        texture_pattern("plaid", 8, np.random.default_rng(0))
    with pytest.raises(DataError, match="label must be in 0..19; received 20"):
        class_name(20)
    with pytest.raises(DataError, match=r"textures must be distinct names from .*; received \['solid', 'solid'\]"):
        ShapesClassificationSource(textures=("solid", "solid"))


def test_subsets_make_fewer_classes():
    source = ShapesClassificationSource(size=16, num_train=12, num_test=4, shapes=("disc", "ring"),
                                       textures=("solid", "dots", "checker"))
    assert source.num_classes == 6 and source.class_names[5] == "ring/checker"  # 1 * 3 + 2
    assert np.bincount(source.arrays("train")[1]).tolist() == [2] * 6
