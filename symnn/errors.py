"""Exceptions raised by symnn for bad input.

Every error symnn raises for a wrong call is one of these two classes, so users can
catch ``ValueError`` / ``TypeError`` as usual or symnn's own classes specifically.
"""

from __future__ import annotations

__all__ = ["SymnnError", "SymnnValueError", "SymnnTypeError"]


class SymnnError(Exception):
    """Base class of every symnn exception."""


class SymnnValueError(SymnnError, ValueError):
    """An argument has the right type but a wrong value (shape, range, name)."""


class SymnnTypeError(SymnnError, TypeError):
    """An argument has the wrong type (dtype, Python type, symbolic vs numeric)."""
