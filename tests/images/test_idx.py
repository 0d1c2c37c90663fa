import gzip
import struct

import numpy as np
import pytest

from stoichnet.images import IDXFormatError, load_mnist, read_idx

# IDX dtype codes and their big-endian struct formats, from the MNIST page's format table
CODES = {0x08: ("B", np.uint8), 0x09: ("b", np.int8), 0x0B: ("h", np.int16),
         0x0C: ("i", np.int32), 0x0D: ("f", np.float32), 0x0E: ("d", np.float64)}


def idx_bytes(values: np.ndarray, code: int) -> bytes:
    """An IDX file built value by value with struct, independently of the reader."""
    fmt, _ = CODES[code]
    header = bytes([0, 0, code, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    return header + struct.pack(f">{values.size}{fmt}", *values.ravel().tolist())


@pytest.mark.parametrize("code", sorted(CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_every_dtype(tmp_path, code, compress):
    dtype = CODES[code][1]
    offset = 0 if code == 0x08 else 7  # negative values for the signed types
    values = (np.arange(24) - offset).astype(dtype).reshape(2, 3, 4)
    raw = idx_bytes(values, code)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


def test_mnist_matches_published_facts(data_dir):
    images, labels = load_mnist(data_dir=data_dir, download=False)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    # the t10k labels begin 7 2 1 0 4 1 4 9 5 9 and have this published class count
    np.testing.assert_array_equal(labels[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    np.testing.assert_array_equal(
        np.bincount(labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    )
    # the widely quoted mean pixel intensity of the MNIST test set is 0.1325 (of 1)
    assert abs(images.mean() / 255 - 0.1325) < 5e-4
    assert images.min() == 0 and images.max() == 255


def _write(tmp_path, data: bytes):
    path = tmp_path / "bad-file.idx"
    path.write_bytes(data)
    return path


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4), 0x08)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (GOOD[:-1], "truncated"),
        (GOOD[:10], "truncated header"),
        (GOOD + b"\x00", "trailing bytes"),
        (b"\x01\x00" + GOOD[2:], "not an IDX file"),
        (GOOD[:2] + b"\x07" + GOOD[3:], "unknown IDX dtype code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00", "too short"),
        (gzip.compress(GOOD)[:-12], "gzip"),
        (b"<html>404 Not Found</html>", "not an IDX file"),
    ],
)
def test_bad_files_raise_naming_the_file(tmp_path, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(IDXFormatError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")


def test_result_is_writable_and_owned(tmp_path):
    out = read_idx(_write(tmp_path, GOOD))
    out[0, 0] = 99
    assert out[0, 0] == 99
