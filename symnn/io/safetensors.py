"""The safetensors format with numpy alone: read and write, no pickle, no new dependency.

A file is an 8-byte little-endian header length, a JSON header ``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {...}}``, then the tensors' raw C-order bytes
(offsets relative to the end of the header). Every field is checked before any array is
returned, so a truncated or altered file is a :class:`~symnn.errors.SymnnValueError` naming the
file and the tensor.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import SymnnValueError

__all__ = ["read_safetensors", "write_safetensors", "DTYPES"]

#: safetensors dtype names and their numpy types (BF16 is widened to float32 on reading)
DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_,
}  # fmt: skip
_MAX_HEADER = 100 * 2**20


def _header(raw: bytes, path: Path) -> tuple[dict, int]:
    if len(raw) < 8:
        raise SymnnValueError(f"{path}: too short for a safetensors file ({len(raw)} bytes).")
    n = int.from_bytes(raw[:8], "little")
    if n <= 0 or n > _MAX_HEADER or 8 + n > len(raw):
        raise SymnnValueError(
            f"{path}: not a safetensors file or truncated (header length {n}, file {len(raw)} "
            "bytes)."
        )
    try:
        header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SymnnValueError(f"{path}: the safetensors header is not valid JSON.") from None
    if not isinstance(header, dict):
        raise SymnnValueError(f"{path}: the safetensors header is not a JSON object.")
    header.pop("__metadata__", None)
    return header, 8 + n


def _tensor(name: str, spec, data: memoryview, path: Path) -> np.ndarray:
    try:
        dtype = DTYPES[spec["dtype"]]
        shape = tuple(int(s) for s in spec["shape"])
        begin, end = (int(v) for v in spec["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise SymnnValueError(f"{path}: tensor {name!r} has a malformed entry {spec!r}.") from None
    size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if min(shape, default=0) < 0 or not 0 <= begin <= end <= len(data) or end - begin != size:
        raise SymnnValueError(
            f"{path}: tensor {name!r} ({spec['dtype']} {list(shape)}) does not fit its byte "
            f"range [{begin}, {end}) of {len(data)} data bytes (truncated or altered file)."
        )
    array = np.frombuffer(data[begin:end], dtype=np.dtype(dtype).newbyteorder("<"))
    if spec["dtype"] == "BF16":
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array.reshape(shape).astype(array.dtype.newbyteorder("="))


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file, in the header's order.

    >>> import tempfile, numpy as np
    >>> p = Path(tempfile.mkdtemp()) / "w.safetensors"
    >>> write_safetensors({"fc.weight": np.eye(2, dtype="float32")}, p)
    >>> read_safetensors(p)["fc.weight"]
    array([[1., 0.],
           [0., 1.]], dtype=float32)
    """
    path = Path(path)
    raw = path.read_bytes()
    header, start = _header(raw, path)
    data = memoryview(raw)[start:]
    return {name: _tensor(name, spec, data, path) for name, spec in header.items()}


def write_safetensors(tensors: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Write arrays as a ``.safetensors`` file (readable by the ``safetensors`` package);
    written to a temporary file first, so a failed write leaves no half-written file."""
    names = {np.dtype(v).name: k for k, v in DTYPES.items() if k != "BF16"}
    header, chunks, offset = {}, [], 0
    for name, value in tensors.items():
        array = np.ascontiguousarray(value)
        if array.dtype.name not in names:
            raise SymnnValueError(f"tensor {name!r} has dtype {array.dtype}; not in safetensors.")
        blob = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": names[array.dtype.name], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}  # fmt: skip
        chunks.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the reference writer aligns the data to 8 bytes
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for blob in chunks:
            f.write(blob)
    os.replace(tmp, path)
