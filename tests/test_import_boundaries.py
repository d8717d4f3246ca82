"""Dependencies point one way: codec <- layers, models <- applications <- training, tflite <- search."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "mnas_keras"
ORDER = {"codec": 0, "layers": 1, "models": 1, "datasets": 1, "applications": 2, "heads": 2.5,
         "training": 3, "tflite": 3, "demo": 4, "search": 4}
FORBIDDEN_PEERS = {("training", "tflite"), ("tflite", "training")}


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mnas_keras."):
            yield node.module.split(".")[1]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mnas_keras."):
                    yield alias.name.split(".")[1]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_imports(path):
    parts = path.relative_to(PACKAGE).parts
    if len(parts) == 1 and parts[0] == "__init__.py":
        return  # the top-level package re-exports lazily
    area = parts[0].removesuffix(".py")
    level = ORDER[area]
    for target in _imports(path):
        assert ORDER[target] <= level and (area, target) not in FORBIDDEN_PEERS, (
            f"{path.relative_to(PACKAGE)} imports mnas_keras.{target}, which sits above it"
        )
        if area == "codec":
            assert target == "codec"
    if area == "codec":
        text = path.read_text()
        assert "import tensorflow" not in text and "import keras" not in text
