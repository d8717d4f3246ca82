"""What the search's commands share: a bad flag is one ``<tool>: error: ...`` line, exit 2.

Example:
    >>> from absl import flags
    >>> parse = flags_parser("demo")
    >>> callable(parse)
    True
"""

from __future__ import annotations

import sys


def flags_parser(tool: str):
    """An absl ``flags_parser`` for ``app.run``: parses ``argv`` into ``flags.FLAGS``; an
    unknown flag or a bad value prints ``<tool>: error: <absl's first line>`` and exits 2
    (absl's own parser prints the whole usage text and exits 1). ``--help`` lists the tool's
    flags and exits 0 (``mnas_keras._cli.help_if_asked``)."""

    def parse(argv):
        from absl import flags

        from mnas_keras import _cli

        _cli.help_if_asked(tool, argv)
        try:
            return flags.FLAGS(argv)
        except flags.Error as err:
            text = str(err).strip()
            print(f"{tool}: error: {text.splitlines()[0] if text else type(err).__name__}", file=sys.stderr)
            sys.exit(2)

    return parse
