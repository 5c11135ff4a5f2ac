#!/usr/bin/env python3
"""Reference for the classify-image example (examples/classify_image.cpp).

Run by hand (never by CI) with a Python that has torch and numpy, after make_model_fixtures.py:
    /usr/bin/python3 tests/reference/make_example_fixtures.py
Writes into tests/data/examples/:
- wide.png and wide.ppm (binary P6): the same 45x31 RGB picture, so PNG and PPM decoding can be
  checked against each other and against the reference;
- tall.ppm (ASCII P3, maxval 1000): a 19x26 picture, smaller than the crop (it is upscaled);
- expected.json: for each picture and each of the mixer and resmlp model fixtures in
  tests/data/models/, the float64 logits of the model on the preprocessed picture.

The preprocessing is the documented one of classify-image: torchvision's Resize(int) +
CenterCrop on a tensor, i.e. F.interpolate(bilinear, align_corners=False, antialias=False) to
(shorter side = floor(img_size / 0.875), longer side int(...) keeping the aspect ratio), a
centre crop at round((h - size) / 2), then (x - mean) / std with 0.5 for Mixer and ImageNet's
mean / std for ResMLP. The models are make_model_fixtures.py's reference modules loaded with
the fixtures' own float32 weights.
"""
import json
import math
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_fixtures import ImageModel  # noqa: E402

torch.set_default_dtype(torch.float64)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
SAFETENSORS_DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        arr = np.frombuffer(data[lo:hi], dtype=SAFETENSORS_DTYPES[info["dtype"]])
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


def write_png(path, rgb):
    """8-bit RGB, no interlace, filter 0 on every row (enough for any PNG reader)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, payload):
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def write_ppm_binary(path, rgb):
    h, w, _ = rgb.shape
    with open(path, "wb") as f:
        f.write(b"P6\n# tokenmix classify-image fixture\n%d %d\n255\n" % (w, h))
        f.write(rgb.tobytes())


def write_ppm_ascii(path, rgb, maxval):
    h, w, _ = rgb.shape
    with open(path, "w") as f:
        f.write("P3\n%d %d\n%d\n" % (w, h, maxval))
        for y in range(h):
            f.write(" ".join(str(int(v)) for v in rgb[y].reshape(-1)) + "\n")


def picture(w, h, seed, maxval):
    """A smooth gradient with a bright blob and noise: resizing visibly matters."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / max(w - 1, 1), yy / max(h - 1, 1),
                     np.exp(-((xx - 0.6 * w) ** 2 + (yy - 0.4 * h) ** 2) / (0.1 * w * h))], axis=-1)
    noisy = np.clip(base + 0.25 * rng.standard_normal(base.shape), 0.0, 1.0)
    return np.round(noisy * maxval).astype(np.uint8 if maxval < 256 else np.uint16)


def preprocess(rgb, maxval, size, mean, std):
    h, w, _ = rgb.shape
    x = torch.from_numpy(rgb.astype(np.float64) / maxval).permute(2, 0, 1)[None]
    short = math.floor(size / 0.875)
    if w <= h:
        out_w, out_h = short, int(short * h / w)
    else:
        out_h, out_w = short, int(short * w / h)
    x = F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=False,
                      antialias=False)
    top, left = int(round((out_h - size) / 2.0)), int(round((out_w - size) / 2.0))
    x = x[:, :, top:top + size, left:left + size]
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def main():
    out = os.path.join(ROOT, "examples")
    os.makedirs(out, exist_ok=True)
    wide = picture(45, 31, 11, 255)
    tall = picture(19, 26, 15, 1000)
    write_png(os.path.join(out, "wide.png"), wide)
    write_ppm_binary(os.path.join(out, "wide.ppm"), wide)
    write_ppm_ascii(os.path.join(out, "tall.ppm"), tall, 1000)

    models = {
        "mixer": (ImageModel("mixer", 32, 4, 64, 2, 10, mlp_ratio=(0.5, 4.0)),
                  (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        "resmlp": (ImageModel("resmlp", 32, 4, 64, 2, 10, mlp_ratio=4),
                   (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    }
    expected = {}
    for name, (model, mean, std) in models.items():
        tensors = read_safetensors(os.path.join(ROOT, "models", name + ".safetensors"))
        weights = {k: v.double() for k, v in tensors.items() if k not in ("input", "output")}
        model.load_state_dict(weights, strict=True)
        model.eval()
        for picture_name, rgb, maxval in (("wide", wide, 255), ("tall", tall, 1000)):
            with torch.no_grad():
                logits = model(preprocess(rgb, maxval, 32, mean, std))[0]
            probs = torch.softmax(logits, 0)
            top = torch.sort(probs, descending=True).values[:6]
            # Printed to 4 decimals: the top five must be told apart at that precision.
            assert float((top[:-1] - top[1:]).min()) > 1e-3, (name, picture_name, top)
            expected.setdefault(picture_name, {})[name] = [float(v) for v in logits]
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
