"""Temporary files for atomic writes that end with the permissions of an ordinary file.

``tempfile.mkstemp`` creates its file with mode ``0o600`` whatever the umask, and a file
written through it and renamed over its target keeps that mode. So every ``.tflite``,
``.keras`` and JSON file the package wrote atomically was readable by its owner only
(``-rw-------``), while the files written with ``open`` beside it were ``-rw-r--r--``.
:func:`mkstemp` gives the temporary file the mode ``open`` would (``0o666`` less the umask).

Example:
    >>> import os, stat, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> fd, path = mkstemp(dir=folder)
    >>> os.close(fd)
    >>> with open(os.path.join(folder, "plain"), "w"):
    ...     pass
    >>> stat.S_IMODE(os.stat(path).st_mode) == stat.S_IMODE(os.stat(os.path.join(folder, "plain")).st_mode)
    True
"""

from __future__ import annotations

import os
import tempfile


def umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc``)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting it, and set it straight back
    os.umask(mask)
    return mask


def mkstemp(suffix: str | None = None, prefix: str | None = None, dir: str | None = None) -> tuple[int, str]:
    """``tempfile.mkstemp`` whose file has the mode ``open`` gives (``0o666 & ~umask``)."""
    fd, path = tempfile.mkstemp(suffix=suffix, prefix=prefix, dir=dir)
    try:
        os.fchmod(fd, 0o666 & ~umask())
    except (AttributeError, OSError):  # no fchmod (Windows): the temporary's mode stays
        pass
    return fd, path
