"""Errors of the application constructors."""


class WeightsUnavailableError(ValueError):
    """Pretrained weights were asked for but cannot be found or fetched."""
