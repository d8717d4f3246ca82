"""Run directories: config, an append-only JSON-lines journal, controller checkpoints.

Everything a search needs to survive ``kill -9`` is plain JSON on disk (no pickle):

* ``config.json``: what defines the run (space, controller, reward, evaluator, seed);
  re-running with a different definition is refused with the differing keys named.
* ``journal.jsonl``: one JSON object per line, flushed and fsynced as it is written:
  ``sample`` (a step's proposal), ``result`` (its evaluation, once per step),
  ``reference`` (the reference network's evaluation). A line torn by a crash is cut off
  when the journal is opened again.
* ``controller.json``: the controller's state after ``step`` tells, replaced atomically.
* ``run.lock``: held (``fcntl.flock``) by the one process using the run, and holding its
  pid; a second process is refused with :class:`RunInUseError`. The kernel releases the lock
  when its process dies, so a killed run resumes without any cleanup.

Example:
    >>> import tempfile
    >>> run = RunDirectory(tempfile.mkdtemp())
    >>> run.prepare({"seed": 0})
    False
    >>> run.journal.append({"event": "result", "step": 0, "key": "a", "reward": 0.5})
    >>> run.close()  # releases the run's lock
    >>> RunDirectory(run.path).prepare({"seed": 0}), len(Journal(run.journal_path).records)
    (True, 1)
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from typing import Any, Iterable

from mnas_keras import _files
from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.space import arch_id, arch_key

#: What an ``arch_id`` looks like (:func:`~mnas_keras.search.space.arch_id`); only such a
#: name is ever joined to a run directory's path.
ARCH_ID_PATTERN = re.compile(r"[0-9a-f]{12}\Z")


def atomic_write_json(path: str, data: Any, indent: int | None = None) -> None:
    """Writes JSON to ``path`` through a temporary file, fsync and ``os.replace``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = _files.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=indent, sort_keys=True, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def read_json(path: str) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise SearchConfigError(f"{path} is not valid JSON ({err}); the run directory is damaged") from None


class Journal:
    """An append-only JSON-lines file; every ``append`` is flushed and fsynced.

    Opening an existing journal reads its records; a last line without its newline (a
    write cut by a crash) is dropped and truncated away. A damaged line elsewhere is an error.
    """

    def __init__(self, path: str):
        self.path = path
        self.records: list[dict] = []
        if os.path.exists(path):
            self._load()
        self._file = open(path, "a")

    def _load(self) -> None:
        with open(self.path, "rb") as f:
            data = f.read()
        good_end = data.rfind(b"\n") + 1
        for number, line in enumerate(data[:good_end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                self.records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise SearchConfigError(f"{self.path} line {number} is not JSON ({err}); the journal is damaged") from None
        if good_end < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
                f.flush()
                os.fsync(f.fileno())

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True, allow_nan=False)
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.records.append(record)

    def events(self, kind: str) -> Iterable[dict]:
        return (r for r in self.records if r.get("event") == kind)

    def results(self) -> dict[int, dict]:
        """Step -> its result record."""
        return {r["step"]: r for r in self.events("result")}

    def cache(self) -> dict[str, dict]:
        """Architecture key -> the record of its (non-cached) evaluation."""
        return {r["key"]: r for r in self.events("result") if not r.get("cached")}

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def check_records(records: list[dict], path: str) -> None:
    """Checks that every ``result`` and ``reference`` record names its architecture
    consistently: ``key == arch_key(blocks)`` and ``arch_id == arch_id(key)``.

    The run uses ``arch_id`` as a folder name (artifacts, export), so a journal edited or
    damaged to hold ``"../../elsewhere"`` must not reach a path.

    Args:
        records: the journal's records, in order.
        path: the journal's path (for the message).
    Raises:
        SearchConfigError: naming the record (1-based, blank lines not counted), its step,
            the bad value and the expected one.

    Example:
        >>> blocks = ["r1_k3_s11_e1_i32_o16"]
        >>> good = {"event": "result", "step": 0, "blocks": blocks, "key": arch_key(blocks),
        ...         "arch_id": arch_id(blocks)}
        >>> check_records([good], "journal.jsonl")
        >>> try:
        ...     check_records([{**good, "arch_id": "../../victim"}], "journal.jsonl")
        ... except SearchConfigError as err:
        ...     print(str(err)[:70])
        journal.jsonl record 1 (result, step 0): arch_id '../../victim' is not
    """
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict) or record.get("event") not in ("result", "reference"):
            continue
        where = f"{path} record {number} ({record['event']}, step {record.get('step')})"
        blocks, key = record.get("blocks"), record.get("key")
        if not (isinstance(blocks, list) and blocks and all(isinstance(b, str) for b in blocks)
                and isinstance(key, str)):
            raise SearchConfigError(f"{where}: expected 'blocks' (a list of block strings) and 'key' (a string); "
                                    "the journal is damaged")
        try:
            expected_key = arch_key(blocks)
        except ValueError as err:
            raise SearchConfigError(f"{where}: blocks {blocks!r} do not parse ({err}); the journal is damaged") from None
        if key != expected_key:
            raise SearchConfigError(f"{where}: key {key!r} is not the key of its blocks ({expected_key!r}); "
                                    "the journal is damaged")
        ident = record.get("arch_id")
        if ident != arch_id(key):
            raise SearchConfigError(f"{where}: arch_id {ident!r} is not the id of its architecture "
                                    f"({arch_id(key)!r}); the journal is damaged")


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RunInUseError(SearchConfigError):
    """Another process holds the run directory's lock (its pid is in the message)."""


class RunDirectory:
    """The files of one search run (see the module docstring).

    Args:
        path: the directory (created if needed).
    """

    #: The lock file's name.
    LOCK_NAME = "run.lock"

    def __init__(self, path: str):
        self.path = os.path.abspath(os.fspath(path))
        self.config_path = os.path.join(self.path, "config.json")
        self.journal_path = os.path.join(self.path, "journal.jsonl")
        self.controller_path = os.path.join(self.path, "controller.json")
        self.artifacts_path = os.path.join(self.path, "artifacts")
        self.export_path = os.path.join(self.path, "export")
        self.tensorboard_path = os.path.join(self.path, "tensorboard")
        self.lock_path = os.path.join(self.path, self.LOCK_NAME)
        self.journal: Journal | None = None
        self._lock_fd: int | None = None

    def prepare(self, config: dict, overwrite: bool = False, conflicts=None) -> bool:
        """Creates the run or checks that ``config`` matches the stored one; opens the journal.

        Args:
            config: the run's definition (JSON-ready), written to ``config.json``.
            overwrite: delete the run held in the directory first.
            conflicts: ``conflicts(stored, config)`` -> ``(key, stored value, value)`` tuples
                of what may not change on resume (the search's comes from its config fields'
                metadata: :func:`mnas_keras.search.config.resume_conflicts`); ``None``:
                every differing top-level key.

        Takes the run's lock first and keeps it until :meth:`close` (also when this raises
        after taking it, the lock is released).

        Returns:
            True when an existing run is resumed.
        Raises:
            RunInUseError: another process holds the run (its pid is named).
            SearchConfigError: the directory holds a run with a different definition.
        """
        if overwrite and os.path.isdir(self.path):
            held = sorted(name for name in os.listdir(self.path) if name != self.LOCK_NAME)
            if held and not self.is_search_run(self.path):
                raise SearchConfigError(
                    f"overwrite=True (--overwrite) deletes only a search run directory; {self.path} holds "
                    f"{held[:5]} but no search config.json or journal.jsonl")
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise SearchConfigError(f"run directory {self.path} exists and is not a directory")
        os.makedirs(self.path, exist_ok=True)
        self._lock()
        try:
            return self._prepare(config, overwrite, conflicts)
        except BaseException:
            self.close()
            raise

    def _lock(self) -> None:
        if self._lock_fd is not None:
            return
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                pid = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise RunInUseError(f"run directory {self.path} is in use by pid {pid} (lock {self.lock_path}); "
                                "wait for that process to finish or use another run directory") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            try:
                os.ftruncate(fd, 0)
            except OSError:  # pragma: no cover - the pid then stays; the lock is what counts
                pass
            os.close(fd)  # releases the flock

    def _prepare(self, config: dict, overwrite: bool, conflicts=None) -> bool:
        if overwrite:
            for name in os.listdir(self.path):  # everything but the lock this process holds
                if name != self.LOCK_NAME:
                    target = os.path.join(self.path, name)
                    if os.path.isdir(target) and not os.path.islink(target):
                        shutil.rmtree(target)
                    else:
                        os.unlink(target)
        config = json.loads(json.dumps(config, sort_keys=True))
        resumed = os.path.exists(self.config_path)
        if resumed:
            stored = read_json(self.config_path)
            if not isinstance(stored, dict):
                raise SearchConfigError(f"{self.config_path} is not a JSON object; the run directory is damaged")
            if conflicts is None:
                differing = [(k, stored.get(k), config.get(k)) for k in sorted(set(stored) | set(config))
                             if stored.get(k) != config.get(k)]
            else:
                differing = list(conflicts(stored, config))
            if differing:
                sections = sorted({key.split(".")[0] for key, _, _ in differing})
                changes = "; ".join(f"{key} was {_short(old)}, is now {_short(new)}" for key, old, new in differing)
                raise SearchConfigError(
                    f"run directory {self.path} holds a run with different {', '.join(sections)}; {changes}; "
                    "it may not change on resume: use another directory, the same options, "
                    "or overwrite=True (--overwrite)"
                )
        atomic_write_json(self.config_path, config, indent=2)
        self.journal = Journal(self.journal_path)
        return resumed

    @staticmethod
    def is_search_run(path: str) -> bool:
        """Whether ``path`` holds a search run: a ``journal.jsonl``, or a ``config.json``
        with the search's ``space`` and ``controller`` keys."""
        if os.path.isfile(os.path.join(path, "journal.jsonl")):
            return True
        config = os.path.join(path, "config.json")
        if not os.path.isfile(config):
            return False
        try:
            with open(config) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and "space" in data and "controller" in data

    def artifact_dir(self, ident: str) -> str:
        """The artifact folder of the architecture with id ``ident`` (12 hex digits).

        Raises:
            SearchConfigError: ``ident`` is not an ``arch_id`` (so never a path outside
                ``artifacts/``).
        """
        if not isinstance(ident, str) or not ARCH_ID_PATTERN.match(ident):
            raise SearchConfigError(f"{ident!r} is not an architecture id (12 hex digits); "
                                    "refusing to use it as a folder name")
        return os.path.join(self.artifacts_path, ident)

    def close(self) -> None:
        """Closes the journal and releases the run's lock."""
        if self.journal is not None:
            self.journal.close()
        self._unlock()
