#!/usr/bin/python3
"""The straightforward PyTorch stage-1 step that `lincat bench train` times side by side with
lincat's own: every layer computes the softmax teacher without grad and the hybrid student in
the quadratic form from the same q, k, v (LoLCATs' attention transfer); the loss is the mean
over layers of the MSE of the head outputs; AdamW (lr 1e-2) on the feature maps and window
factors, gradient norm clipped to 1. Written from DESIGN.md 1.1-1.4 like LoLCATs'
linear_window_attention_tk.py, with none of lincat's code.

Timing only: the tokens are random, rope_scaling is ignored (it does not change the cost).

usage: plain_stage1.py MODEL_DIR [--batch 4] [--seq 256] [--window 64] [--feature-dim 64]
                       [--steps 6] [--warmup 2] [--threads 2]
prints one JSON line: {"tokens_per_s": ..., "step_s": ..., "torch": "1.13.1", ...}
"""
import argparse
import json
import math
import struct
import sys
import time

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(raw[8 + n + b:8 + n + e]), dtype=DTYPES[info["dtype"]])
        out[name] = t.view(info["shape"]).float()
    return out


def load_weights(model_dir):
    import glob
    import os
    files = sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
    if not files:
        sys.exit(f"plain_stage1.py: no .safetensors in {model_dir}")
    w = {}
    for f in files:
        w.update(read_safetensors(f))
    return w


def rms_norm(x, weight, eps):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def repeat_kv(x, n_rep):
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


def window_mask(n, w):  # terraced (tk) blocks, start-aligned: block of j >= block of i - 1
    i = torch.arange(n).view(n, 1)
    j = torch.arange(n).view(1, n)
    return (j <= i) & (j // w >= i // w - 1)


class FeatureMap(torch.nn.Module):  # Hedgehog softmax_dim
    def __init__(self, heads, head_dim, feature_dim):
        super().__init__()
        self.layer = torch.nn.Parameter(torch.empty(heads, head_dim, feature_dim))
        torch.nn.init.kaiming_uniform_(self.layer)

    def forward(self, x):
        xw = torch.einsum("bhtd,hdf->bhtf", x, self.layer)
        return torch.cat([torch.softmax(xw, -1), torch.softmax(-xw, -1)], -1).clamp(min=1e-12)


def hybrid_quadratic(q, k, v, fq, fk, gamma, win, lin):
    d = q.shape[-1]
    s = q @ k.transpose(-1, -2) / math.sqrt(d)
    s = s.masked_fill(~win, float("-inf"))
    a_sm = gamma * torch.exp(s - s.amax(-1, keepdim=True))
    a_ln = (fq @ fk.transpose(-1, -2)).masked_fill(~lin, 0)
    a = a_sm + a_ln
    return (a / a.sum(-1, keepdim=True)) @ v


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--feature-dim", type=int, default=64)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    cfg = json.load(open(a.model_dir + "/config.json"))
    W = load_weights(a.model_dir)
    L, C = cfg["num_hidden_layers"], cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", H)
    D = cfg.get("head_dim") or C // H
    eps = cfg.get("rms_norm_eps", 1e-5)
    theta = cfg.get("rope_theta", 10000.0)
    T, B = a.seq, a.batch

    inv = 1.0 / theta ** (torch.arange(0, D, 2).float() / D)
    ang = torch.outer(torch.arange(T).float(), inv)
    cos = torch.cat([ang.cos(), ang.cos()], -1)
    sin = torch.cat([ang.sin(), ang.sin()], -1)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    win = window_mask(T, a.window)
    lin = causal & ~win

    fmq = [FeatureMap(H, D, a.feature_dim) for _ in range(L)]
    fmk = [FeatureMap(H, D, a.feature_dim) for _ in range(L)]
    factors = [torch.nn.Parameter(torch.full((1, H, 1, 1), -2.1972)) for _ in range(L)]
    params = [t for m in fmq + fmk for t in m.parameters()] + factors
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.0)

    def g(name):
        return W[name]

    def step(tokens):
        opt.zero_grad()
        losses = []
        with torch.no_grad():
            x = F.embedding(tokens, g("model.embed_tokens.weight"))
        for i in range(L):
            pre = f"model.layers.{i}."
            with torch.no_grad():
                h = rms_norm(x, g(pre + "input_layernorm.weight"), eps)
                q = F.linear(h, g(pre + "self_attn.q_proj.weight")).view(B, T, H, D).transpose(1, 2)
                k = F.linear(h, g(pre + "self_attn.k_proj.weight")).view(B, T, Hkv, D).transpose(1, 2)
                v = F.linear(h, g(pre + "self_attn.v_proj.weight")).view(B, T, Hkv, D).transpose(1, 2)
                q, k = rope(q, cos, sin), rope(k, cos, sin)
                k, v = repeat_kv(k, H // Hkv), repeat_kv(v, H // Hkv)
                s = (q @ k.transpose(-1, -2) / math.sqrt(D)).masked_fill(~causal, float("-inf"))
                y_teacher = torch.softmax(s, -1) @ v
            y_student = hybrid_quadratic(q, k, v, fmq[i](q), fmk[i](k), torch.sigmoid(factors[i]), win, lin)
            losses.append(F.mse_loss(y_student, y_teacher))
            with torch.no_grad():  # the teacher's output goes downstream
                o = F.linear(y_teacher.transpose(1, 2).reshape(B, T, H * D), g(pre + "self_attn.o_proj.weight"))
                x = x + o
                h = rms_norm(x, g(pre + "post_attention_layernorm.weight"), eps)
                up = F.silu(F.linear(h, g(pre + "mlp.gate_proj.weight"))) * F.linear(h, g(pre + "mlp.up_proj.weight"))
                x = x + F.linear(up, g(pre + "mlp.down_proj.weight"))
        loss = torch.stack(losses).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    V = cfg["vocab_size"]
    batches = [torch.randint(0, V, (B, T)) for _ in range(a.warmup + a.steps)]
    for t in batches[:a.warmup]:
        step(t)
    t0 = time.perf_counter()
    loss = 0.0
    for t in batches[a.warmup:]:
        loss = step(t)
    secs = (time.perf_counter() - t0) / a.steps
    print(json.dumps({"tokens_per_s": B * T / secs, "step_s": secs, "loss": loss, "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "batch": B, "seq": T}))


if __name__ == "__main__":
    main()
