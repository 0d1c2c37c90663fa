import hashlib
import http.server
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stoichnet.chem.datasets import (
    DATASETS,
    ChecksumError,
    DataFile,
    Dataset,
    DatasetNotAvailableError,
    default_cache_dir,
    fetch_file,
    get_dataset,
    list_datasets,
    load_dataset,
)
from stoichnet.chem.formula import parse_formulas
from stoichnet.chem.tables import composition_key
from stoichnet.images import DATASETS as IMAGE_DATASETS

# Row counts (train, val, test) as published in the shared data README
README_ROWS = {
    "CritExam__Ef": (59509, 12752, 12753),
    "CritExam__Ed": (59509, 12752, 12753),
    "aflow__energy_atom": (19346, 4118, 4115),
    "mp_mu_b": (39663, 8499, 8500),
}


def test_registry_names_every_shared_file_with_its_hash(data_dir):
    # every shared file belongs to one registry: compositions here, images in stoichnet.images
    registered = {f.path: f for d in DATASETS.values() for f in d.files.values()}
    registered |= {f.path: f for d in IMAGE_DATASETS.values() for f in (d.images, d.labels)}
    on_disk = {
        p.relative_to(data_dir).as_posix()
        for p in data_dir.rglob("*")
        if p.is_file() and p.name != "README.md"
    }
    assert set(registered) == on_disk
    for rel, file in registered.items():
        assert hashlib.sha256((data_dir / rel).read_bytes()).hexdigest() == file.sha256, rel
        assert file.urls and all(u.startswith(("http://", "https://")) for u in file.urls)


def test_registry_metadata_is_complete():
    for d in DATASETS.values():
        assert d.task in {"regression", "classification"}, d.name
        assert d.property and d.unit and d.source and d.licence, d.name
    table = list_datasets()
    assert list(table.index) == list(DATASETS)
    assert {"property", "unit", "task", "splits", "rows", "duplicate_rows", "source",
            "licence"} <= set(table)
    assert table.loc["matbench_mp_e_form", "duplicate_rows"] == 54369
    assert table.loc["matbench_mp_e_form", "rows"] == 132752
    assert table.loc["CritExam__Ef", "unit"] == "eV/atom"


@pytest.mark.parametrize("name", sorted(README_ROWS))
def test_benchmark_split_sizes_match_the_readme(data_dir, name):
    frame = load_dataset(name, data_dir=data_dir, download=False, duplicates="keep")
    assert list(frame.columns) == ["formula", "target", "split"]
    counts = frame["split"].value_counts()
    assert tuple(counts[s] for s in ("train", "val", "test")) == README_ROWS[name]
    assert frame["target"].dtype == np.float64 and np.isfinite(frame["target"]).all()


def test_one_split_has_no_split_column_and_keeps_the_formula_nan(data_dir):
    frame = load_dataset("mp_mu_b", split="train", data_dir=data_dir, download=False)
    assert list(frame.columns) == ["formula", "target"] and len(frame) == 39663
    # sodium nitride written "NaN" is a formula in this file, not a missing value
    assert (frame["formula"] == "NaN").sum() == 1
    assert frame["formula"].notna().all()
    reference = pd.read_csv(data_dir / "benchmark/mp_mu_b/train.csv", keep_default_na=False)
    np.testing.assert_array_equal(frame["target"], reference["target"])


def test_classification_targets_are_integer_labels(data_dir):
    frame = load_dataset("matbench_glass", data_dir=data_dir, download=False)
    assert frame["target"].dtype == np.int64 and set(frame["target"]) == {0, 1}
    assert len(frame) == 5680


def test_duplicates_default_warns_and_policies_apply(data_dir):
    with pytest.warns(UserWarning, match=r"8 of 4921 rows share .* \(4 compositions"):
        kept = load_dataset("matbench_expt_is_metal", data_dir=data_dir, download=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_dataset("matbench_expt_is_metal", data_dir=data_dir,
                                duplicates="keep")) == len(kept) == 4921
    first = load_dataset("matbench_expt_is_metal", data_dir=data_dir, duplicates="first")
    assert len(first) == 4917 and first.index.is_monotonic_increasing
    # Cu1.8S1 (a non-metal, 0) and Cu9S5 (a metal, 1) are one composition
    rows = kept.index[kept["formula"].isin(["Cu1.8S1", "Cu9S5"])]
    assert rows[0] in first.index and rows[1] not in first.index
    mean = load_dataset("aflow__energy_atom", data_dir=data_dir, duplicates="mean")
    assert mean["split"].value_counts()["train"] == 19344
    with pytest.raises(ValueError, match="Al0.4C0.2Nb0.6.*Al2C1Nb3"):
        load_dataset("aflow__energy_atom", split="train", data_dir=data_dir, duplicates="raise")
    with pytest.raises(ValueError, match="duplicates='drop'"):
        load_dataset("matbench_glass", data_dir=data_dir, duplicates="drop")
    with pytest.raises(ValueError, match="average matbench_expt_is_metal's 0/1 class labels"):
        load_dataset("matbench_expt_is_metal", data_dir=data_dir, duplicates="mean")


@pytest.mark.slow
def test_registered_duplicate_counts_are_those_of_the_files(data_dir):
    for dataset in DATASETS.values():
        for file in dataset.files.values():
            if not file.path.endswith(".csv"):
                continue
            formulas = pd.read_csv(data_dir / file.path, dtype=str, na_filter=False)["formula"]
            parsed = parse_formulas(formulas)
            keys = pd.Series([composition_key(c) for c in parsed.compositions])[parsed.inverse]
            shared = keys[keys.duplicated(keep=False)]
            assert (shared.nunique(), len(shared)) == (
                file.duplicate_compositions, file.duplicate_rows), file.path


def test_env_var_is_the_default_data_dir(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("STOICHNET_DATA", str(data_dir))
    frame = load_dataset("matbench_expt_is_metal", cache_dir=tmp_path, download=False,
                         duplicates="keep")
    assert len(frame) == 4921
    assert not any(tmp_path.iterdir())


def test_unknown_names_and_splits_are_helpful():
    with pytest.raises(ValueError, match="did you mean 'CritExam__Ef'") as info:
        get_dataset("CritExam_Ef")
    assert "matbench_glass" in str(info.value)  # the full list follows
    assert get_dataset("critexam__ef").name == "CritExam__Ef"
    with pytest.raises(ValueError, match=r"splits \['val'\]; got split='train'"):
        load_dataset("OQMD_Formation_Enthalpy", split="train")
    with pytest.raises(ValueError, match="load_mnist"):
        load_dataset("mnist")
    with pytest.raises(TypeError, match="string"):
        get_dataset(3)


# --- the download path, through local file:// URLs (no network in tests) ---------------

CSV = b"formula,target\nFe2O3,-1.5\nNaCl,-2.1\n"


def _source(tmp_path: Path, content: bytes = CSV) -> str:
    path = tmp_path / "source" / "tiny.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return path.as_uri()


def _file(url: str, content: bytes = CSV) -> DataFile:
    return DataFile("tiny/train.csv", hashlib.sha256(content).hexdigest(), (url,), 2)


def test_download_verifies_and_caches(tmp_path, capsys):
    file = _file(_source(tmp_path))
    empty, cache = tmp_path / "data", tmp_path / "cache"
    path = fetch_file(file, data_dir=empty, cache_dir=cache)
    assert path == cache / "tiny/train.csv" and path.read_bytes() == CSV
    assert "tiny/train.csv" in capsys.readouterr().err  # the progress bar names the file
    (tmp_path / "source" / "tiny.csv").unlink()  # the cached copy is used from now on
    assert fetch_file(file, data_dir=empty, cache_dir=cache, download=False) == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["train.csv"]


def test_downloaded_file_honours_the_umask(tmp_path):
    # written through util.files.atomic_file: 0666 less the umask, not mkstemp's 0600
    file = _file(_source(tmp_path))
    old = os.umask(0o022)
    try:
        path = fetch_file(file, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache",
                          progress=False)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.fixture
def http_folder(tmp_path):
    """A local HTTP server (no network) serving tmp_path/"served"; yields its base URL."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_download_falls_back_to_the_next_mirror(tmp_path, http_folder):
    folder, base = http_folder
    (folder / "tiny.csv").write_bytes(CSV)
    file = DataFile("tiny/train.csv", hashlib.sha256(CSV).hexdigest(),
                    (f"{base}/missing.csv", f"{base}/tiny.csv"), 2)
    path = fetch_file(file, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache",
                      progress=False)
    assert path.read_bytes() == CSV
    only_missing = DataFile(file.path, file.sha256, (f"{base}/missing.csv",), 2)
    with pytest.raises(DatasetNotAvailableError, match="404"):
        fetch_file(only_missing, data_dir=tmp_path / "data", cache_dir=tmp_path / "other")


def test_data_dir_wins_over_cache(tmp_path):
    file = _file("file:///nonexistent")
    for root in ("data", "cache"):
        (tmp_path / root / "tiny").mkdir(parents=True)
        (tmp_path / root / "tiny/train.csv").write_bytes(CSV)
    found = fetch_file(file, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert found == tmp_path / "data/tiny/train.csv"


def test_download_with_wrong_hash_saves_nothing(tmp_path):
    url = _source(tmp_path, CSV + b"Cu,0.0\n")
    file = _file(url)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError) as info:
        fetch_file(file, data_dir=tmp_path / "data", cache_dir=cache, progress=False)
    message = str(info.value)
    assert file.sha256 in message and hashlib.sha256(CSV + b"Cu,0.0\n").hexdigest() in message
    assert "tiny/train.csv" in message
    assert list((cache / "tiny").iterdir()) == []  # no partial or unverified file left


def test_local_file_with_wrong_hash_is_an_error_not_a_fallback(tmp_path):
    file = _file(_source(tmp_path))
    (tmp_path / "data/tiny").mkdir(parents=True)
    bad = tmp_path / "data/tiny/train.csv"
    bad.write_bytes(CSV.replace(b"-1.5", b"-1.6"))
    with pytest.raises(ChecksumError, match=str(bad)) as info:
        fetch_file(file, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert file.sha256 in str(info.value)
    assert not (tmp_path / "cache").exists()


def test_corrupt_cached_file_is_an_error(tmp_path):
    file = _file(_source(tmp_path))
    cached = tmp_path / "cache/tiny/train.csv"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(CSV[:-3])  # e.g. an interrupted copy
    with pytest.raises(ChecksumError, match=str(cached)):
        fetch_file(file, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")


def test_offline_error_says_where_to_put_the_file(tmp_path):
    file = _file((tmp_path / "gone.csv").as_uri())
    with pytest.raises(DatasetNotAvailableError) as info:
        fetch_file(file, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)
    message = str(info.value)
    assert str(tmp_path / "data/tiny/train.csv") in message
    assert str(tmp_path / "cache/tiny/train.csv") in message
    assert file.urls[0] in message
    with pytest.raises(DatasetNotAvailableError, match="download disabled"):
        fetch_file(file, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", download=False)


def test_load_dataset_downloads_a_registered_file(tmp_path, monkeypatch):
    tiny = Dataset("tiny", "p", "eV", "regression", "test", "MIT",
                   {"train": _file(_source(tmp_path))})
    monkeypatch.setitem(DATASETS, "tiny", tiny)
    monkeypatch.delenv("STOICHNET_DATA", raising=False)
    monkeypatch.setenv("STOICHNET_CACHE", str(tmp_path / "cache"))
    frame = load_dataset("tiny", progress=False)
    assert frame["formula"].tolist() == ["Fe2O3", "NaCl"]
    assert frame["target"].tolist() == [-1.5, -2.1]
    assert (tmp_path / "cache/tiny/train.csv").is_file()


def test_default_cache_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("STOICHNET_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "b"))
    assert default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("STOICHNET_CACHE")
    assert default_cache_dir() == tmp_path / "b" / "stoichnet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home/.cache/stoichnet"

