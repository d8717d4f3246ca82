"""Keyword-argument checks for the package's ``keras.Model`` subclasses.

``keras.Model``'s functional constructor silently drops keyword arguments it does not know,
so a misspelt option (``dropout=`` for ``dropout_rate=``) would build a model with the
default value and no word. keras.applications' constructors, with explicit signatures,
raise ``TypeError``; :func:`check_keyword_arguments` does the same with a message that names
the argument and the closest known name.

Example:
    >>> check_keyword_arguments("MnasNet", {"dropout": 0.3}, ["dropout_rate", "alpha"])
    Traceback (most recent call last):
    ...
    mnas_keras.models.arguments.UnknownArgumentError: MnasNet got an unexpected keyword argument 'dropout' (did you mean 'dropout_rate'?); expected one of ['alpha', 'dropout_rate']
"""

from __future__ import annotations

import difflib
import inspect
from typing import Iterable, Mapping

#: The keyword arguments keras' functional ``Model.__init__`` honours besides inputs,
#: outputs and name (it drops every other one).
FUNCTIONAL_KEYWORDS = ("trainable",)


class UnknownArgumentError(TypeError, ValueError):
    """A keyword argument no parameter or option of the constructor takes.

    A ``TypeError`` as Python's own (and keras.applications') unexpected-argument error, and a
    ``ValueError`` as every bad-input error of this package.
    """


def check_keyword_arguments(owner: str, kwargs: Mapping, known: Iterable[str]) -> None:
    """Raises :class:`UnknownArgumentError` if ``kwargs`` has a name not in ``known``.

    Args:
        owner: the constructor's name, for the message.
        kwargs: the keyword arguments left after the explicit parameters.
        known: the names that may remain (options, ``FUNCTIONAL_KEYWORDS``...).
    """
    known = sorted(set(known))
    unknown = sorted(set(kwargs) - set(known))
    if not unknown:
        return
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    noun = "argument" if len(unknown) == 1 else "arguments"
    raise UnknownArgumentError(
        f"{owner} got an unexpected keyword {noun} {', '.join(parts)}; expected one of {known}"
    )


def parameter_names(function) -> tuple[str, ...]:
    """The named parameters of ``function`` (no ``self``, ``*args`` or ``**kwargs``).

    Example:
        >>> parameter_names(lambda self, a, *, b=1, **kwargs: None)
        ('a', 'b')
    """
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(name for name, p in inspect.signature(function).parameters.items()
                 if p.kind in kinds and name != "self")
