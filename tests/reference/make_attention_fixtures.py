#!/usr/bin/python3
"""Reference fixtures for the attention-style token mixers (tests/data/attention/*).

Run by hand with Debian's python3 (torch 1.13, numpy):
    /usr/bin/python3 tests/reference/make_attention_fixtures.py [out_dir]

Each configuration becomes one safetensors file holding the module's own state_dict (float64),
the "input" / "output" tensors (plus masks as float64 0/1 and a shorter-input pair for the
length-tied layers) and the configuration as __metadata__ strings. Everything is computed in
torch float64 with fixed seeds; the C++ tests compare fp64 at rtol 1e-10 and fp32 at 1e-5.

Modules: torch.nn.MultiheadAttention itself for SelfAttention; the others are re-written from
their references' equations (SPEC.md 2.5, 2.7, 2.8):
  * TinyAttention: lucidrains g-mlp-pytorch `Attention` (one head, to_qkv without bias,
    chunk(3) with Q first, scale attn_dim^-0.5 on Q K^T, to_out with bias).
  * ExternalAttention: xmu-xiaoma666 `ExternalAttention` (mk, mv without bias, softmax over
    tokens, L1 over memory slots; no 1e-9). Multi-head form: EANet's EAMLP attention
    (trans_dims Linear(D, D), heads split channels, mk / mv shared by all heads, proj).
  * SynthesizerRandom / SynthesizerDense: Tay et al. 2020, the library's convention.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F



# --------------------------------------------------------------------------------------------
# safetensors writer (no `safetensors` package on the test machines)
# --------------------------------------------------------------------------------------------
def write_safetensors(path, tensors, metadata):
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name].detach().cpu().numpy().astype("<f8"))
        raw = arr.tobytes()
        header[name] = {"dtype": "F64", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def randomise(module, scale=0.3):
    """Replace every parameter with N(0, scale^2) so the test exercises all of them (the
    layers' own inits make biases zero and logits tiny)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * scale)


# --------------------------------------------------------------------------------------------
# Reference modules
# --------------------------------------------------------------------------------------------
class TinyAttention(nn.Module):
    def __init__(self, dim_in, dim_out, dim_inner, causal=False):
        super().__init__()
        self.scale = dim_inner ** -0.5
        self.causal = causal
        self.to_qkv = nn.Linear(dim_in, dim_inner * 3, bias=False)
        self.to_out = nn.Linear(dim_inner, dim_out)

    def forward(self, x):
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        sim = torch.einsum("bid,bjd->bij", q, k) * self.scale
        if self.causal:
            n = x.shape[1]
            mask = torch.ones(n, n, dtype=torch.bool).triu(1)
            sim = sim.masked_fill(mask[None], -float("inf"))
        attn = sim.softmax(dim=-1)
        return self.to_out(torch.einsum("bij,bjd->bid", attn, v))


class ExternalAttention(nn.Module):
    """heads == 1: SPEC 2.7 exactly. heads > 1: EANet multi-head (shared memories)."""

    def __init__(self, d_model, S=64, heads=1):
        super().__init__()
        self.heads = heads
        if heads > 1:
            self.trans_dims = nn.Linear(d_model, d_model)
            self.proj = nn.Linear(d_model, d_model)
        self.mk = nn.Linear(d_model // heads, S, bias=False)
        self.mv = nn.Linear(S, d_model // heads, bias=False)

    def forward(self, x):
        b, n, d = x.shape
        if self.heads > 1:
            x = self.trans_dims(x).view(b, n, self.heads, d // self.heads).permute(0, 2, 1, 3)
            token_axis = 2
        else:
            token_axis = 1
        attn = self.mk(x)
        attn = attn.softmax(dim=token_axis)
        attn = attn / attn.sum(dim=-1, keepdim=True)
        out = self.mv(attn)
        if self.heads > 1:
            out = self.proj(out.permute(0, 2, 1, 3).reshape(b, n, d))
        return out


def split_heads_apply(attn, v, heads):
    # attn [B or 1, h, n, n], v [B, n, D] -> [B, n, D]
    b, n, d = v.shape
    vh = v.view(b, n, heads, d // heads).permute(0, 2, 1, 3)
    o = torch.matmul(attn, vh)
    return o.permute(0, 2, 1, 3).reshape(b, n, d)


def causal_fill(logits):
    n = logits.shape[-1]
    mask = torch.ones(logits.shape[-2], n, dtype=torch.bool).triu(1)
    return logits.masked_fill(mask, -float("inf"))


class SynthesizerRandom(nn.Module):
    def __init__(self, seq_len, d_model, heads=1, factor=0, causal=False):
        super().__init__()
        self.heads, self.causal, self.factor = heads, causal, factor
        if factor > 0:
            self.R1 = nn.Parameter(torch.randn(heads, seq_len, factor) * 0.02)
            self.R2 = nn.Parameter(torch.randn(heads, seq_len, factor) * 0.02)
        else:
            self.attention_weights = nn.Parameter(torch.randn(heads, seq_len, seq_len) * 0.02)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x):
        n = x.shape[1]
        if self.factor > 0:
            logits = torch.matmul(self.R1[:, :n], self.R2[:, :n].transpose(1, 2))
        else:
            logits = self.attention_weights[:, :n, :n]
        if self.causal:
            logits = causal_fill(logits)
        attn = logits.softmax(dim=-1)[None]
        return self.out(split_heads_apply(attn, self.value(x), self.heads))


class SynthesizerDense(nn.Module):
    def __init__(self, seq_len, d_model, heads=1, causal=False):
        super().__init__()
        self.seq_len, self.heads, self.causal = seq_len, heads, causal
        self.dense1 = nn.Linear(d_model, d_model)
        self.dense2 = nn.Linear(d_model, heads * seq_len)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x):
        b, n, _ = x.shape
        logits = self.dense2(F.relu(self.dense1(x)))  # [B, n, h*N]
        logits = logits.view(b, n, self.heads, self.seq_len)[..., :n].permute(0, 2, 1, 3)
        if self.causal:
            logits = causal_fill(logits)
        attn = logits.softmax(dim=-1)
        return self.out(split_heads_apply(attn, self.value(x), self.heads))


# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------
def self_attention_case(out, name, seed, d, heads, batch, n, causal=False, mask=None):
    torch.manual_seed(seed)
    m = nn.MultiheadAttention(d, heads, bias=True, batch_first=True).eval()
    randomise(m)
    x = torch.randn(batch, n, d)
    attn_mask = torch.ones(n, n, dtype=torch.bool).triu(1) if causal else None
    kpm = None
    if mask is not None:
        kpm = mask
    with torch.no_grad():
        # need_weights=True keeps torch on the documented (non-fast) path.
        y, _ = m(x, x, x, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=True)
        y_fast, _ = m(x, x, x, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=False)
    same = torch.allclose(y, y_fast, rtol=1e-9, atol=1e-12, equal_nan=True)
    tensors = dict(m.state_dict())
    tensors["input"] = x
    tensors["output"] = y
    if kpm is not None:
        tensors["key_padding_mask"] = kpm.to(torch.float64)
    meta = {"channels": d, "heads": heads, "batch": batch, "seq_len": n,
            "causal": int(causal), "fast_path_agrees": int(same)}
    write_safetensors(os.path.join(out, name + ".safetensors"), tensors, meta)
    return y


def tiny_attention_case(out, name, seed, d, dim_out, a, batch, n, causal):
    torch.manual_seed(seed)
    m = TinyAttention(d, dim_out, a, causal)
    randomise(m)
    x = torch.randn(batch, n, d)
    with torch.no_grad():
        y = m(x)
    tensors = dict(m.state_dict())
    tensors["input"] = x
    tensors["output"] = y
    meta = {"channels": d, "out_channels": dim_out, "attn_dim": a, "batch": batch,
            "seq_len": n, "causal": int(causal)}
    write_safetensors(os.path.join(out, name + ".safetensors"), tensors, meta)


def external_attention_case(out, name, seed, d, S, heads, batch, n):
    torch.manual_seed(seed)
    m = ExternalAttention(d, S, heads)
    randomise(m, 0.5)
    x = torch.randn(batch, n, d)
    with torch.no_grad():
        y = m(x)
    tensors = dict(m.state_dict())
    tensors["input"] = x
    tensors["output"] = y
    meta = {"channels": d, "memory": S, "heads": heads, "batch": batch, "seq_len": n}
    write_safetensors(os.path.join(out, name + ".safetensors"), tensors, meta)


def synthesizer_case(out, name, seed, module, d, batch, n_short, meta):
    torch.manual_seed(seed)
    randomise(module, 0.5)
    n = meta["seq_len"]
    x = torch.randn(batch, n, d)
    x_short = torch.randn(batch, n_short, d)
    with torch.no_grad():
        y = module(x)
        y_short = module(x_short)
    tensors = dict(module.state_dict())
    tensors["input"] = x
    tensors["output"] = y
    tensors["input_short"] = x_short
    tensors["output_short"] = y_short
    meta = dict(meta, batch=batch, short_len=n_short, channels=d)
    write_safetensors(os.path.join(out, name + ".safetensors"), tensors, meta)


def main():
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "data", "attention")
    os.makedirs(out, exist_ok=True)

    self_attention_case(out, "self_attention_plain", 1, d=24, heads=3, batch=2, n=37)
    g = torch.Generator().manual_seed(11)
    kpm = torch.rand(3, 70, generator=g) < 0.3
    kpm[:, 0] = False  # with causal, query 0 must see key 0 (else its row is NaN)
    self_attention_case(out, "self_attention_causal_padded", 2, d=32, heads=4, batch=3, n=70,
                        causal=True, mask=kpm)
    kpm = torch.rand(2, 300, generator=g) < 0.5
    kpm[1, :] = True
    kpm[1, 123] = False  # sequence 1: one visible key for every query
    self_attention_case(out, "self_attention_long_padded", 3, d=16, heads=2, batch=2, n=300,
                        mask=kpm)
    self_attention_case(out, "self_attention_single_token", 4, d=8, heads=1, batch=3, n=1)
    kpm = torch.zeros(2, 5, dtype=torch.bool)
    kpm[1, :] = True  # sequence 1 fully masked: torch gives NaN rows
    y = self_attention_case(out, "self_attention_fully_masked", 5, d=8, heads=2, batch=2, n=5,
                            mask=kpm)
    assert torch.isnan(y[1]).all() and not torch.isnan(y[0]).any()

    tiny_attention_case(out, "tiny_attention_plain", 6, d=20, dim_out=12, a=16, batch=2, n=45,
                        causal=False)
    tiny_attention_case(out, "tiny_attention_causal", 7, d=24, dim_out=10, a=64, batch=1,
                        n=130, causal=True)

    external_attention_case(out, "external_attention_single", 8, d=24, S=16, heads=1, batch=2,
                            n=50)
    external_attention_case(out, "external_attention_default_s", 9, d=20, S=64, heads=1,
                            batch=1, n=131)
    external_attention_case(out, "external_attention_multihead", 10, d=32, S=8, heads=4,
                            batch=2, n=33)

    m = SynthesizerRandom(40, 24, heads=2)
    synthesizer_case(out, "synthesizer_random_plain", 12, m, d=24, batch=2, n_short=29,
                     meta={"seq_len": 40, "heads": 2, "factor": 0, "causal": 0})
    m = SynthesizerRandom(33, 18, heads=3, factor=5, causal=True)
    synthesizer_case(out, "synthesizer_random_factorized_causal", 13, m, d=18, batch=2,
                     n_short=7, meta={"seq_len": 33, "heads": 3, "factor": 5, "causal": 1})
    m = SynthesizerDense(30, 16, heads=2)
    synthesizer_case(out, "synthesizer_dense_plain", 14, m, d=16, batch=2, n_short=17,
                     meta={"seq_len": 30, "heads": 2, "causal": 0})
    m = SynthesizerDense(21, 12, heads=1, causal=True)
    synthesizer_case(out, "synthesizer_dense_causal", 15, m, d=12, batch=3, n_short=1,
                     meta={"seq_len": 21, "heads": 1, "causal": 1})

    total = 0
    for f in sorted(os.listdir(out)):
        size = os.path.getsize(os.path.join(out, f))
        total += size
        print(f"{f}: {size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
