"""Helpers shared by the command-line tools: one-line errors, exit status 2, quiet start-up.

Every tool validates its flags and files before any TensorFlow work, and reports a bad value,
an unreadable or unwritable file, or a TensorFlow data error as ONE line
``<tool>: error: <what> ...; expected ...`` on stderr with exit status 2 (never a traceback).
TensorFlow's C++ start-up lines (oneDNN notices, CUDA probing, absl's pre-initialization
warning) are dropped unless ``--verbosity``/``-v`` is given. Nothing here imports TensorFlow
until asked.

Example:
    >>> one_line(ValueError("bad value\\n  details"))
    'bad value details'
    >>> wants_verbose(["prog", "--verbosity=1"]), wants_verbose(["prog", "--epochs=2"])
    (True, False)
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

EXIT_USAGE = 2


class UsageError(ValueError):
    """A bad flag value or file, reported as one ``<tool>: error:`` line (exit 2)."""


def one_line(error) -> str:
    """The error's message on a single line (TensorFlow messages often span several)."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def wants_verbose(argv) -> bool:
    """Whether ``argv`` asks for log output (``--verbosity``, ``-v``)."""
    return any(a.startswith(("--verbosity", "-v=", "--v=")) or a == "-v" for a in list(argv)[1:])


@contextlib.contextmanager
def _stderr_to_buffer():
    """Sends file descriptor 2 to a temporary file; yields a function returning its text."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as buffer:
        os.dup2(buffer.fileno(), 2)

        def captured() -> str:
            buffer.seek(0)
            return buffer.read().decode("utf-8", "replace")

        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def quiet_logs(argv=None) -> None:
    """Unless ``argv`` asks for ``--verbosity``: TensorFlow's C++ log level to errors-only
    (``TF_CPP_MIN_LOG_LEVEL=3`` when unset) and absl's Python log to warnings. Imports no
    TensorFlow, so flag validation stays fast."""
    if wants_verbose(sys.argv if argv is None else argv):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from absl import logging

    logging.set_verbosity(logging.WARNING)


def import_tensorflow(argv=None) -> None:
    """Imports TensorFlow, dropping the C++ lines it prints while loading (oneDNN notice, CUDA
    probing, absl's pre-initialization warning: printed whatever the log level) unless
    ``argv`` asks for ``--verbosity``. An import failure shows them."""
    quiet_logs(argv)
    if wants_verbose(sys.argv if argv is None else argv):
        import tensorflow  # noqa: F401

        return
    if "tensorflow" not in sys.modules:
        with _stderr_to_buffer() as captured:
            try:
                import tensorflow  # noqa: F401
            except BaseException:
                text = captured()
                failure = True
            else:
                failure = False
        if failure:
            sys.stderr.write(text)
            import tensorflow  # noqa: F401  (re-raises the import error, now visible)


def fail(tool: str, error) -> None:
    """Prints ``<tool>: error: <message>`` and exits with status 2."""
    sys.stderr.write(f"{tool}: error: {one_line(error)}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_USAGE)


EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention


def stop_on_interrupt(tool: str, function, *args, resumable: bool = True, **kwargs):
    """Calls ``function``; Ctrl-C (``KeyboardInterrupt``) ends the tool with one line
    ``<tool>: interrupted ...`` and exit status 130 instead of a deep TensorFlow traceback.

    ``resumable``: the tool writes its work as it goes, so the line says that running the
    same command again resumes.
    """
    try:
        return function(*args, **kwargs)
    except KeyboardInterrupt:
        hint = "; run the same command again to resume (finished work is kept)" if resumable else ""
        sys.stderr.write(f"\n{tool}: interrupted{hint}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_INTERRUPTED) from None


def _is_tensorflow_error(error) -> bool:
    return type(error).__module__.startswith(("tensorflow", "tf_keras"))


def guard(tool: str, function, *args, **kwargs):
    """Calls ``function``; a ``ValueError``, ``OSError``, absl usage/flag error or TensorFlow
    error becomes one ``<tool>: error:`` line and exit status 2."""
    from absl import app, flags

    try:
        return function(*args, **kwargs)
    except (ValueError, OSError, app.UsageError, flags.Error, UnicodeDecodeError) as err:
        fail(tool, _describe(err))
    except Exception as err:  # noqa: BLE001 - only TensorFlow's own errors are reported, others re-raised
        if _is_tensorflow_error(err):
            fail(tool, _describe(err))
        raise


def _describe(error) -> str:
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename!r}: {error.strerror}"
    return one_line(error)


HELP_FLAGS = ("-h", "--help", "-help", "-?", "--helpshort", "-helpshort")


def help_if_asked(tool: str, argv, flag_values=None) -> None:
    """Prints ``tool``'s own flags to stdout and exits 0 when ``argv`` asks for help.

    absl's ``--help`` lists the flags of the ``__main__`` module only, which for a console
    script (or ``python -m package``) defines none: it printed a bare usage line and exited 1.
    This lists every flag defined by a ``mnas_keras`` module (or the script itself) instead;
    ``--helpfull`` stays absl's (every flag, TensorFlow's included).
    """
    arguments = list(argv)[1:]
    if "--" in arguments:
        arguments = arguments[: arguments.index("--")]
    if not any(a in HELP_FLAGS for a in arguments):
        return
    from absl import flags

    values = flag_values if flag_values is not None else flags.FLAGS
    script = list(argv)[0] if argv else ""
    print(f"usage: {tool} [flags]")
    for module in values.flags_by_module_dict():
        if module.startswith("mnas_keras") or (script and module == script):
            print(values.module_help(module))
    print("\nTry --helpfull to get a list of all flags.")
    sys.stdout.flush()
    raise SystemExit(0)


def flags_parser(tool: str, flag_values=None):
    """An absl ``flags_parser`` that reports a bad flag as one ``<tool>: error:`` line;
    ``--help`` lists the tool's flags (:func:`help_if_asked`)."""

    def parse(argv):
        from absl import flags

        values = flag_values if flag_values is not None else flags.FLAGS
        help_if_asked(tool, argv, values)
        try:
            return values(argv)
        except flags.Error as err:
            fail(tool, err)

    return parse


def check_writable_dir(path: str, what: str) -> None:
    """Raises ``UsageError`` unless ``path`` is (or can be made) a writable local directory.

    Remote paths (``gs://``...) are not checked here.

    Example:
        >>> check_writable_dir("/proc/nope", "--model_dir")
        Traceback (most recent call last):
        ...
        mnas_keras._cli.UsageError: --model_dir '/proc/nope' cannot be created: No such file or directory
    """
    if "://" in path:
        return
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{what} {path!r} is a file; expected a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{what} {path!r} cannot be created: {err.strerror}") from None
    try:  # a real write: permission bits say nothing to root or on a read-only mount
        descriptor, probe = tempfile.mkstemp(prefix=".write_probe_", dir=path)
        os.close(descriptor)
        os.remove(probe)
    except OSError as err:
        raise UsageError(f"{what} {path!r} is not writable: {err.strerror}") from None
