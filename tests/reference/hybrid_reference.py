#!/usr/bin/python3
"""Independent reference for hybrid attention, written from DESIGN.md 1.1 alone: a loop
over query positions in float64. Reads q, k, v, f_q, f_k (B,H,T,*), gamma, lambda (H) from
a safetensors file, prints {"y": [...]} (flattened B,H,T,d) as JSON. With a log_gate tensor
(B,H,T,1 or F), each linear weight carries the product of exp(log_gate) over the tokens after the
key up to the query (a gated linear state, S_t = diag(a_t) S_{t-1} + phi(k_t) v_t^T).

usage: hybrid_reference.py INPUT.safetensors tk|sw WINDOW start|end
"""
import json
import struct
import sys

import torch


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        b, e = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + b:8 + n + e]), dtype=torch.float32).view(info["shape"]).double()
    return out


def in_window(kind, w, align, n, i, j):
    if j > i:
        return False
    if kind == "sw":
        return i - j < w
    shift = (w - n % w) % w if align == "end" else 0
    return (j + shift) // w >= (i + shift) // w - 1


def main():
    t = read_safetensors(sys.argv[1])
    kind, w, align = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    q, k, v, fq, fk, gamma, lam = (t[x] for x in ("q", "k", "v", "f_q", "f_k", "gamma", "lambda"))
    B, H, T, d = q.shape
    rate = t["log_gate"].exp().expand(B, H, T, fq.shape[-1]) if "log_gate" in t else None
    y = torch.zeros(B, H, T, d, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            for i in range(T):
                win = [j for j in range(i + 1) if in_window(kind, w, align, T, i, j)]
                lin = [j for j in range(i + 1) if j not in win]
                s = torch.stack([q[b, h, i] @ k[b, h, j] / d ** 0.5 for j in win])
                m = s.max()
                weights = {j: gamma[h] * torch.exp(sj - m) for j, sj in zip(win, s)}
                for j in lin:
                    decay = 1.0
                    if rate is not None:
                        decay = torch.prod(rate[b, h, j + 1:i + 1], dim=0)
                    weights[j] = lam[h] * ((fq[b, h, i] * decay) @ fk[b, h, j])
                num = sum(wt * v[b, h, j] for j, wt in weights.items())
                den = sum(weights.values())
                y[b, h, i] = num / den
    json.dump({"y": y.flatten().tolist()}, sys.stdout)


if __name__ == "__main__":
    main()
