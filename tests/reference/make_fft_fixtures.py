#!/usr/bin/env python3
"""Writes the numpy reference fixtures for the FFT core and FourierMixer tests.

Run by hand (never by CI) with a Python that has numpy:
    /usr/bin/python3 tests/reference/make_fft_fixtures.py
Inputs are stored as float32 (what the float tests feed in; the double tests widen them), the
references as float64 computed by numpy.fft in double from those float32 values. Complex
arrays are stored as (..., 2) real arrays (re, im). Output: tests/data/fft/*.npy (~1 MB).
"""
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "fft")

# 1D lengths: all of 1..64 plus mixed-radix, generic-radix and Bluestein cases. The largest
# lengths of the test list (3072..8192) are checked against the O(n^2) DFT in the C++ tests
# instead, to keep the fixture folder small.
C2C_LENGTHS = list(range(1, 65)) + [96, 100, 128, 243, 256, 510, 512, 768, 1000, 1009, 1024]
R2C_LENGTHS = [1, 2, 3, 7, 8, 12, 15, 16, 33, 64, 100, 243, 256, 510, 768, 1009, 1024]
# FourierMixer: (batch, seq_len, channels)
MIX_SHAPES = [(1, 7, 12), (1, 33, 64), (1, 196, 160), (2, 16, 24), (3, 5, 1), (1, 1, 9)]


def save(name, array):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(array))


def as_pairs(z):
    return np.stack([z.real, z.imag], axis=-1).astype(np.float64)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240605)

    # Complex 1D: concatenated inputs, forward spectra and unnormalised inverse (n * ifft).
    xs, fw, inv = [], [], []
    for n in C2C_LENGTHS:
        x = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
        z = x[:, 0].astype(np.float64) + 1j * x[:, 1].astype(np.float64)
        xs.append(x)
        fw.append(as_pairs(np.fft.fft(z)))
        inv.append(as_pairs(np.fft.ifft(z) * n))
    save("c2c_lengths", np.array(C2C_LENGTHS, dtype=np.int64))
    save("c2c_input", np.concatenate(xs))
    save("c2c_forward", np.concatenate(fw))
    save("c2c_inverse", np.concatenate(inv))

    # Real 1D: half spectra (numpy.fft.rfft) and Hartley transforms (Re X - Im X).
    xs, rf, dht = [], [], []
    for n in R2C_LENGTHS:
        x = rng.uniform(-1, 1, size=n).astype(np.float32)
        spec = np.fft.fft(x.astype(np.float64))
        xs.append(x)
        rf.append(as_pairs(np.fft.rfft(x.astype(np.float64))))
        dht.append((spec.real - spec.imag).astype(np.float64))
    save("r2c_lengths", np.array(R2C_LENGTHS, dtype=np.int64))
    save("r2c_input", np.concatenate(xs))
    save("r2c_forward", np.concatenate(rf))
    save("dht_forward", np.concatenate(dht))

    # FourierMixer: y = fftn(x, axes=(1, 2)).real per sequence, stored as (B*n) x d.
    for b, n, d in MIX_SHAPES:
        x = rng.standard_normal(size=(b, n, d)).astype(np.float32)
        y = np.fft.fftn(x.astype(np.float64), axes=(1, 2)).real
        tag = f"mix_{b}x{n}x{d}"
        save(tag + "_input", x.reshape(b * n, d))
        save(tag + "_output", y.reshape(b * n, d))


if __name__ == "__main__":
    main()
