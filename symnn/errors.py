"""Exceptions raised by symnn for bad input.

Every error symnn raises for a wrong call is one of these two classes, so users can
catch ``ValueError`` / ``TypeError`` as usual or symnn's own classes specifically.
"""

from __future__ import annotations

import re

__all__ = ["SymnnError", "SymnnValueError", "SymnnTypeError"]


class SymnnError(Exception):
    """Base class of every symnn exception. ``parameter`` names the argument the error is
    about, when there is one, so that a caller (the command line) can point at its own name
    for it; by default, the name a message starting with ``name=`` is about.

    >>> err = SymnnValueError("data='cifar' is not known", parameter="data")
    >>> err.parameter, str(err)
    ('data', "data='cifar' is not known")
    >>> SymnnValueError("tv=1.0 needs image_shape").parameter
    'tv'
    """

    def __init__(self, *args: object, parameter: str | None = None) -> None:
        super().__init__(*args)
        if parameter is None and args and isinstance(args[0], str):
            named = re.match(r"([A-Za-z_][\w.]*)=", args[0])
            parameter = named and named.group(1)
        self.parameter = parameter

    def __reduce__(self):  # keeps ``parameter`` through pickling (Dask sends errors back)
        return (_rebuild, (type(self), self.args, self.parameter))


def _rebuild(cls: type, args: tuple, parameter: str | None) -> SymnnError:
    return cls(*args, parameter=parameter)


class SymnnValueError(SymnnError, ValueError):
    """An argument has the right type but a wrong value (shape, range, name)."""


class SymnnTypeError(SymnnError, TypeError):
    """An argument has the wrong type (dtype, Python type, symbolic vs numeric)."""
