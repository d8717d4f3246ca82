"""Folder datasets: hidden entries ignored (as keras.utils.image_dataset_from_directory), bad
structure and bad files reported when the source is built, naming the folder or file."""

import os

import numpy as np
import pytest

from mnas_keras.training.data.sources import FolderSource
from mnas_keras.training.errors import DataError


def _png(path, value=0):
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full((6, 6, 3), value, np.uint8)).save(path)


@pytest.fixture
def root(tmp_path):
    for split, classes in {"train": ("ant", "bee"), "test": ("ant", "bee")}.items():
        for cls in classes:
            for i in range(2):
                _png(str(tmp_path / split / cls / f"{i}.png"), 40 * i)
    return tmp_path


def test_hidden_folders_and_files_ignored_like_keras(root):
    import keras

    _png(str(root / ".ipynb_checkpoints" / "x" / "0.png"))  # a hidden "split"
    _png(str(root / "train" / ".ipynb_checkpoints" / "0.png"))  # a hidden "class"
    src = FolderSource(str(root))
    reference = keras.utils.image_dataset_from_directory(str(root / "train"), image_size=(6, 6), batch_size=None,
                                                         shuffle=False, verbose=False)
    assert src.splits() == ("test", "train")
    assert src.class_names == list(reference.class_names) == ["ant", "bee"]
    assert src.num_examples("train") == len(list(reference)) == 4
    # Hidden files too (Keras would read them): macOS' AppleDouble "._x.png" is not an image.
    (root / "train" / "ant" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "train" / "ant" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    assert FolderSource(str(root)).num_examples("train") == 4  # by hand: 2 ant + 2 bee


def test_empty_class_folder_named(root):
    os.makedirs(root / "train" / "cat")
    with pytest.raises(DataError, match=r"'.*train/cat' holds no images"):
        FolderSource(str(root))


def test_class_only_in_test_named_at_build(root):
    _png(str(root / "test" / "cat" / "0.png"))
    with pytest.raises(DataError, match=r"'.*test/cat' is not a class of the train split"):
        FolderSource(str(root))


def test_corrupt_image_named_at_build(root):
    bad = root / "test" / "bee" / "broken.png"
    bad.write_bytes(b"this is not a png file")
    with pytest.raises(DataError, match=r"'.*test/bee/broken.png' is not a valid PNG image"):
        FolderSource(str(root))


def test_broken_symlink_named_at_build(root):
    link = root / "train" / "ant" / "gone.jpg"
    os.symlink(root / "nowhere.jpg", link)
    with pytest.raises(DataError, match=r"'.*train/ant/gone.jpg' cannot be read"):
        FolderSource(str(root))


def test_empty_file_named_at_build(root):
    (root / "train" / "bee" / "zero.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"'.*train/bee/zero.jpg' is empty"):
        FolderSource(str(root))
