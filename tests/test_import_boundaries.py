"""Dependencies point one way: codec <- layers, models <- applications <- training, tflite <- search."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "mnas_keras"
ORDER = {"_serialization": 0, "_cli": 0, "_config": 0, "_files": 0, "codec": 0, "layers": 1, "models": 1, "datasets": 1, "applications": 2,
         "heads": 2,
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


# ------------------------------------------------------------------ inside mnas_keras.search
SEARCH = PACKAGE / "search"
#: Layers of mnas_keras.search, bottom up (the package docstring describes them): a module
#: imports only from its own layer or below.
SEARCH_LAYERS = {"errors": 0, "config": 1, "space": 1, "spaces": 1, "reward": 1, "pareto": 1, "controllers": 1, "latency": 2,
                 "evaluation": 3, "execution": 4, "run": 5, "cli": 6, "netadapt": 6, "scaling": 6}


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] in ("__init__", "__main__"):
        parts.pop()
    return ".".join(parts)


def _search_targets(path):
    """The mnas_keras.search modules ``path`` imports, function-local imports included."""
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mnas_keras.search"):
            names = [node.module]
            for alias in node.names:  # ``from package import submodule``
                candidate = SEARCH.parent.parent / (node.module.replace(".", "/") + f"/{alias.name}.py")
                if candidate.exists():
                    names.append(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("mnas_keras.search")]
        yield from names


def _search_files():
    return sorted(p for p in SEARCH.rglob("*.py") if p != SEARCH / "__init__.py")


@pytest.mark.parametrize("path", _search_files(), ids=lambda p: str(p.relative_to(SEARCH)))
def test_search_layers_point_down(path):
    area = path.relative_to(SEARCH).parts[0].removesuffix(".py")
    for target in _search_targets(path):
        assert target != "mnas_keras.search", f"{path.relative_to(PACKAGE)} imports the search package itself"
        target_area = target.split(".")[2]
        assert SEARCH_LAYERS[target_area] <= SEARCH_LAYERS[area], (
            f"{path.relative_to(PACKAGE)} ({area}) imports {target} ({target_area}), a layer above it")


def test_search_has_no_import_cycle():
    graph = {_module_name(p): set(_search_targets(p)) for p in _search_files()}
    state = {}

    def visit(module, trail):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join(trail + [module])
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            visit(target, trail + [module])
        state[module] = "done"

    for module in sorted(graph):
        visit(module, [])
    assert "mnas_keras.search.latency.table" in graph["mnas_keras.search.cli.latency_table"]  # the graph is read


def _heavy_modules_loaded_by(code: str) -> str:
    """Runs ``code`` (which prints the TF/Keras/Ray modules it loaded) in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_search_lower_layers_import_no_tensorflow():
    code = ("import sys\n"
            "import mnas_keras.search.latency.table, mnas_keras.search.latency.parts, mnas_keras.search.space\n"
            "import mnas_keras.search.reward, mnas_keras.search.run.journal, mnas_keras.search.pareto\n"
            "from mnas_keras.search.controllers import ppo, reinforce, evolution, random_search\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'ray')))\n")
    assert _heavy_modules_loaded_by(code) == "[]"


def test_shared_config_module_imports_no_tensorflow():
    """The dataclass-config machinery (mnas_keras._config) and the search's configs import
    no TensorFlow, and training.config and search.config share it (one ConfigError)."""
    code = ("import sys\n"
            "import mnas_keras._config as shared, mnas_keras.search.config as search_config\n"
            "import mnas_keras.training.errors as training_errors\n"
            "assert training_errors.ConfigError is shared.ConfigError\n"
            "assert search_config.override is shared.override\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'ray')))\n")
    assert _heavy_modules_loaded_by(code) == "[]"
