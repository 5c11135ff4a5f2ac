#!/usr/bin/env python3
"""Writes the small safetensors / .npy fixtures the C++ I/O tests read back bit-exactly.

Run from the repository root:  /usr/bin/python3 tests/reference/make_io_fixtures.py
Needs numpy and torch (Debian: python3-numpy python3-torch). Seeds are fixed and the output
is deterministic, so re-running rewrites identical files.

Outputs, under tests/data/io/:
  all_dtypes.safetensors   one tensor per dtype (F32, F64, F16, BF16, I64, I32) plus a 0-d,
                           an empty and a 3-D tensor, and __metadata__. Tensor bytes come from
                           torch tensors. If the `safetensors` package is importable its
                           writer (safetensors.torch.save_file) is used; otherwise the file
                           is written here with struct + json exactly per the format spec,
                           laid out as the reference writer does (metadata first, data
                           ordered by element size then name, header padded with spaces to a
                           multiple of 8 bytes).
  npy_<descr>_v<N>.npy     numpy.lib.format.write_array for each supported dtype and format
                           version 1.0 / 2.0 / 3.0.
  npy_*_fortran.npy        Fortran-order arrays (2-D and 3-D), read into C order.
  npy_f4_bigendian.npy     '>f4': the reader must reject it.
  npy_f8_scalar.npy, npy_i4_empty.npy, npy_f4_vector.npy   shape (), (0, 3), (n,).
  expected.json            for every tensor: dtype, shape and the stored bits of each element
                           in C order as hex strings ("bits"), plus for F16 / BF16 the float32
                           bits torch widens them to ("f32_bits"). Bits, not decimal values, so
                           the comparison is exact for NaN, -0 and subnormals too.
"""
import collections
import json
import os
import struct
import sys

import numpy as np
import torch

OUT = os.path.join("tests", "data", "io")


def element_bits(array):
    """Hex strings of each element's stored bits, C order."""
    a = np.ascontiguousarray(array)
    width = a.dtype.itemsize
    view = a.reshape(-1).view({2: "<u2", 4: "<u4", 8: "<u8"}[width])
    return ["%0*x" % (2 * width, int(v)) for v in view]


def torch_bits(t):
    """Stored bits of a torch tensor (any dtype) as hex strings, C order."""
    width = t.element_size()
    itype = {2: torch.int16, 4: torch.int32, 8: torch.int64}[width]
    ints = t.contiguous().view(itype).reshape(-1).numpy()
    mask = (1 << (8 * width)) - 1
    return ["%0*x" % (2 * width, int(v) & mask) for v in ints]


def torch_bytes(t):
    width = t.element_size()
    itype = {2: torch.int16, 4: torch.int32, 8: torch.int64}[width]
    return t.contiguous().view(itype).numpy().astype("<i%d" % width).tobytes()


ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16",
             torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32"}


def write_safetensors_by_spec(path, tensors, metadata):
    order = sorted(tensors.items(), key=lambda kv: (-kv[1].element_size(), kv[0]))
    header = collections.OrderedDict()
    if metadata:
        header["__metadata__"] = metadata
    chunks, offset = [], 0
    for name, t in order:
        data = torch_bytes(t)
        header[name] = collections.OrderedDict(
            [("dtype", ST_DTYPES[t.dtype]), ("shape", list(t.shape)),
             ("data_offsets", [offset, offset + len(data)])])
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def safetensors_fixture(expected):
    torch.manual_seed(20240601)
    half_specials = [0.0, -0.0, 1.0, -2.5, 65504.0, 6.103515625e-05, 5.960464477539063e-08,
                     3.0e-06, float("inf"), float("-inf"), float("nan")]
    bf16_specials = [0.0, -0.0, 1.0, -2.5, 3.3895313892515355e38, 1.1754943508222875e-38,
                     9.183549615799121e-41, 1.0e-39, float("inf"), float("-inf"), float("nan")]
    tensors = {
        "f32.weight": torch.randn(3, 4, dtype=torch.float32),
        "f64.bias": torch.randn(5, dtype=torch.float64),
        "f16.values": torch.cat([torch.tensor(half_specials, dtype=torch.float16),
                                 torch.randn(5).to(torch.float16)]),
        "bf16.values": torch.cat([torch.tensor(bf16_specials, dtype=torch.bfloat16),
                                  torch.randn(5).to(torch.bfloat16)]).reshape(4, 4),
        "i64.ids": torch.tensor([0, -1, 2**40 + 3, -(2**62), 2**63 - 1], dtype=torch.int64),
        "i32.ids": torch.tensor([[7, -7], [2**31 - 1, -(2**31)]], dtype=torch.int32),
        "f32.scalar": torch.tensor(0.5, dtype=torch.float32),
        "f32.empty": torch.zeros(0, 3, dtype=torch.float32),
        "f32.cube": torch.randn(2, 3, 2, dtype=torch.float32),
    }
    metadata = {"format": "pt", "note": "tokenmix fixture \u2713 \"quoted\""}
    path = os.path.join(OUT, "all_dtypes.safetensors")
    try:
        from safetensors.torch import save_file  # noqa: F401
        save_file(tensors, path, metadata=metadata)
        writer = "safetensors.torch.save_file"
    except ImportError:
        write_safetensors_by_spec(path, tensors, metadata)
        writer = "make_io_fixtures.py (struct + json per spec)"
    entry = {"writer": writer, "metadata": metadata, "tensors": {}}
    for name, t in tensors.items():
        e = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "bits": torch_bits(t)}
        if t.dtype in (torch.float16, torch.bfloat16):
            e["f32_bits"] = torch_bits(t.to(torch.float32))
        entry["tensors"][name] = e
    expected["all_dtypes.safetensors"] = entry


def npy_entry(array):
    descr = np.lib.format.dtype_to_descr(array.dtype)
    e = {"descr": descr, "shape": list(array.shape), "bits": element_bits(array.astype(array.dtype.newbyteorder("<")))}
    if array.dtype.kind == "f" and array.dtype.itemsize == 2:
        e["f32_bits"] = element_bits(array.astype("<f4"))
    return e


def write_npy(name, array, version, expected):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, array, version=version, allow_pickle=False)
    expected[name] = npy_entry(array)
    expected[name]["version"] = "%d.%d" % version


def npy_fixtures(expected):
    rng = np.random.default_rng(1234)
    base = {
        "f4": rng.standard_normal((3, 5)).astype("<f4"),
        "f8": rng.standard_normal((2, 3, 2)).astype("<f8"),
        "i8": np.array([[0, -1, 2**40 + 3], [-(2**62), 2**63 - 1, 42]], dtype="<i8"),
        "i4": np.array([7, -7, 2**31 - 1, -(2**31)], dtype="<i4"),
        "f2": np.array([0.0, -0.0, 1.0, 65504.0, 6.103515625e-05, 5.960464477539063e-08,
                        3.0e-06, np.inf, -np.inf, np.nan, -1.5, 0.333], dtype="<f2").reshape(3, 4),
    }
    for code, array in base.items():
        for version in [(1, 0), (2, 0), (3, 0)]:
            write_npy("npy_%s_v%d.npy" % (code, version[0]), array, version, expected)
    write_npy("npy_f4_fortran.npy", np.asfortranarray(base["f4"]), (1, 0), expected)
    write_npy("npy_f8_fortran.npy", np.asfortranarray(base["f8"]), (1, 0), expected)
    write_npy("npy_f8_scalar.npy", np.array(3.25, dtype="<f8"), (1, 0), expected)
    write_npy("npy_i4_empty.npy", np.zeros((0, 3), dtype="<i4"), (1, 0), expected)
    write_npy("npy_f4_vector.npy", rng.standard_normal(7).astype("<f4"), (1, 0), expected)
    write_npy("npy_f4_bigendian.npy", base["f4"].astype(">f4"), (1, 0), expected)


def main():
    if not os.path.isdir(os.path.join("tests", "reference")):
        sys.exit("run from the repository root: /usr/bin/python3 tests/reference/make_io_fixtures.py")
    os.makedirs(OUT, exist_ok=True)
    expected = collections.OrderedDict()
    safetensors_fixture(expected)
    npy_fixtures(expected)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote %d fixtures to %s" % (len(expected), OUT))


if __name__ == "__main__":
    main()
