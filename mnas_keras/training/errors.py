"""Errors raised by the training package.

Bad input (configs, flags, datasets, checkpoints) raises a ``ValueError`` subclass whose
message names the bad key, path or value and what was expected; a run that diverges raises
:class:`NonFiniteLossError`.
"""


from mnas_keras._config import ConfigError  # noqa: E402,F401 (shared with the search's configs)


class DataError(ValueError):
    """A dataset cannot be found, read or is inconsistent with the config."""


class DatasetNotPreparedError(DataError):
    """A dataset exists by name but is not prepared in the given directory."""


class CheckpointError(ValueError):
    """A checkpoint is corrupt or does not match the model being trained."""


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""
