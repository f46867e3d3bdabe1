"""sciops: verified PDE dataset generators, a neural-operator zoo, one trainer, one evaluator."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sciops")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
