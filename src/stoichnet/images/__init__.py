"""Image datasets (not compositions): the IDX reader and the MNIST digits.

Beside ``stoichnet.chem`` in the layers: it may use ``util`` and ``nn``, never ``chem``.
"""

from stoichnet.images.datasets import DATASETS, ImageDataset, list_datasets, load_mnist
from stoichnet.images.idx import IDXFormatError, read_idx

__all__ = [
    "DATASETS",
    "IDXFormatError",
    "ImageDataset",
    "list_datasets",
    "load_mnist",
    "read_idx",
]
