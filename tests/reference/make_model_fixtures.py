#!/usr/bin/env python3
"""Reference outputs for the tokenmix models (issue 7, SPEC.md §3).

Run by hand (never by CI) with a Python that has torch and numpy:
    /usr/bin/python3 tests/reference/make_model_fixtures.py [out_dir]
Writes one safetensors file per configuration into tests/data/models/: the model's
parameters under the reference's own state_dict names (timm MlpMixer / VisionTransformer,
Hugging Face FNetModel / FNetForMaskedLM) stored as float32, the inputs ("input" images as
float32, "input_ids" / "token_type_ids" as int64) and the outputs computed in float64 from
exactly those float32 weights and inputs ("output", "pooled", "logits"). The configuration
is JSON in the header's __metadata__ under "config" (the reference's own field names).

The models are re-written here from the reference equations: timm's MlpMixer skeleton
(stem.proj conv, blocks, norm, mean pool, head) with MixerBlock, SpatialGatingBlock
(GatedMlp + SpatialGatingUnit), the library aMLP block (SPEC §2.5), ResBlock + Affine, the
library Transformer block (nn.MultiheadAttention) and timm's ViT layout (cls token,
attn.qkv / attn.proj); HF modeling_fnet.py's FNetEmbeddings / FNetLayer / FNetPooler /
FNetLMPredictionHead; the sequence gMLP / aMLP (embedding, blocks, LayerNorm, head).
Parameters are drawn at order-one scale (not timm's zero head / 1e-6 init) so every weight
visibly affects the output.
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

DTYPES = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64"}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    items = []
    for name, t in tensors.items():
        arr = t.detach().cpu().numpy() if torch.is_tensor(t) else np.asarray(t)
        if arr.dtype == np.float64 and name not in ("output", "pooled", "logits"):
            arr = arr.astype("<f4")  # weights and float inputs are stored as float32
        arr = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<")))
        items.append((name, arr))
    # Larger elements first keeps every tensor aligned to its element size.
    items.sort(key=lambda kv: -kv[1].dtype.itemsize)
    blobs, offset = [], 0
    for name, arr in items:
        raw = arr.tobytes()
        header[name] = {"dtype": DTYPES[arr.dtype], "shape": list(arr.shape),
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


def round_to_f32(module):
    """Weights are stored as float32: make the float64 model use exactly those values."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.float().double())


def randomize(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            leaf = name.split(".")[-1]
            if p.dim() >= 2 and leaf not in ("alpha", "beta", "pos_embed", "cls_token"):
                fan_in = p.shape[-1] if p.dim() == 2 else int(np.prod(p.shape[1:]))
                bound = 1.0 / math.sqrt(fan_in)
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
            elif leaf in ("alpha", "ls1", "ls2") or (leaf == "weight" and p.dim() == 1):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    round_to_f32(module)


# ---- timm-style image models -------------------------------------------------------------

class Mlp(nn.Module):
    def __init__(self, din, hidden, dout=None, act="gelu"):
        super().__init__()
        self.fc1 = nn.Linear(din, hidden)
        self.act = nn.GELU() if act == "gelu" else nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dout or din)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class MixerBlock(nn.Module):
    def __init__(self, dim, seq_len, mlp_ratio=(0.5, 4.0)):
        super().__init__()
        tokens_dim, channels_dim = int(mlp_ratio[0] * dim), int(mlp_ratio[1] * dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_tokens = Mlp(seq_len, tokens_dim, seq_len)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_channels = Mlp(dim, channels_dim)

    def forward(self, x):
        x = x + self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.mlp_channels(self.norm2(x))


class SpatialGatingUnit(nn.Module):
    def __init__(self, dim, seq_len, causal=False):
        super().__init__()
        self.norm = nn.LayerNorm(dim // 2)  # eps 1e-5, as timm builds it
        self.proj = nn.Linear(seq_len, seq_len)
        self.causal = causal

    def forward(self, x, addend=None):
        u, v = x.chunk(2, dim=-1)
        v = self.norm(v)
        n = x.shape[1]
        w = self.proj.weight[:n, :n]
        if self.causal:
            w = w.tril()
        g = torch.einsum("ij,bjc->bic", w, v) + self.proj.bias[:n, None]
        if addend is not None:
            g = g + addend
        return u * g


class TinyAttention(nn.Module):  # lucidrains gMLP Attention, one head (SPEC §2.5)
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
            sim = sim.masked_fill(mask, float("-inf"))
        attn = sim.softmax(dim=-1)
        return self.to_out(torch.einsum("bij,bjd->bid", attn, v))


class GatedMlp(nn.Module):
    def __init__(self, dim, hidden, seq_len, causal=False):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.gate = SpatialGatingUnit(hidden, seq_len, causal)
        self.fc2 = nn.Linear(hidden // 2, dim)

    def forward(self, x, addend=None):
        return self.fc2(self.gate(self.act(self.fc1(x)), addend))


class GatingBlock(nn.Module):  # timm SpatialGatingBlock; with attn_dim the aMLP block
    def __init__(self, dim, seq_len, mlp_ratio=4.0, attn_dim=0, causal=False, eps=1e-6):
        super().__init__()
        hidden = int(mlp_ratio * dim)
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.mlp_channels = GatedMlp(dim, hidden, seq_len, causal)
        if attn_dim:
            self.attn = TinyAttention(dim, hidden // 2, attn_dim, causal)
        else:
            self.attn = None

    def forward(self, x):
        xn = self.norm(x)
        addend = self.attn(xn) if self.attn is not None else None
        return x + self.mlp_channels(xn, addend)


class Affine(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones((1, 1, dim)))
        self.beta = nn.Parameter(torch.zeros((1, 1, dim)))

    def forward(self, x):
        return torch.addcmul(self.beta, self.alpha, x)


class ResBlock(nn.Module):
    def __init__(self, dim, seq_len, mlp_ratio=4, init_values=1e-4):
        super().__init__()
        self.norm1 = Affine(dim)
        self.linear_tokens = nn.Linear(seq_len, seq_len)
        self.mlp_channels = Mlp(dim, int(dim * mlp_ratio))
        self.norm2 = Affine(dim)
        self.ls1 = nn.Parameter(init_values * torch.ones(dim))
        self.ls2 = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        x = x + self.ls1 * self.linear_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.ls2 * self.mlp_channels(self.norm2(x))


class MhaBlock(nn.Module):  # library Transformer block: pre-LN nn.MultiheadAttention + Mlp
    def __init__(self, dim, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, heads, bias=True, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TimmAttention(nn.Module):  # timm vision_transformer Attention
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class TimmVitBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = TimmAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, in_chans, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ImageModel(nn.Module):
    """timm MlpMixer skeleton (and its ViT twin): stem, blocks, norm, pool, head."""

    def __init__(self, kind, img_size, patch, dim, depth, num_classes, in_chans=3,
                 mlp_ratio=None, heads=None, attn_dim=64, init_values=1e-4, timm_vit=False):
        super().__init__()
        n = (img_size // patch) ** 2
        self.kind, self.timm_vit = kind, timm_vit
        stem = PatchEmbed(in_chans, dim, patch)
        if timm_vit:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
            self.patch_embed = stem
        else:
            self.stem = stem
            if kind == "vit":
                self.pos_embed = nn.Parameter(torch.zeros(1, n, dim))
        blocks = []
        for _ in range(depth):
            if kind == "mixer":
                blocks.append(MixerBlock(dim, n, mlp_ratio))
            elif kind == "gmlp":
                blocks.append(GatingBlock(dim, n, mlp_ratio))
            elif kind == "amlp":
                blocks.append(GatingBlock(dim, n, mlp_ratio, attn_dim=attn_dim))
            elif kind == "resmlp":
                blocks.append(ResBlock(dim, n, mlp_ratio, init_values))
            elif timm_vit:
                blocks.append(TimmVitBlock(dim, heads, mlp_ratio))
            else:
                blocks.append(MhaBlock(dim, heads, mlp_ratio))
        self.blocks = nn.Sequential(*blocks)
        self.norm = Affine(dim) if kind == "resmlp" else nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, img):
        x = (self.patch_embed if self.timm_vit else self.stem)(img)
        if self.timm_vit:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        if self.kind == "vit":
            x = x + self.pos_embed
        x = self.norm(self.blocks(x))
        pooled = x[:, 0] if self.timm_vit else x.mean(dim=1)
        return self.head(pooled)


# ---- Hugging Face FNet ---------------------------------------------------------------------

class Obj(nn.Module):
    pass


class FNetModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.cfg = cfg
        e = Obj()
        e.word_embeddings = nn.Embedding(cfg["vocab_size"], h, padding_idx=cfg["pad_token_id"])
        e.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], h)
        e.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], h)
        e.LayerNorm = nn.LayerNorm(h, eps=eps)
        e.projection = nn.Linear(h, h)
        e.register_buffer("position_ids", torch.arange(cfg["max_position_embeddings"]).expand((1, -1)))
        self.embeddings = e
        enc = Obj()
        layers = []
        for _ in range(cfg["num_hidden_layers"]):
            layer = Obj()
            layer.fourier = Obj()
            layer.fourier.output = Obj()
            layer.fourier.output.LayerNorm = nn.LayerNorm(h, eps=eps)
            layer.intermediate = Obj()
            layer.intermediate.dense = nn.Linear(h, cfg["intermediate_size"])
            layer.output = Obj()
            layer.output.dense = nn.Linear(cfg["intermediate_size"], h)
            layer.output.LayerNorm = nn.LayerNorm(h, eps=eps)
            layers.append(layer)
        enc.layer = nn.ModuleList(layers)
        self.encoder = enc
        self.pooler = Obj()
        self.pooler.dense = nn.Linear(h, h)

    def act(self, x):
        return F.gelu(x) if self.cfg["hidden_act"] == "gelu" else F.gelu(x, approximate="tanh")

    def forward(self, ids, token_types=None):
        e = self.embeddings
        n = ids.shape[1]
        if token_types is None:
            token_types = torch.zeros_like(ids)
        x = e.word_embeddings(ids) + e.token_type_embeddings(token_types)
        x = x + e.position_embeddings(e.position_ids[:, :n])
        x = e.projection(e.LayerNorm(x))
        for layer in self.encoder.layer:
            f = torch.fft.fftn(x, dim=(1, 2)).real
            x = layer.fourier.output.LayerNorm(x + f)
            inter = self.act(layer.intermediate.dense(x))
            x = layer.output.LayerNorm(layer.output.dense(inter) + x)
        pooled = torch.tanh(self.pooler.dense(x[:, 0]))
        return x, pooled


class FNetForMaskedLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h = cfg["hidden_size"]
        self.fnet = FNetModel(cfg)
        self.cls = Obj()
        p = Obj()
        p.transform = Obj()
        p.transform.dense = nn.Linear(h, h)
        p.transform.LayerNorm = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])
        p.decoder = nn.Linear(h, cfg["vocab_size"])
        p.bias = nn.Parameter(torch.zeros(cfg["vocab_size"]))
        p.decoder.bias = p.bias
        self.cls.predictions = p

    def tie(self):
        self.cls.predictions.decoder.weight = self.fnet.embeddings.word_embeddings.weight

    def forward(self, ids, token_types=None):
        hidden, pooled = self.fnet(ids, token_types)
        p = self.cls.predictions
        t = p.transform.LayerNorm(self.fnet.act(p.transform.dense(hidden)))
        return hidden, pooled, p.decoder(t)


# ---- gMLP / aMLP for token sequences -------------------------------------------------------

class SequenceModel(nn.Module):
    def __init__(self, num_tokens, dim, depth, seq_len, ff_mult, attn_dim, causal, head):
        super().__init__()
        self.embed = nn.Embedding(num_tokens, dim)
        self.blocks = nn.Sequential(*[GatingBlock(dim, seq_len, ff_mult, attn_dim, causal, eps=1e-5)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_tokens) if head else None

    def forward(self, ids):
        x = self.norm(self.blocks(self.embed(ids)))
        return self.head(x) if self.head is not None else x


# ---- fixtures ----------------------------------------------------------------------------

def f32(t):
    return t.float().double()


def image_fixture(out, name, model, cfg, batch, img_size, seed):
    randomize(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    img = f32(torch.randn(batch, cfg.get("in_chans", 3), img_size, img_size, generator=g))
    model.eval()
    with torch.no_grad():
        y = model(img)
    tensors = dict(model.state_dict())
    tensors["input"] = img
    tensors["output"] = y
    write_safetensors(os.path.join(out, name + ".safetensors"), tensors,
                      {"config": json.dumps(cfg)})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data", "models")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)

    base = dict(img_size=32, patch_size=4, embed_dim=64, num_blocks=2, num_classes=10, in_chans=3)
    image_fixture(out, "mixer", ImageModel("mixer", 32, 4, 64, 2, 10, mlp_ratio=(0.5, 4.0)),
                  dict(base, mlp_ratio=[0.5, 4.0]), 2, 32, 101)
    image_fixture(out, "gmlp", ImageModel("gmlp", 32, 4, 64, 2, 10, mlp_ratio=6),
                  dict(base, mlp_ratio=6), 2, 32, 202)
    image_fixture(out, "amlp", ImageModel("amlp", 32, 4, 64, 2, 10, mlp_ratio=4, attn_dim=16),
                  dict(base, mlp_ratio=4, attn_dim=16), 2, 32, 303)
    image_fixture(out, "resmlp", ImageModel("resmlp", 32, 4, 64, 2, 10, mlp_ratio=4),
                  dict(base, mlp_ratio=4), 2, 32, 404)
    # 24x24 images: N = 36 tokens (not a power of two), 4 heads of 16.
    image_fixture(out, "vit", ImageModel("vit", 24, 4, 64, 2, 10, mlp_ratio=4, heads=4),
                  dict(base, img_size=24, mlp_ratio=4, num_heads=4), 3, 24, 505)
    image_fixture(out, "vit_timm", ImageModel("vit", 24, 4, 64, 2, 7, mlp_ratio=2, heads=2,
                                              timm_vit=True),
                  dict(base, img_size=24, mlp_ratio=2, num_heads=2, num_classes=7,
                       class_token=True, global_pool="token"), 2, 24, 606)

    # FNetModel, no prefix, gelu_new, token types given; n = 16.
    cfg = dict(vocab_size=100, hidden_size=64, num_hidden_layers=2, intermediate_size=128,
               hidden_act="gelu_new", max_position_embeddings=40, type_vocab_size=4,
               layer_norm_eps=1e-12, pad_token_id=3, model_type="fnet",
               hidden_dropout_prob=0.1, initializer_range=0.02)
    model = FNetModel(cfg)
    randomize(model, 707)
    g = torch.Generator().manual_seed(708)
    ids = torch.randint(0, 100, (2, 16), generator=g)
    ids[1, 12:] = 3  # padding enters the FFT like any token
    tt = torch.randint(0, 4, (2, 16), generator=g)
    with torch.no_grad():
        hidden, pooled = model(ids, tt)
    tensors = dict(model.state_dict())
    tensors.update(input_ids=ids, token_type_ids=tt, output=hidden, pooled=pooled)
    write_safetensors(os.path.join(out, "fnet.safetensors"), tensors, {"config": json.dumps(cfg)})

    # FNetForMaskedLM: prefix "fnet.", exact gelu, tied decoder (as HF saves it: no
    # cls.predictions.decoder.weight), no token types; n = 33.
    cfg2 = dict(cfg, hidden_act="gelu", intermediate_size=96)
    mlm = FNetForMaskedLM(cfg2)
    randomize(mlm, 808)
    mlm.tie()
    g = torch.Generator().manual_seed(809)
    ids = torch.randint(0, 100, (3, 33), generator=g)
    with torch.no_grad():
        hidden, pooled, logits = mlm(ids)
    tensors = {k: v for k, v in mlm.state_dict().items() if k != "cls.predictions.decoder.weight"}
    tensors.update(input_ids=ids, output=hidden, pooled=pooled, logits=logits)
    write_safetensors(os.path.join(out, "fnet_mlm.safetensors"), tensors,
                      {"config": json.dumps(cfg2)})

    # Sequence gMLP (non-causal, with head) and causal aMLP run on a shorter input.
    for name, attn_dim, causal, n_in, head in (("gmlp_seq", 0, False, 16, True),
                                                ("amlp_seq_causal", 16, True, 11, False)):
        cfgs = dict(num_tokens=50, dim=32, depth=2, seq_len=16, ff_mult=4, attn_dim=attn_dim,
                    causal=causal, head=head)
        m = SequenceModel(50, 32, 2, 16, 4, attn_dim, causal, head)
        randomize(m, 909 + n_in)
        g = torch.Generator().manual_seed(910 + n_in)
        ids = torch.randint(0, 50, (2, n_in), generator=g)
        with torch.no_grad():
            y = m(ids)
        tensors = dict(m.state_dict())
        tensors.update(input_ids=ids, output=y)
        write_safetensors(os.path.join(out, name + ".safetensors"), tensors,
                          {"config": json.dumps(cfgs)})


if __name__ == "__main__":
    main()
