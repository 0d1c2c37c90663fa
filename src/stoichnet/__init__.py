"""stoichnet: neural networks from first principles in NumPy, for materials
properties from chemical composition, side by side with a classical baseline.

Layers (imports point one way): ``nn`` <- ``chem`` <- ``models`` <- ``evaluate`` <- ``cli``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stoichnet")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
