"""Reader for the IDX format of the MNIST files (LeCun et al., http://yann.lecun.com/exdb/mnist/).

An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order, big-endian.
Files may be gzip-compressed; compression is recognised by its magic bytes, not the suffix.
"""

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IDXFormatError", "read_idx"]

# dtype code (third magic byte) -> big-endian NumPy dtype
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """A file is not a valid IDX file (bad magic number, dtype code or size)."""


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise IDXFormatError(f"{path}: truncated or corrupt gzip stream ({exc})") from exc


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip) into an array of its own shape and dtype.

    Returns an array in native byte order: uint8 (N, 28, 28) for MNIST images,
    uint8 (N,) for MNIST labels. Raises ``IDXFormatError`` naming the file when the
    magic number, dtype code, dimensions or data size disagree with the header,
    and ``FileNotFoundError`` when the file is missing.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IDXFormatError(
            f"{path}: {len(data)} bytes, too short for the 4-byte IDX magic number"
        )
    if data[0] != 0 or data[1] != 0:
        raise IDXFormatError(
            f"{path}: magic number {data[:4].hex()} does not start with two zero bytes; "
            "not an IDX file"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXFormatError(f"{path}: unknown IDX dtype code 0x{code:02X}; known codes: {known}")
    if ndim == 0:
        raise IDXFormatError(f"{path}: header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IDXFormatError(
            f"{path}: truncated header: {ndim} dimensions need {header_size} bytes, "
            f"file has {len(data)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_size
    if actual != expected:
        kind = "truncated" if actual < expected else "has trailing bytes"
        raise IDXFormatError(
            f"{path}: {kind}: header shape {shape} of {dtype.name} needs {expected} data bytes, "
            f"found {actual}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))
