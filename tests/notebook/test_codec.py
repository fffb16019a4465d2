"""The binary column container the widgets send."""

import struct

import numpy as np

from lmql_nb.notebook import codec


def test_round_trip_keeps_numbers_exact_and_text_intact():
    columns = {
        "text": ["", " Paris", "日本語", "😀", "<img src=x onerror=alert(1)>", "a\nb"],
        "f": np.array([-2.4768, float("-inf"), float("nan"), 1e-300], dtype="<f8"),
        "i": np.array([0, -1, 2**31 - 1], dtype="<i4"),
        "b": np.array([0, 1, 1], dtype="u1"),
        "empty": [],
    }
    back = codec.unpack(codec.pack(columns))
    assert back["text"] == columns["text"]
    assert back["f"].tobytes() == columns["f"].tobytes()
    assert back["i"].tolist() == [0, -1, 2**31 - 1]
    assert back["b"].tolist() == [0, 1, 1]
    assert back["empty"] == []


def test_columns_start_8_byte_aligned_for_typed_arrays():
    data = codec.pack({"s": ["abc"], "f": np.array([1.5], dtype="<f8")})
    assert data[:4] == b"LMNB"
    (length,) = struct.unpack("<I", data[4:8])
    import json

    header = json.loads(data[8:8 + length])
    assert header["data_start"] % 8 == 0
    for column in header["columns"]:
        assert column["offset"] % 8 == 0
    f = header["columns"][1]
    start = header["data_start"] + f["offset"]
    assert struct.unpack("<d", data[start:start + 8]) == (1.5,)
