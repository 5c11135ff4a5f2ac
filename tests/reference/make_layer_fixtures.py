#!/usr/bin/env python3
"""Reference outputs for the tokenmix building-block and MLP-style layers.

Run by hand (never by CI) with a Python that has torch and numpy:
    /usr/bin/python3 tests/reference/make_layer_fixtures.py [out_dir]
Writes one safetensors file per configuration into tests/data/layers/: the module's
parameters under its own state_dict names, "input" and "output" (plus "gate_addend" where
used), all float64, and the configuration as JSON in the header's __metadata__.

The modules are re-written from the reference code's equations (timm Mlp, MixerBlock,
SpatialGatingUnit, GatedMlp/SpatialGatingBlock, Affine, ResBlock, PatchEmbed; lucidrains'
tiny Attention for the aMLP block; SPEC.md §2).
Length-tied layers given a sequence shorter than their N use the leading n x n block of the
token weights and the leading n bias entries (the library's documented semantics); with
n = N that is exactly the timm module. Parameters are re-drawn at order-one scale (not timm's
1e-6 / LayerScale 1e-4 init) so every weight visibly affects the output.
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

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_default_dtype(torch.float64)


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, offset = [], 0
    for name, t in tensors.items():
        arr = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f8"))
        raw = arr.tobytes()
        header[name] = {"dtype": "F64", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


# ---- modules ---------------------------------------------------------------------------

def gelu_act(name):
    return nn.GELU() if name == "gelu" else nn.GELU(approximate="tanh")


class Mlp(nn.Module):  # timm Mlp
    def __init__(self, din, hidden, dout, act="gelu"):
        super().__init__()
        self.fc1 = nn.Linear(din, hidden)
        self.act = gelu_act(act)
        self.fc2 = nn.Linear(hidden, dout)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Affine(nn.Module):  # timm resmlp Affine
    def __init__(self, dim):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones((1, 1, dim)))
        self.beta = nn.Parameter(torch.zeros((1, 1, dim)))

    def forward(self, x):
        return torch.addcmul(self.beta, self.alpha, x)


class LayerScale(nn.Module):  # timm LayerScale
    def __init__(self, dim, init_values=1e-5):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class PatchEmbed(nn.Module):  # timm PatchEmbed, flatten + transpose, no norm
    def __init__(self, cin, dim, p):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, kernel_size=p, stride=p)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


def token_linear(x, weight, bias):
    """TokLin over the leading n x n block: x [B, n, C] -> [B, n, C]."""
    n = x.shape[1]
    return F.linear(x.transpose(1, 2), weight[:n, :n], bias[:n]).transpose(1, 2)


class MixerBlock(nn.Module):  # timm MixerBlock
    def __init__(self, n, dim, mlp_ratio=(0.5, 4.0)):
        super().__init__()
        ds, dc = int(mlp_ratio[0] * dim), int(mlp_ratio[1] * dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_tokens = Mlp(n, ds, n)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_channels = Mlp(dim, dc, dim)

    def forward(self, x):
        n = x.shape[1]
        t = self.norm1(x).transpose(1, 2)
        m = self.mlp_tokens
        t = F.linear(m.act(F.linear(t, m.fc1.weight[:, :n], m.fc1.bias)),
                     m.fc2.weight[:n], m.fc2.bias[:n])
        x = x + t.transpose(1, 2)
        return x + self.mlp_channels(self.norm2(x))


class SpatialGatingUnit(nn.Module):  # timm SpatialGatingUnit (+ causal, + aMLP addend)
    def __init__(self, hidden, n, causal=False):
        super().__init__()
        self.norm = nn.LayerNorm(hidden // 2)  # default eps 1e-5, as in timm
        self.proj = nn.Linear(n, n)
        self.causal = causal

    def forward(self, x, addend=None):
        u, v = x.chunk(2, dim=-1)
        v = self.norm(v)
        w = self.proj.weight
        if self.causal:
            w = w.masked_fill(torch.ones_like(w, dtype=torch.bool).triu(1), 0.0)
        g = token_linear(v, w, self.proj.bias)
        if addend is not None:
            g = g + addend
        return u * g


class GatedMlp(nn.Module):  # timm GatedMlp with the SGU as gate
    def __init__(self, dim, hidden, n, causal=False):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.gate = SpatialGatingUnit(hidden, n, causal)
        self.fc2 = nn.Linear(hidden // 2, dim)

    def forward(self, x):
        return self.fc2(self.gate(self.act(self.fc1(x))))


class SpatialGatingBlock(nn.Module):  # timm SpatialGatingBlock
    def __init__(self, dim, hidden, n, causal=False):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_channels = GatedMlp(dim, hidden, n, causal)

    def forward(self, x):
        return x + self.mlp_channels(self.norm(x))


class TinyAttention(nn.Module):  # lucidrains g-mlp-pytorch Attention (one head)
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
            sim = sim.masked_fill(mask[None], float("-inf"))
        return self.to_out(torch.einsum("bij,bjd->bid", sim.softmax(dim=-1), v))


class AMLPBlock(nn.Module):  # SPEC §2.5: gMLP block + tiny attention on the normalised input
    def __init__(self, dim, hidden, n, attn_dim, causal=False):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_channels = GatedMlp(dim, hidden, n, causal)
        self.attn = TinyAttention(dim, hidden // 2, attn_dim, causal)

    def forward(self, x):
        xn = self.norm(x)
        m = self.mlp_channels
        z = m.act(m.fc1(xn))
        return x + m.fc2(m.gate(z, self.attn(xn)))


class ResBlock(nn.Module):  # timm resmlp ResBlock
    def __init__(self, dim, n, mlp_ratio=4, init_values=1e-4):
        super().__init__()
        self.norm1 = Affine(dim)
        self.linear_tokens = nn.Linear(n, n)
        self.norm2 = Affine(dim)
        self.mlp_channels = Mlp(dim, int(dim * mlp_ratio), dim)
        self.ls1 = nn.Parameter(init_values * torch.ones(dim))
        self.ls2 = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        x = x + self.ls1 * token_linear(self.norm1(x), self.linear_tokens.weight,
                                        self.linear_tokens.bias)
        return x + self.ls2 * self.mlp_channels(self.norm2(x))


# ---- fixtures ---------------------------------------------------------------------------

def randomize(module, gen):
    """Order-one parameters: default-init-sized weights, norms around 1, biases ~0.2."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            leaf = name.split(".")[-1]
            if leaf in ("alpha", "ls1", "ls2", "gamma") or (
                    leaf == "weight" and p.dim() == 1):
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
            elif leaf in ("bias", "beta"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)


def emit(out_dir, name, module, x, config, extra=None, call=None):
    module.eval()
    with torch.no_grad():
        y = call(module, x) if call else module(x)
    tensors = dict(module.state_dict())
    tensors["input"] = x
    tensors["output"] = y
    if extra:
        tensors.update(extra)
    path = os.path.join(out_dir, name + ".safetensors")
    write_safetensors(path, tensors, {"config": json.dumps(config)})
    print(f"{name}: {os.path.getsize(path)} bytes, output {tuple(y.shape)}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "data", "layers")
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(20240611)

    def rnd(*shape, scale=1.0):
        return scale * torch.randn(shape, generator=gen)

    def build(cls, *args, **kwargs):
        m = cls(*args, **kwargs)
        randomize(m, gen)
        return m

    # Linear
    emit(out_dir, "linear_a", build(nn.Linear, 7, 5), rnd(6, 7), {"in": 7, "out": 5})
    emit(out_dir, "linear_nobias", build(nn.Linear, 4, 9, bias=False), rnd(3, 4),
         {"in": 4, "out": 9, "bias": False})

    # LayerNorm
    emit(out_dir, "layer_norm_a", build(nn.LayerNorm, 9, eps=1e-5), rnd(5, 9),
         {"d": 9, "eps": 1e-5})
    emit(out_dir, "layer_norm_b", build(nn.LayerNorm, 16, eps=1e-6), 2.0 + rnd(4, 16, scale=3.0),
         {"d": 16, "eps": 1e-6})
    # Magnitude 1e4 with unit spread: E[x^2] - E[x]^2 would lose every digit in fp32.
    emit(out_dir, "layer_norm_large", build(nn.LayerNorm, 33, eps=1e-6),
         1e4 + rnd(3, 33), {"d": 33, "eps": 1e-6})

    # Affine, LayerScale
    emit(out_dir, "affine_a", build(Affine, 6), rnd(2, 5, 6), {"d": 6})
    emit(out_dir, "affine_b", build(Affine, 3), rnd(1, 2, 3), {"d": 3})
    emit(out_dir, "layer_scale_a", build(LayerScale, 5), rnd(4, 5), {"d": 5})
    emit(out_dir, "layer_scale_b", build(LayerScale, 2), rnd(3, 2), {"d": 2})

    # FeedForward (timm Mlp)
    emit(out_dir, "feed_forward_a", build(Mlp, 8, 20, 8), rnd(6, 8),
         {"in": 8, "hidden": 20, "out": 8, "act": "gelu"})
    emit(out_dir, "feed_forward_b", build(Mlp, 6, 10, 4, act="gelu_tanh"), rnd(5, 6, scale=2.0),
         {"in": 6, "hidden": 10, "out": 4, "act": "gelu_new"})

    # PatchEmbed
    emit(out_dir, "patch_embed_a", build(PatchEmbed, 3, 5, 4), rnd(2, 3, 8, 12),
         {"C": 3, "H": 8, "W": 12, "p": 4, "D": 5, "B": 2})
    emit(out_dir, "patch_embed_b", build(PatchEmbed, 2, 7, 3), rnd(3, 2, 9, 6),
         {"C": 2, "H": 9, "W": 6, "p": 3, "D": 7, "B": 3})

    # MLPMixerBlock
    emit(out_dir, "mlp_mixer_block_a", build(MixerBlock, 7, 8), rnd(2, 7, 8),
         {"N": 7, "D": 8, "n": 7, "B": 2})
    emit(out_dir, "mlp_mixer_block_b", build(MixerBlock, 5, 6), rnd(3, 5, 6),
         {"N": 5, "D": 6, "n": 5, "B": 3})
    emit(out_dir, "mlp_mixer_block_short", build(MixerBlock, 9, 6), rnd(2, 6, 6),
         {"N": 9, "D": 6, "n": 6, "B": 2})
    emit(out_dir, "mlp_mixer_block_n1", build(MixerBlock, 1, 4), rnd(3, 1, 4),
         {"N": 1, "D": 4, "n": 1, "B": 3})

    # SpatialGatingUnit
    emit(out_dir, "spatial_gating_unit_a", build(SpatialGatingUnit, 12, 7), rnd(2, 7, 12),
         {"N": 7, "H": 12, "n": 7, "B": 2})
    emit(out_dir, "spatial_gating_unit_causal", build(SpatialGatingUnit, 4, 9, causal=True),
         rnd(3, 9, 4), {"N": 9, "H": 4, "n": 9, "B": 3, "causal": True})
    # Longer than one causal block (64 rows) and shorter than N.
    emit(out_dir, "spatial_gating_unit_causal_long",
         build(SpatialGatingUnit, 6, 80, causal=True), rnd(2, 70, 6),
         {"N": 80, "H": 6, "n": 70, "B": 2, "causal": True})
    emit(out_dir, "spatial_gating_unit_short", build(SpatialGatingUnit, 4, 9), rnd(2, 6, 4),
         {"N": 9, "H": 4, "n": 6, "B": 2})
    sgu = build(SpatialGatingUnit, 8, 5)
    addend = rnd(2, 5, 4)
    emit(out_dir, "spatial_gating_unit_gate", sgu, rnd(2, 5, 8),
         {"N": 5, "H": 8, "n": 5, "B": 2}, extra={"gate_addend": addend},
         call=lambda m, x: m(x, addend))
    emit(out_dir, "spatial_gating_unit_n1", build(SpatialGatingUnit, 6, 1), rnd(2, 1, 6),
         {"N": 1, "H": 6, "n": 1, "B": 2})

    # GMLPBlock
    emit(out_dir, "gmlp_block_a", build(SpatialGatingBlock, 8, 24, 7), rnd(2, 7, 8),
         {"N": 7, "D": 8, "H": 24, "n": 7, "B": 2})
    emit(out_dir, "gmlp_block_causal", build(SpatialGatingBlock, 6, 12, 6, causal=True),
         rnd(2, 6, 6), {"N": 6, "D": 6, "H": 12, "n": 6, "B": 2, "causal": True})
    emit(out_dir, "gmlp_block_short", build(SpatialGatingBlock, 5, 10, 8), rnd(3, 5, 5),
         {"N": 8, "D": 5, "H": 10, "n": 5, "B": 3})

    # GMLPBlock in its aMLP form
    emit(out_dir, "amlp_block_a", build(AMLPBlock, 8, 12, 7, 4), rnd(2, 7, 8),
         {"N": 7, "D": 8, "H": 12, "attn_dim": 4, "n": 7, "B": 2})
    emit(out_dir, "amlp_block_causal", build(AMLPBlock, 6, 8, 6, 5, causal=True), rnd(2, 6, 6),
         {"N": 6, "D": 6, "H": 8, "attn_dim": 5, "n": 6, "B": 2, "causal": True})

    # ResMLPBlock
    emit(out_dir, "resmlp_block_a", build(ResBlock, 8, 7), rnd(2, 7, 8),
         {"N": 7, "D": 8, "n": 7, "B": 2})
    emit(out_dir, "resmlp_block_b", build(ResBlock, 5, 4), rnd(3, 4, 5),
         {"N": 4, "D": 5, "n": 4, "B": 3})
    emit(out_dir, "resmlp_block_short", build(ResBlock, 4, 9), rnd(2, 5, 4),
         {"N": 9, "D": 4, "n": 5, "B": 2})


if __name__ == "__main__":
    main()
