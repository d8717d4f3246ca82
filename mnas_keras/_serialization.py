"""``import mnas_keras`` is enough to load any ``.keras`` file this package writes.

Keras finds a custom class by its registered name (``"mnas_keras>MnasNet"``) in a table that
``keras.saving.register_keras_serializable`` fills when the defining module is imported; it
never imports a third-party module named in the file. So that ``import mnas_keras`` stays
free of TensorFlow, this module does not import those modules up front: it wraps Keras'
``get_registered_object`` (as soon as Keras is imported) so that the first miss on a
``"mnas_keras>..."`` name imports every module of the package that registers classes (found
by scanning the sources for the registration call, so new heads need no list), then looks
again. Nothing else in Keras' lookup changes; ``safe_mode`` stays on.

Example:
    >>> import sys, mnas_keras
    >>> "mnas_keras._serialization" in sys.modules
    True
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import os
import re
import sys
import zipfile

PACKAGE = "mnas_keras"
_TARGET = "keras.src.saving.object_registration"
# A module registers classes when it calls register_keras_serializable(package="mnas_keras")
# or decorates with mnas_keras.layers.registry.register.
_REGISTERS = re.compile(
    r"register_keras_serializable\(\s*package\s*=\s*[\"']mnas_keras[\"']|^@register\s*$", re.MULTILINE
)
_state = {"imported": False}


class InvalidKerasFileError(ValueError):
    """A model file that is missing, not a ``.keras`` (zip) archive, or not loadable."""


def registering_modules() -> list[str]:
    """Dotted names of the package modules that register Keras-serializable classes.

    Example:
        >>> "mnas_keras.models.backbone" in registering_modules()
        True
    """
    root = os.path.dirname(os.path.abspath(__file__))
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for file in sorted(files):
            if not file.endswith(".py"):
                continue
            path = os.path.join(folder, file)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                continue
            if _REGISTERS.search(text) and "def register(" not in text:
                relative = os.path.relpath(path, root)[: -len(".py")].replace(os.sep, ".")
                relative = relative.removesuffix(".__init__")
                found.append(f"{PACKAGE}.{relative}")
    return found


def import_registering_modules() -> None:
    """Imports (once) every module that registers classes under ``mnas_keras>``."""
    if _state["imported"]:
        return
    _state["imported"] = True
    for name in registering_modules():
        try:
            importlib.import_module(name)
        except ImportError:  # an optional dependency of an unrelated module: Keras reports the class
            continue


def _patch(module) -> None:
    original = module.get_registered_object
    if getattr(original, "_mnas_keras_lazy", False):
        return

    @functools.wraps(original)
    def get_registered_object(name, custom_objects=None, module_objects=None):
        found = original(name, custom_objects, module_objects)
        if found is None and isinstance(name, str) and name.startswith(PACKAGE + ">") and not _state["imported"]:
            import_registering_modules()
            found = original(name, custom_objects, module_objects)
        return found

    get_registered_object._mnas_keras_lazy = True
    module.get_registered_object = get_registered_object
    for other in list(sys.modules.values()):  # re-exports bound before the patch
        if other is not module and getattr(other, "get_registered_object", None) is original:
            try:
                other.get_registered_object = get_registered_object
            except (AttributeError, TypeError):
                pass


class _PatchOnImport:
    """A meta-path finder that patches Keras' registry module right after it executes."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module)
            _uninstall()

        spec.loader.exec_module = exec_and_patch
        return spec


def _uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _PatchOnImport)]


def install() -> None:
    """Makes ``mnas_keras>`` names resolvable by Keras; imports neither Keras nor TensorFlow."""
    module = sys.modules.get(_TARGET)
    if module is not None and hasattr(module, "get_registered_object"):
        _patch(module)
    elif not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


def check_keras_archive(path) -> str:
    """``path`` as a string if it is an existing ``.keras`` zip archive.

    Raises:
        InvalidKerasFileError: the file is missing, a directory, or not a zip archive
            (truncated or garbage), naming the file.

    Example:
        >>> check_keras_archive("/nonexistent/m.keras")
        Traceback (most recent call last):
        ...
        mnas_keras._serialization.InvalidKerasFileError: model file '/nonexistent/m.keras' does not exist
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InvalidKerasFileError(f"model file {path!r} does not exist")
    if os.path.isdir(path):
        raise InvalidKerasFileError(f"model file {path!r} is a directory; expected a .keras file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise InvalidKerasFileError(
            f"{path!r} is not a valid .keras archive (truncated or not a zip file: {err})"
        ) from None
    if bad is not None or "config.json" not in names:
        what = f"member {bad!r} is corrupt" if bad is not None else "it has no config.json"
        raise InvalidKerasFileError(f"{path!r} is not a valid .keras archive ({what})")
    return path


def load_model(path, *, compile: bool = False, custom_objects=None):
    """``keras.saving.load_model`` (safe mode on) with clear errors for bad files.

    Args:
        path: a ``.keras`` file.
        compile: also restore the compiled loss/optimizer state.
        custom_objects: extra classes for Keras' lookup.

    Returns:
        The ``keras.Model``.

    Raises:
        InvalidKerasFileError: missing, truncated or garbage file, or one Keras cannot
            rebuild (the file and Keras' reason are named).
    """
    path = check_keras_archive(path)
    install()
    import keras

    try:
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=compile, safe_mode=True)
    except Exception as err:  # noqa: BLE001 - re-raised naming the file
        raise InvalidKerasFileError(f"could not load Keras model {path!r}: {type(err).__name__}: {err}") from None
