"""The installed version of symnn (from the package metadata)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("symnn")
except PackageNotFoundError:  # pragma: no cover - running from a tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
