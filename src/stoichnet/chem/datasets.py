"""Registry of the public composition datasets stoichnet uses, and their loader.

Each file is a CSV of ``formula,target`` rows, named by its path relative to the data
folder, its public source URLs and its SHA-256; ``load_dataset`` finds, downloads and
checks it with ``stoichnet.util.datafiles.fetch_file`` (data folder, then user cache,
then download). Datasets that are not compositions (MNIST) are in ``stoichnet.images``.
"""

import difflib
import os
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stoichnet.util import datafiles
from stoichnet.util.datafiles import (
    ChecksumError,
    DatasetNotAvailableError,
    default_cache_dir,
    fetch_file,
)

from .formula import parse_formulas
from .tables import DUPLICATES, composition_key, resolve_duplicates

__all__ = [
    "DATASETS",
    "ChecksumError",
    "DataFile",
    "Dataset",
    "DatasetNotAvailableError",
    "default_cache_dir",
    "fetch_file",
    "get_dataset",
    "list_datasets",
    "load_dataset",
]

@dataclass(frozen=True)
class DataFile(datafiles.DataFile):
    """One CSV file of a composition dataset: a ``stoichnet.util.datafiles.DataFile``
    (path, sha256, urls, rows: data rows, header excluded) that also records its duplicates.

    duplicate_rows, duplicate_compositions: rows of this file whose composition (see
        ``tables.composition_key``) is shared with another row of the file, and how many
        such compositions there are (polymorphs, or one compound written twice).
    """

    duplicate_rows: int = 0
    duplicate_compositions: int = 0


@dataclass(frozen=True)
class Dataset:
    """A registered dataset: what it measures, where it comes from, and its files.

    files maps a split name ("train", "val", "test", "all") to its CSV.
    """

    name: str
    property: str
    unit: str
    task: str
    source: str
    licence: str
    files: dict[str, DataFile]

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)

    @property
    def n_rows(self) -> int:
        """Rows over all splits."""
        return sum(file.rows for file in self.files.values())


CRABNET_RAW = "https://raw.githubusercontent.com/anthony-wang/CrabNet/master/data"
CRABNET = (
    "CrabNet repository (Wang, Kauwe, Murdock, Sparks, npj Comput. Mater. 7, 77 (2021)), "
    "https://github.com/anthony-wang/CrabNet"
)
CRABNET_LICENCE = "MIT (CrabNet repository); underlying data CC BY 4.0 ({origin})"


def _benchmark(name, prop, unit, origin, files) -> Dataset:
    """files: split -> (sha256, rows) or (sha256, rows, (duplicate compositions, rows))."""
    entries = {}
    for split, (digest, rows, *duplicates) in files.items():
        compositions, duplicate_rows = duplicates[0] if duplicates else (0, 0)
        entries[split] = DataFile(
            path=f"benchmark/{name}/{split}.csv",
            sha256=digest,
            urls=(f"{CRABNET_RAW}/benchmark_data/{name}/{split}.csv",),
            rows=rows,
            duplicate_rows=duplicate_rows,
            duplicate_compositions=compositions,
        )
    return Dataset(
        name=name,
        property=prop,
        unit=unit,
        task="regression",
        source=f"{CRABNET}, data/benchmark_data/{name}; data from {origin}",
        licence=CRABNET_LICENCE.format(origin=origin),
        files=entries,
    )


def _matbench(stem, prop, unit, task, digest, rows, duplicates=(0, 0)) -> Dataset:
    """duplicates: (compositions found in more than one row, rows holding them)."""
    return Dataset(
        name=f"matbench_{stem}",
        property=prop,
        unit=unit,
        task=task,
        source=(
            f"{CRABNET}, data/matbench/{stem}.csv; composition-only version of the Matbench v0.1 "
            "task (Dunn et al., npj Comput. Mater. 6, 138 (2020))"
        ),
        licence=(
            "MIT (CrabNet repository); derived from Matbench v0.1, whose task pages name the "
            "terms of the underlying data"
        ),
        files={
            "all": DataFile(
                path=f"matbench/{stem}.csv",
                sha256=digest,
                urls=(f"{CRABNET_RAW}/matbench/{stem}.csv",),
                rows=rows,
                duplicate_rows=duplicates[1],
                duplicate_compositions=duplicates[0],
            )
        },
    )


MP = "the Materials Project"
_REGISTRY = [
    _benchmark("CritExam__Ef", "formation energy (Bartel et al. 2020 critical-examination set)",
               "eV/atom", MP, {
        "train": ("717892455f5474fb98d952b2824b09e2abae21d4893eebc5f0e16b5042a9f168", 59509),
        "val": ("f641c56947685fad49aaf13c31b098593a708d8aff19cf271b2239251d9d6a3a", 12752),
        "test": ("92052ffc5bad988371946b1c98a605addf88fd2894e2319ed1a39653cecb0f43", 12753),
    }),
    _benchmark("CritExam__Ed", "decomposition energy (Bartel et al. 2020 critical-examination set)",
               "eV/atom", MP, {
        "train": ("b8de276563588969f9b8a9f7fb59059e2b445da22f4bc84beed5d4b8d3b16934", 59509),
        "val": ("be508d700c294fffa382887f37dbc1aded4ad2a5f5ab526bad60d987f5a6d7f0", 12752),
        "test": ("ebe21e71b66eb534c9f53c4e682c3661ed402204805e7a74bf17d03639a978ab", 12753),
    }),
    # Only the validation split of this set is public in full.
    _benchmark("OQMD_Formation_Enthalpy", "formation enthalpy", "eV/atom", "OQMD", {
        "val": ("af138c2bfed3a8eb8fc2e202690fae94190e0e64258625ce1612df45298193d4", 51255),
    }),
    _benchmark("aflow__energy_atom", "energy per atom", "eV/atom", "AFLOW", {
        # two compositions appear twice in train, written as "Al0.4C0.2Nb0.6" and "Al2C1Nb3"
        "train": ("5ff635bff649b9a68e5cf572125bf4f527751fd49b98d680fb1182a1ca275ad5", 19346, (2, 4)),
        "val": ("ce5c8f7b3175c9c370891c5e29bdf1e0c5e56c103f391f0a538c629ef319b81a", 4118),
        "test": ("f393d89ac7a506b2415645b9ee4e69e2d15af1469ece679e945f7098d51a6e99", 4115),
    }),
    _benchmark("aflow__ael_bulk_modulus_vrh", "bulk modulus (AEL, Voigt-Reuss-Hill)", "GPa",
               "AFLOW", {
        "train": ("b9b371e3fcd47d38dc94e568515980e8b2ed83ef077f4339ba1bbccbef37a62b", 3428),
        "val": ("cc13020813fdc2a1a14c1e040faca6bcb034d6be2e08440221b9cbaa1cc932eb", 732),
        "test": ("2a5b1c547e09f9b7e095802f27e4993d243aa1925b4e6fb991aec31f14c3cbf9", 736),
    }),
    _benchmark("aflow__ael_shear_modulus_vrh", "shear modulus (AEL, Voigt-Reuss-Hill)", "GPa",
               "AFLOW", {
        "train": ("ca0017fafc2558e8b9ca9ef11089755e7492d90797a8d38df1530b6d2ddaf1f3", 3428),
        "val": ("7b58dc465d09e1340b20a49b1c1b994d47eb8349904eb2d7487c465c3f5152b3", 732),
        "test": ("59b31cf673943f51cd272ab1f6d5f4574a178ef93bed6cf408632ad87b9de4f4", 736),
    }),
    _benchmark("aflow__ael_debye_temperature", "Debye temperature (AEL)", "K", "AFLOW", {
        "train": ("c01509a7f4c82665e0f0dc6780372189c628ee91adf6a0692f07010c0690a53f", 3428),
        "val": ("a5d6ae080a68f79ad0c0958da385ef06b5bd523c1c2df7a4e58fa3afe430aa1e", 732),
        "test": ("c244bc1615b00940f54847364a24633d7dc82426ceb9974c34ec47ac57884c41", 736),
    }),
    _benchmark("aflow__agl_thermal_conductivity_300K", "thermal conductivity at 300 K (AGL)",
               "W/(m K)", "AFLOW", {
        "train": ("88e5ccaf4e16ad52c2bc5eff41f19bb97222cf34dc447278fd5a2696bed428a6", 3422),
        "val": ("f09e073ee63bc4c913d6b5d5c44a324385f0ebd84324c9cb5f789ce62e63f36e", 733),
        "test": ("b3884dcde4ea164d061ffb4b22172d68cedc0777f0dc3ada81d1f81e3a9b4cde", 732),
    }),
    _benchmark("aflow__agl_thermal_expansion_300K", "thermal expansion coefficient at 300 K (AGL)",
               "1/K", "AFLOW", {
        "train": ("bf937cad2af75702f16a82728fd52691a67e584b530f5bb703e762d1d92b11fe", 3421),
        "val": ("026a3632b4f6fb247d2efc40d19c7ae79f092363ca221a4cec057e390cd88fdf", 733),
        "test": ("06eb26c729554f9e22046b8b818bb085a471c851b2147acb3049a99d32c06c8f", 732),
    }),
    _benchmark("mp_shear_modulus", "shear modulus", "GPa", MP, {
        "train": ("22f18b123f6d4c1b180c96ee56a0618c35f868e1cb9f9bd758180330b5e95cdf", 4328),
        "val": ("094b720096cc4d451535d2a227c8186904069d4d7566cb82aebc9c3d777c8036", 928),
        "test": ("7ee01a44644916c3df8d1e42212fc4d9be5028b67d51754becb477e72c048317", 928),
    }),
    _benchmark("mp_elastic_anisotropy", "elastic anisotropy (universal index)", "dimensionless",
               MP, {
        "train": ("d9d33f37a8d88835822884bd060581d6a68dd98a59627e05a0f9bce5bae686fe", 4431),
        "val": ("94f9db600852ec3bf6a2bef0efcc59a3ae5fe0cf10203f9edfc43f340465662c", 950),
        "test": ("4fdef93e8b05bb51734835bd73721b3f389544bcbe96978bb6ea5ed1baad9af8", 950),
    }),
    _benchmark("mp_mu_b", "magnetic moment per formula unit", "mu_B", MP, {
        "train": ("5489be409844020513f996e432ee3b3078d002b4b6623c5c78c274ef7666c600", 39663),
        "val": ("b7e7d2cb9003124a35e98a0681f38fa2a00d282cd2a526b4fab361de45799757", 8499),
        "test": ("d1e6eb185cf04f0c28027ed1cf9f45f28dde034b437894ba4085a6dcad84602d", 8500),
    }),
    _matbench("mp_e_form", "formation energy (structures reduced to formulas)", "eV/atom",
              "regression", "90e895635c96447c5be4e9070d26f26e1b4d17925102a6597ae3c4d79c32555b",
              132752, duplicates=(16735, 54369)),
    _matbench("mp_gap", "PBE band gap", "eV", "regression",
              "4084e584467e6f81ec8bf12c438eeb2c049ae39e11401bae694ef6a9983b9d9f", 106113,
              duplicates=(11788, 39737)),
    _matbench("expt_is_metal", "experimental metal (1) or non-metal (0)", "class",
              "classification",
              "5b0828561a6c925d96cd0215f78eb1e8d1ca7c05e9e12fcdbdfbcaeaddd73f13", 4921,
              duplicates=(4, 8)),  # e.g. Cu1.8S1 and Cu9S5
    _matbench("glass", "metallic glass forming (1) or not (0)", "class", "classification",
              "2c76eaaad9c1d92959e99a8a5c77bf1dce605279ee83af0ba3ed18833dcf9a33", 5680),
]
DATASETS: dict[str, Dataset] = {d.name: d for d in _REGISTRY}


def get_dataset(name: str) -> Dataset:
    """The registry entry called ``name`` (case-insensitive).

    An unknown name raises ``ValueError`` listing the closest names and all names.
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}: {name!r}")
    by_lower = {key.lower(): key for key in DATASETS}
    if name.lower() in by_lower:
        return DATASETS[by_lower[name.lower()]]
    close = difflib.get_close_matches(name.lower(), by_lower, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(by_lower[c]) for c in close)}? " if close else ""
    raise ValueError(
        f"unknown dataset {name!r}; {hint}available: {', '.join(DATASETS)} (these hold "
        "compositions; image sets such as MNIST load with stoichnet.images.load_mnist())"
    )


def list_datasets() -> pd.DataFrame:
    """The composition datasets as a table indexed by name: property, unit, task, splits, rows,
    duplicate_rows (rows sharing their composition with another row of their split), source,
    licence."""
    return pd.DataFrame(
        [
            {
                "name": d.name,
                "property": d.property,
                "unit": d.unit,
                "task": d.task,
                "splits": "/".join(d.splits),
                "rows": d.n_rows,
                "duplicate_rows": sum(f.duplicate_rows for f in d.files.values()),
                "source": d.source,
                "licence": d.licence,
            }
            for d in DATASETS.values()
        ]
    ).set_index("name")


def load_dataset(
    name: str,
    split: str | list[str] | tuple[str, ...] | None = None,
    *,
    duplicates: str | None = None,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Load a registered composition dataset as a DataFrame.

    name: a registry name (``list_datasets()``), case-insensitive.
    split: one split name, several, or None for all of them ("train", "val", "test" for the
        CrabNet benchmark sets, "all" for the single-file Matbench sets).
    duplicates: rows of one split with the same composition (Matbench sets hold polymorphs:
        matbench_mp_e_form has 54,369 such rows in 16,735 compositions). None (default)
        keeps them all and warns when there are any; "keep" keeps them silently; "mean"
        keeps the first row with the mean target; "first" keeps the first row; "raise"
        raises ``TableError``. Compositions are never merged across splits.
    Returns columns ``formula`` (str) and ``target`` (float64 in the dataset's unit, or int64
    class labels for classification), plus ``split`` (str) when more than one split is loaded;
    rows in file order, index 0..n-1 before any merging.
    """
    dataset = get_dataset(name)
    if duplicates not in (None, *DUPLICATES):
        raise ValueError(f"duplicates={duplicates!r}: expected None or one of {DUPLICATES}")
    if duplicates == "mean" and dataset.task == "classification":
        raise ValueError(
            f"duplicates='mean' would average {dataset.name}'s 0/1 class labels into fractions: "
            "use 'first', 'raise' or 'keep' for a classification set"
        )
    splits = _check_splits(dataset, split)
    frames = []
    for part in splits:
        file = dataset.files[part]
        path = fetch_file(file, data_dir=data_dir, cache_dir=cache_dir, download=download,
                          progress=progress)
        frame = pd.read_csv(path, dtype={"formula": str, "target": np.float64}, na_filter=False)
        if len(splits) > 1:
            frame["split"] = part
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    if dataset.task == "classification":
        labels = frame["target"].to_numpy()
        if not np.isin(labels, (0.0, 1.0)).all():
            raise ValueError(f"{dataset.name}: classification targets other than 0/1 found")
        frame["target"] = labels.astype(np.int64)
    duplicate_rows = sum(dataset.files[part].duplicate_rows for part in splits)
    if duplicates is None and duplicate_rows:
        compositions = sum(dataset.files[part].duplicate_compositions for part in splits)
        warnings.warn(
            f"{dataset.name}: {duplicate_rows} of {len(frame)} rows share their composition "
            f"with another row of the same split ({compositions} compositions, e.g. "
            "polymorphs); all kept. Pass duplicates='mean', 'first' or 'raise' to change "
            "this, or 'keep' to keep them without this warning",
            stacklevel=2,
        )
    elif duplicates in ("mean", "first", "raise"):
        parsed = parse_formulas(frame["formula"])
        keys = [composition_key(c) for c in parsed.compositions]
        split_of = frame["split"] if "split" in frame else [None] * len(frame)
        frame, _ = resolve_duplicates(
            frame,
            [(s, keys[c]) for s, c in zip(split_of, parsed.inverse.tolist(), strict=True)],
            duplicates,
        )
    return frame


def _check_splits(dataset: Dataset, split) -> list[str]:
    if split is None:
        return list(dataset.splits)
    requested = [split] if isinstance(split, str) else list(split)
    unknown = [s for s in requested if s not in dataset.files]
    if unknown or not requested:
        raise ValueError(
            f"dataset {dataset.name!r} has splits {list(dataset.splits)}; got split={split!r}"
        )
    return requested
