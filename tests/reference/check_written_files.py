#!/usr/bin/env python3
"""Checks, with numpy, the .npy and safetensors files a C++ test wrote.

    /usr/bin/python3 tests/reference/check_written_files.py <dir>

<dir>/manifest.json (written by the C++ test) lists each file and what it must hold:
  {"files": [
    {"file": "x.npy", "format": "npy", "descr": "<f4", "shape": [2, 3], "bits": ["3f800000", ...]},
    {"file": "y.safetensors", "format": "safetensors", "metadata": {"k": "v"},
     "tensors": {"name": {"dtype": "F32", "shape": [2], "bits": [...]}}}]}
"bits" are each element's stored bits in C order, as hex, so NaN, -0 and subnormals compare
exactly. .npy files are read with numpy.load; safetensors files are parsed independently
of tokenmix (struct + json + numpy.frombuffer), and also with the `safetensors` package if it
is installed. Exit status: 0 all good, 1 a mismatch (each printed), 77 numpy unavailable
(the C++ test then skips).
"""
import json
import os
import struct
import sys

try:
    import numpy as np
except ImportError:
    print("check_written_files.py: numpy not available, skipping")
    sys.exit(77)

ST_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": None, "I64": "<i8", "I32": "<i4"}
ST_SIZES = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4}
UINT = {2: "<u2", 4: "<u4", 8: "<u8"}

errors = []


def bits_hex(raw, width):
    return ["%0*x" % (2 * width, int(v)) for v in np.frombuffer(raw, dtype=UINT[width])]


def check_npy(path, entry):
    try:  # numpy >= 1.24 refuses headers over 10000 bytes unless told; the v2.0 case has one
        a = np.load(path, allow_pickle=False, max_header_size=1 << 20)
    except TypeError:
        a = np.load(path, allow_pickle=False)
    descr = np.lib.format.dtype_to_descr(a.dtype)
    if descr != entry["descr"]:
        errors.append("%s: expected descr %s, got %s" % (path, entry["descr"], descr))
        return
    if list(a.shape) != entry["shape"]:
        errors.append("%s: expected shape %s, got %s" % (path, entry["shape"], list(a.shape)))
        return
    got = bits_hex(np.ascontiguousarray(a).tobytes(), a.dtype.itemsize)
    if got != entry["bits"]:
        errors.append("%s: values differ: expected %s, got %s" % (path, entry["bits"][:8], got[:8]))
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
    if "version" in entry and "%d.%d" % version != entry["version"]:
        errors.append("%s: expected version %s, got %d.%d" % ((path, entry["version"]) + version))


def check_safetensors(path, entry):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    if (8 + n) % 8 != 0:
        errors.append("%s: header not padded to 8 bytes (length %d)" % (path, n))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    if metadata != entry.get("metadata", {}):
        errors.append("%s: expected metadata %s, got %s" % (path, entry.get("metadata"), metadata))
    if sorted(header) != sorted(entry["tensors"]):
        errors.append("%s: expected tensors %s, got %s" % (path, sorted(entry["tensors"]), sorted(header)))
        return
    covered = 0
    for name, info in header.items():
        want = entry["tensors"][name]
        begin, end = info["data_offsets"]
        covered += end - begin
        if info["dtype"] != want["dtype"] or info["shape"] != want["shape"]:
            errors.append("%s: %s: expected %s %s, got %s %s" % (
                path, name, want["dtype"], want["shape"], info["dtype"], info["shape"]))
            continue
        raw = data[begin:end]
        width = ST_SIZES[info["dtype"]]
        if len(raw) != width * int(np.prod(info["shape"], dtype=np.int64)):
            errors.append("%s: %s: byte count %d does not match shape" % (path, name, len(raw)))
            continue
        if bits_hex(raw, width) != want["bits"]:
            errors.append("%s: %s: values differ" % (path, name))
        if ST_DTYPES[info["dtype"]]:
            a = np.frombuffer(raw, dtype=ST_DTYPES[info["dtype"]]).reshape(info["shape"])
            if a.dtype.itemsize != width:
                errors.append("%s: %s: numpy dtype mismatch" % (path, name))
    if covered != len(data):
        errors.append("%s: tensors cover %d of %d data bytes" % (path, covered, len(data)))
    try:
        from safetensors.numpy import load_file
    except ImportError:
        return
    if any(t["dtype"] == "BF16" for t in entry["tensors"].values()):
        return  # numpy has no bfloat16
    for name, a in load_file(path).items():
        if bits_hex(np.ascontiguousarray(a).tobytes(), a.dtype.itemsize) != entry["tensors"][name]["bits"]:
            errors.append("%s: %s: safetensors.numpy.load_file disagrees" % (path, name))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_written_files.py <dir with manifest.json>")
    root = sys.argv[1]
    with open(os.path.join(root, "manifest.json")) as f:
        manifest = json.load(f)
    for entry in manifest["files"]:
        path = os.path.join(root, entry["file"])
        try:
            if entry["format"] == "npy":
                check_npy(path, entry)
            else:
                check_safetensors(path, entry)
        except Exception as e:  # a file numpy cannot read at all is a failure too
            errors.append("%s: %s: %s" % (path, type(e).__name__, e))
    for e in errors:
        print("check_written_files.py: " + e)
    print("check_written_files.py: %d files, %d problems" % (len(manifest["files"]), len(errors)))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
