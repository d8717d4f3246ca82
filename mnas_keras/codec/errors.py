"""Errors raised by the block-string codec."""


class BlockStringError(ValueError):
    """A block string or block spec is malformed.

    The message names the offending token (or field) and what was expected.
    """


class CellStringError(ValueError):
    """A NASNet cell string or cell spec is malformed.

    The message names the offending block, operand or token and what was expected.
    """


class MacroStringError(ValueError):
    """A NAS-RL macro string or spec is malformed.

    The message names the offending layer or token and what was expected.
    """
