"""Registry of the image datasets stoichnet uses, and their loader.

Each dataset is an IDX file of images and one of labels (``stoichnet.images.idx``), found,
downloaded and checked like every registered file by
``stoichnet.util.datafiles.fetch_file`` (data folder, then user cache, then download, each
copy checked against its SHA-256).
"""

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stoichnet.util.datafiles import DataFile, fetch_file

from .idx import read_idx

__all__ = ["DATASETS", "ImageDataset", "list_datasets", "load_mnist"]


@dataclass(frozen=True)
class ImageDataset:
    """A registered image classification set: what it shows, where it comes from, and
    its two IDX files, ``images`` (n, height, width) and ``labels`` (n,)."""

    name: str
    property: str
    source: str
    licence: str
    images: DataFile
    labels: DataFile

    @property
    def n_rows(self) -> int:
        """Number of images."""
        return self.images.rows


def _mnist_file(stem, digest, rows) -> DataFile:
    return DataFile(
        path=f"mnist/{stem}.gz",
        sha256=digest,
        urls=(
            f"http://yann.lecun.com/exdb/mnist/{stem}.gz",
            f"https://ossci-datasets.s3.amazonaws.com/mnist/{stem}.gz",
        ),
        rows=rows,
    )


DATASETS: dict[str, ImageDataset] = {
    "mnist": ImageDataset(
        name="mnist",
        property="handwritten digit 0-9 (28x28 grey-scale images)",
        source=(
            "MNIST test set (LeCun, Cortes, Burges), http://yann.lecun.com/exdb/mnist/; "
            "only the 10,000-image t10k files"
        ),
        licence="CC BY-SA 3.0",
        images=_mnist_file(
            "t10k-images-idx3-ubyte",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 10000),
        labels=_mnist_file(
            "t10k-labels-idx1-ubyte",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 10000),
    ),
}


def list_datasets() -> pd.DataFrame:
    """The image datasets as a table indexed by name: property, unit ("class"), task
    ("classification"), files, rows (images), source, licence."""
    return pd.DataFrame(
        [
            {
                "name": d.name,
                "property": d.property,
                "unit": "class",
                "task": "classification",
                "files": "images/labels",
                "rows": d.n_rows,
                "source": d.source,
                "licence": d.licence,
            }
            for d in DATASETS.values()
        ]
    ).set_index("name")


def load_mnist(
    *,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST t10k digits: images uint8 (10000, 28, 28) with 0 = background,
    labels uint8 (10000,) in 0..9.

    data_dir, cache_dir, download, progress: as in ``stoichnet.util.datafiles.fetch_file``
    (default data folder ``$STOICHNET_DATA``; raises ``ChecksumError`` or
    ``DatasetNotAvailableError`` from there).
    """
    dataset = DATASETS["mnist"]
    images, labels = (
        read_idx(fetch_file(file, data_dir=data_dir, cache_dir=cache_dir,
                            download=download, progress=progress))
        for file in (dataset.images, dataset.labels)
    )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"MNIST images ({images.shape[0]}) and labels ({labels.shape[0]}) differ in count"
        )
    return images, labels
