#!/usr/bin/python3
"""Independent reference for the Llama runtime: reads a llama2.c model.bin directly (no
Hugging Face conversion, no q/k permutation) and runs llama2.c's model.py forward, with
RoPE on adjacent pairs through complex numbers. Prints the logits of every position as
JSON: {"logits": [[...], ...]} for the token ids given on the command line.

usage: llama2c_reference.py MODEL_BIN ID [ID ...]
"""
import json
import struct
import sys

import torch


def main():
    path, ids = sys.argv[1], [int(t) for t in sys.argv[2:]]
    raw = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    w = torch.frombuffer(bytearray(raw[28:]), dtype=torch.float32)
    head = dim // n_heads
    kv_dim = n_kv * head
    off = 0

    def take(*shape):
        nonlocal off
        n = 1
        for s in shape:
            n *= s
        t = w[off:off + n].view(*shape)
        off += n
        return t

    emb = take(vocab, dim)
    rms_att = take(n_layers, dim)
    wq = take(n_layers, dim, dim)
    wk = take(n_layers, kv_dim, dim)
    wv = take(n_layers, kv_dim, dim)
    wo = take(n_layers, dim, dim)
    rms_ffn = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim)
    w2 = take(n_layers, dim, hidden)
    w3 = take(n_layers, hidden, dim)
    rms_final = take(dim)
    take(seq_len, head // 2)
    take(seq_len, head // 2)
    wcls = emb if shared else take(vocab, dim)

    def rmsnorm(x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight

    T = len(ids)
    freqs = 1.0 / (10000.0 ** (torch.arange(0, head, 2)[: head // 2].float() / head))
    angles = torch.outer(torch.arange(T).float(), freqs)
    cis = torch.polar(torch.ones_like(angles), angles)  # (T, head/2)

    def rope(x):  # x (T, H, head): rotate adjacent pairs
        xc = torch.view_as_complex(x.reshape(T, x.shape[1], head // 2, 2))
        return torch.view_as_real(xc * cis[:, None, :]).reshape(x.shape)

    x = emb[torch.tensor(ids)]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(n_layers):
        h = rmsnorm(x, rms_att[l])
        q = rope((h @ wq[l].T).view(T, n_heads, head))
        k = rope((h @ wk[l].T).view(T, n_kv, head))
        v = (h @ wv[l].T).view(T, n_kv, head)
        rep = n_heads // n_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = torch.einsum("thd,shd->hts", q, k) / head ** 0.5 + mask
        y = torch.einsum("hts,shd->thd", att.softmax(-1), v).reshape(T, dim)
        x = x + y @ wo[l].T
        h = rmsnorm(x, rms_ffn[l])
        x = x + (torch.nn.functional.silu(h @ w1[l].T) * (h @ w3[l].T)) @ w2[l].T
    logits = rmsnorm(x, rms_final) @ wcls.T
    json.dump({"logits": logits.tolist()}, sys.stdout)


if __name__ == "__main__":
    main()
