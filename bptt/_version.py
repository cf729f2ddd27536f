"""The installed version of ``bptt``, from its metadata (imported by the package and the app)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bptt")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
