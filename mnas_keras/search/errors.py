"""Errors raised by the search package (all are ``ValueError`` s naming what was expected)."""


class SearchError(ValueError):
    """Base class of the search package's user-facing errors."""


class SearchSpaceError(SearchError):
    """A search space definition (or a sample of it) is malformed."""


class SearchConfigError(SearchError):
    """A search option, run directory or controller state is invalid or inconsistent."""
