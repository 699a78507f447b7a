"""foresize: profile, forecast, right-size and simulate AI workloads."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("foresize")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
