"""A small binary container for the widgets' columns (numbers and strings).

Widgets send their data as one `bytes` trait, which ipywidgets transmits as a binary
buffer (no JSON lists of numbers); `to_html()` embeds the same bytes as base64. The
layout, read by `js/src/codec.js`:

    b"LMNB" | uint32 LE header length | header JSON (utf-8) | padding to 8 | columns

The header lists each column's name, dtype ("f8", "i4", "u1" or "str"), length, byte
offset (from `data_start`, 8-aligned) and byte size. A "str" column is uint32 byte
offsets (length + 1 of them) followed by the utf-8 text.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

MAGIC = b"LMNB"
_DTYPES = {"f8": "<f8", "i4": "<i4", "u1": "u1"}

Column = Union[np.ndarray, Sequence[str]]


def _encode(values: Column) -> tuple[str, int, bytes]:
    if isinstance(values, np.ndarray):
        for name, dtype in _DTYPES.items():
            if values.dtype == np.dtype(dtype):
                return name, len(values), values.tobytes()
        raise TypeError(f"unsupported column dtype {values.dtype}; use float64, int32 or uint8")
    encoded = [str(v).encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype="<u4")
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return "str", len(encoded), offsets.tobytes() + b"".join(encoded)


def _pad(n: int) -> int:
    return -n % 8


def pack(columns: Mapping[str, Column], declared: Optional[Mapping[str, str]] = None) -> bytes:
    """Pack named columns (numpy float64/int32/uint8 arrays or lists of str) into bytes.

    With `declared` (a view's column declaration, name -> dtype), the columns must be
    exactly those, with those dtypes: a view never receives an undeclared column.
    """
    if declared is not None and set(columns) != set(declared):
        missing, extra = sorted(set(declared) - set(columns)), sorted(set(columns) - set(declared))
        raise ValueError(f"columns do not match the view's declaration: missing {missing}, "
                         f"undeclared {extra}")
    entries, blobs, offset = [], [], 0
    for name, values in columns.items():
        dtype, length, blob = _encode(values)
        if declared is not None and declared[name] != dtype:
            raise ValueError(f"column {name!r} is declared {declared[name]!r} but is {dtype!r}")
        entries.append({"name": name, "dtype": dtype, "length": length, "offset": offset,
                        "nbytes": len(blob)})
        blobs.append(blob + b"\0" * _pad(len(blob)))
        offset += len(blob) + _pad(len(blob))
    # data_start depends on the header's own length: settle it in two passes
    header: dict[str, Any] = {"columns": entries, "data_start": 0}
    for _ in range(2):
        text = json.dumps(header, separators=(",", ":")).encode("utf-8")
        header["data_start"] = 8 + len(text) + _pad(8 + len(text))
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head = MAGIC + struct.pack("<I", len(text)) + text
    return head + b"\0" * (header["data_start"] - len(head)) + b"".join(blobs)


def unpack(data: bytes) -> dict[str, Union[np.ndarray, list[str]]]:
    """The columns of `pack`'s output, as numpy arrays and lists of str."""
    if not data:
        return {}
    if data[:4] != MAGIC:
        raise ValueError("not lmql_nb widget data (bad magic)")
    (length,) = struct.unpack("<I", data[4:8])
    header = json.loads(data[8:8 + length])
    columns: dict[str, Union[np.ndarray, list[str]]] = {}
    for entry in header["columns"]:
        start = header["data_start"] + entry["offset"]
        blob = data[start:start + entry["nbytes"]]
        if entry["dtype"] == "str":
            n = entry["length"]
            offsets = np.frombuffer(blob[:4 * (n + 1)], dtype="<u4")
            text = blob[4 * (n + 1):]
            columns[entry["name"]] = [text[offsets[i]:offsets[i + 1]].decode("utf-8")
                                      for i in range(n)]
        else:
            columns[entry["name"]] = np.frombuffer(blob, dtype=_DTYPES[entry["dtype"]]).copy()
    return columns
