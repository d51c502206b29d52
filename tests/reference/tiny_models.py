#!/usr/bin/python3
"""Tiny random Hugging Face checkpoints and an independent forward pass for them.

Written from the Hugging Face modeling semantics (LlamaForCausalLM, MistralForCausalLM,
Qwen2ForCausalLM, Qwen3ForCausalLM as in transformers 4.5x), with no project code. Needs
only Debian's python3-torch (+ numpy); safetensors is read and written by hand.

usage:
  tiny_models.py write   --family {llama3,llama32,qwen2,qwen3,mistral} --tokenizer-dir DIR
                         --out OUT [--seed N]
  tiny_models.py forward --model OUT --ids 1,2,3 [--greedy N] [--logits-out FILE]
                         [--window W --stride S] [--fp64] [--no-sliding-window]
  tiny_models.py check   --model OUT

write: OUT gets config.json, generation_config.json, tokenizer.json, tokenizer_config.json,
  model-0000{1,2}-of-00002.safetensors (bf16) and model.safetensors.index.json. It is written
  into OUT.tmp and renamed. Shard 1 holds the embedding, layer 0 and layer 1's self_attn
  tensors, shard 2 the rest, so one layer straddles the two shards.
forward: fp32 (or --fp64) forward of the ids; prints JSON
  {"n", "vocab", "greedy": [N argmax continuations, full recompute each step],
   "greedy_gaps": [top1 - top2 logit at each greedy step], "nll_mean", "ppl", "logits_sha"
   (sha256 of the T x V float32 little-endian logits), and with --window/--stride
   "ppl_window", "nll_window", "n_window_tokens"}.
  --logits-out FILE writes the T x V logits as raw little-endian float32, row-major.
  --window W --stride S: the Hugging Face perplexity guide's loop (windows [b, b+W) for
  b = 0, S, 2S, ... until one reaches the end; each window scores the tokens after the
  previous window's end, position 0 of a window never being scored since it has no
  predecessor in it). For S < W that is: every token from position 1 is scored once, in
  the first window holding it and its predecessor.
  --no-sliding-window ignores any sliding window (for testing that the window matters).
check: parses the shards and index, checks offsets, alignment, total_size and key set.
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import struct
import sys
import time

import numpy as np
import torch

# ----------------------------------------------------------------------------- families

LLAMA3_ROPE = {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
               "original_max_position_embeddings": 8192, "rope_type": "llama3"}


def family_config(family, vocab):
    if family == "llama3-8b":  # Llama 3 8B's layer shapes, for loading benchmarks (not CI)
        cfg, gen = family_config("llama3", vocab)
        cfg.update(hidden_size=4096, intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8,
                   rope_scaling=None, max_position_embeddings=8192)
        return cfg, gen
    if family in ("llama3", "llama32"):
        tied = family == "llama32"
        cfg = {
            "architectures": ["LlamaForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": 128000,
            "eos_token_id": 128001,
            "hidden_act": "silu",
            "hidden_size": 256,
            "initializer_range": 0.02,
            "intermediate_size": 512,
            "max_position_embeddings": 131072,
            "mlp_bias": False,
            "model_type": "llama",
            "num_attention_heads": 4,
            "num_hidden_layers": 3 if tied else 2,
            "num_key_value_heads": 2,
            "pretraining_tp": 1,
            "rms_norm_eps": 1e-05,
            "rope_scaling": dict(LLAMA3_ROPE, factor=32.0 if tied else 8.0),
            "rope_theta": 500000.0,
            "tie_word_embeddings": tied,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.45.0" if tied else "4.43.0",
            "use_cache": True,
            "vocab_size": max(vocab, 128256),
        }
        if tied:  # Llama 3.2's config.json carries head_dim; Llama 3.1's does not
            cfg["head_dim"] = 64
        gen = {"bos_token_id": 128000, "do_sample": True, "eos_token_id": [128001, 128008, 128009],
               "temperature": 0.6, "top_p": 0.9, "transformers_version": cfg["transformers_version"]}
        return cfg, gen
    if family == "qwen2":
        cfg = {
            "architectures": ["Qwen2ForCausalLM"],
            "attention_dropout": 0.0,
            "bos_token_id": 151643,
            "eos_token_id": 151645,
            "hidden_act": "silu",
            "hidden_size": 256,
            "initializer_range": 0.02,
            "intermediate_size": 512,
            "max_position_embeddings": 32768,
            "max_window_layers": 21,
            "model_type": "qwen2",
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-06,
            "rope_scaling": None,
            "rope_theta": 1000000.0,
            "sliding_window": 32768,
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.43.1",
            "use_cache": True,
            "use_sliding_window": False,
            "vocab_size": max(vocab, 151936),
        }
        gen = {"bos_token_id": 151643, "pad_token_id": 151643, "do_sample": True,
               "eos_token_id": [151645, 151643], "repetition_penalty": 1.05, "temperature": 0.7,
               "top_p": 0.8, "top_k": 20, "transformers_version": "4.37.0"}
        return cfg, gen
    if family == "qwen3":
        cfg = {
            "architectures": ["Qwen3ForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": 151643,
            "eos_token_id": 151645,
            "head_dim": 64,
            "hidden_act": "silu",
            "hidden_size": 128,
            "initializer_range": 0.02,
            "intermediate_size": 384,
            "max_position_embeddings": 40960,
            "max_window_layers": 28,
            "model_type": "qwen3",
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-06,
            "rope_scaling": None,
            "rope_theta": 1000000,
            "sliding_window": None,
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.51.0",
            "use_cache": True,
            "use_sliding_window": False,
            "vocab_size": max(vocab, 151936),
        }
        gen = {"bos_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643],
               "pad_token_id": 151643, "temperature": 0.6, "top_k": 20, "top_p": 0.95,
               "transformers_version": "4.51.0"}
        return cfg, gen
    if family == "mistral":
        cfg = {
            "architectures": ["MistralForCausalLM"],
            "bos_token_id": 1,
            "eos_token_id": 2,
            "hidden_act": "silu",
            "hidden_size": 256,
            "initializer_range": 0.02,
            "intermediate_size": 512,
            "max_position_embeddings": 32768,
            "model_type": "mistral",
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-05,
            "rope_theta": 10000.0,
            "sliding_window": 12,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.34.0.dev0",
            "use_cache": True,
            "vocab_size": max(vocab, 32000),
        }
        gen = {"bos_token_id": 1, "eos_token_id": 2, "transformers_version": "4.34.0.dev0"}
        return cfg, gen
    raise SystemExit("unknown family %r" % family)


def head_dim_of(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def expected_shapes(cfg):
    """HF parameter names and shapes, in module (state_dict) order."""
    h, inter, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, KV, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], head_dim_of(cfg)
    qkv_bias = cfg["model_type"] == "qwen2" or bool(cfg.get("attention_bias", False))
    o_bias = bool(cfg.get("attention_bias", False))
    out = [("model.embed_tokens.weight", (V, h))]
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        for n, o, ii in (("q", H * D, h), ("k", KV * D, h), ("v", KV * D, h)):
            out.append((p + "self_attn.%s_proj.weight" % n, (o, ii)))
            if qkv_bias:
                out.append((p + "self_attn.%s_proj.bias" % n, (o,)))
        out.append((p + "self_attn.o_proj.weight", (h, H * D)))
        if o_bias:
            out.append((p + "self_attn.o_proj.bias", (h,)))
        if cfg["model_type"] == "qwen3":
            out.append((p + "self_attn.q_norm.weight", (D,)))
            out.append((p + "self_attn.k_norm.weight", (D,)))
        out.append((p + "mlp.gate_proj.weight", (inter, h)))
        out.append((p + "mlp.up_proj.weight", (inter, h)))
        out.append((p + "mlp.down_proj.weight", (h, inter)))
        out.append((p + "input_layernorm.weight", (h,)))
        out.append((p + "post_attention_layernorm.weight", (h,)))
    out.append(("model.norm.weight", (h,)))
    if not cfg.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", (V, h)))
    return out


# ----------------------------------------------------------------------------- safetensors

DT_SIZE = {"BF16": 2, "F16": 2, "F32": 4}


def write_safetensors(path, tensors):
    """tensors: dict name -> bf16 torch tensor. Data laid out in sorted-name order."""
    names = sorted(tensors)
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for n in names:
        t = tensors[n].contiguous()
        assert t.dtype == torch.bfloat16
        b = t.view(torch.int16).numpy().astype("<i2").tobytes()
        header[n] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    return off


def read_safetensors_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return n, header


def read_safetensors(path, dtype=torch.float32):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    base, out = 8 + n, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        dt = info["dtype"]
        if dt == "BF16":
            a = np.frombuffer(raw, dtype="<i2", count=(e - b) // 2, offset=base + b).copy()
            t = torch.from_numpy(a).view(torch.bfloat16)
        elif dt == "F16":
            t = torch.from_numpy(np.frombuffer(raw, dtype="<f2", count=(e - b) // 2, offset=base + b).copy())
        elif dt == "F32":
            t = torch.from_numpy(np.frombuffer(raw, dtype="<f4", count=(e - b) // 4, offset=base + b).copy())
        else:
            raise SystemExit("unsupported dtype %s in %s" % (dt, path))
        out[name] = t.reshape(info["shape"]).to(dtype)
    return out


def load_model(model_dir, dtype):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    idx_path = os.path.join(model_dir, "model.safetensors.index.json")
    w = {}
    if os.path.exists(idx_path):
        idx = json.load(open(idx_path))
        for shard in sorted(set(idx["weight_map"].values())):
            w.update(read_safetensors(os.path.join(model_dir, shard), dtype))
    else:
        w = read_safetensors(os.path.join(model_dir, "model.safetensors"), dtype)
    return cfg, w


# ----------------------------------------------------------------------------- write

def tokenizer_vocab_size(tok_dir):
    t = json.load(open(os.path.join(tok_dir, "tokenizer.json")))
    v = t["model"]["vocab"]
    ids = list(v.values()) if isinstance(v, dict) else list(range(len(v)))
    ids += [a["id"] for a in t.get("added_tokens", [])]
    return max(ids) + 1


def random_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    w = {}
    for name, shape in expected_shapes(cfg):
        if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif name.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=g)
        elif name in ("model.embed_tokens.weight", "lm_head.weight"):
            # std 0.35 rows (logit std ~5-7, nll ~20-40 so ppl stays far inside float range)
            # with a log-normal per-row scale: the top of the logits gets heavier than a plain
            # Gaussian's, so greedy argmaxes have wider margins. Kept mild on the (possibly
            # tied) embedding, or a few large-norm tokens win for every context.
            spread = 0.1 if name == "model.embed_tokens.weight" else 0.3
            t = torch.randn(shape, generator=g) * 0.35
            t = t * torch.exp(spread * torch.randn((shape[0], 1), generator=g))
        else:
            t = torch.randn(shape, generator=g) * (1.5 / math.sqrt(shape[1]))
        w[name] = t.to(torch.bfloat16)
    return w


def cmd_write(a):
    vocab = tokenizer_vocab_size(a.tokenizer_dir)
    cfg, gen = family_config(a.family, vocab)
    if a.layers:
        cfg["num_hidden_layers"] = a.layers
    w = random_weights(cfg, a.seed)
    out = a.out.rstrip("/")
    tmp = out + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    with open(os.path.join(tmp, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")
    for fn in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(a.tokenizer_dir, fn), os.path.join(tmp, fn))
    # shard 1: embedding, layer 0, layer 1's self_attn; shard 2: the rest
    names = [n for n, _ in expected_shapes(cfg)]
    first = [n for n in names if n == "model.embed_tokens.weight" or n.startswith("model.layers.0.")
             or n.startswith("model.layers.1.self_attn.")]
    shards = [("model-00001-of-00002.safetensors", first),
              ("model-00002-of-00002.safetensors", [n for n in names if n not in set(first)])]
    total, wmap = 0, {}
    for fn, ns in shards:
        total += write_safetensors(os.path.join(tmp, fn), {n: w[n] for n in ns})
        for n in ns:
            wmap[n] = fn
    with open(os.path.join(tmp, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(wmap.items()))}, f, indent=2)
        f.write("\n")
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)
    print(json.dumps({"out": out, "family": a.family, "vocab_size": cfg["vocab_size"], "total_size": total}))


# ----------------------------------------------------------------------------- check

def cmd_check(a):
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    idx = json.load(open(os.path.join(a.model, "model.safetensors.index.json")))
    want = dict(expected_shapes(cfg))
    seen, total = {}, 0
    for shard in sorted(set(idx["weight_map"].values())):
        p = os.path.join(a.model, shard)
        n, header = read_safetensors_header(p)
        assert n % 8 == 0, "header length %d not a multiple of 8" % n
        data_len = os.path.getsize(p) - 8 - n
        spans = []
        for name, info in header.items():
            if name == "__metadata__":
                continue
            b, e = info["data_offsets"]
            cnt = 1
            for s in info["shape"]:
                cnt *= s
            assert e - b == cnt * DT_SIZE[info["dtype"]], name
            assert idx["weight_map"].get(name) == shard, "%s not mapped to %s" % (name, shard)
            assert name not in seen, "duplicate " + name
            seen[name] = tuple(info["shape"])
            spans.append((b, e))
            total += e - b
        spans.sort()
        pos = 0
        for b, e in spans:
            assert b == pos, "gap/overlap in %s at %d" % (shard, b)
            pos = e
        assert pos == data_len, "%s: data %d bytes, file has %d" % (shard, pos, data_len)
    assert total == idx["metadata"]["total_size"], "total_size %d != %d" % (idx["metadata"]["total_size"], total)
    assert set(seen) == set(idx["weight_map"]), "index lists tensors the shards lack"
    assert seen == want, "key/shape set differs from the family's: %s" % (
        sorted(set(seen.items()) ^ set(want.items()))[:6])
    w = read_safetensors(os.path.join(a.model, "model-00001-of-00002.safetensors"))
    assert all(torch.isfinite(t).all() for t in w.values())
    print(json.dumps({"ok": True, "tensors": len(seen), "total_size": total,
                      "shards": sorted(set(idx["weight_map"].values()))}))


# ----------------------------------------------------------------------------- forward

def rope_inv_freq(cfg, D, dtype):
    theta = float(cfg.get("rope_theta", 10000.0))
    prf = cfg.get("partial_rotary_factor", 1.0)
    dim = int(D * prf)
    # transformers' _compute_default_rope_parameters (computed in fp32 there)
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype) / dim))
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "default":
        return inv
    if kind != "llama3":
        raise SystemExit("rope_type %r not supported here" % kind)
    # transformers' _compute_llama3_parameters
    factor = rs["factor"]
    low, high = rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wl, high_wl = old / low, old / high
    wavelen = 2 * math.pi / inv
    inv_l = torch.where(wavelen > low_wl, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
    is_medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
    return torch.where(is_medium, smoothed, inv_l)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def layer_window(cfg, i, no_window):
    if no_window:
        return None
    mt = cfg["model_type"]
    if mt == "mistral":
        return cfg.get("sliding_window")
    if mt in ("qwen2", "qwen3"):
        if cfg.get("use_sliding_window") and cfg.get("sliding_window") is not None \
                and i >= cfg.get("max_window_layers", 0):
            return cfg["sliding_window"]
        return None
    return None


class Model:
    def __init__(self, model_dir, dtype, no_window=False):
        self.cfg, self.w = load_model(model_dir, dtype)
        self.dtype = dtype
        self.no_window = no_window
        c = self.cfg
        self.H, self.KV = c["num_attention_heads"], c["num_key_value_heads"]
        self.D = head_dim_of(c)
        self.eps = c["rms_norm_eps"]
        self.inv_freq = rope_inv_freq(c, self.D, dtype)
        self.lm_head = self.w["model.embed_tokens.weight"] if c.get("tie_word_embeddings", False) \
            else self.w["lm_head.weight"]

    def __call__(self, ids):
        c, w, T = self.cfg, self.w, len(ids)
        H, KV, D = self.H, self.KV, self.D
        x = w["model.embed_tokens.weight"][torch.tensor(ids, dtype=torch.long)]
        pos = torch.arange(T, dtype=self.dtype)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()  # (T, D); attention_scaling is 1 for default/llama3
        ii = torch.arange(T)[:, None]
        jj = torch.arange(T)[None, :]
        for L in range(c["num_hidden_layers"]):
            p = "model.layers.%d." % L
            g = lambda n: w.get(p + n)
            r = x
            h = rms_norm(x, g("input_layernorm.weight"), self.eps)

            def lin(name, v):
                y = v @ g(name + ".weight").t()
                b = g(name + ".bias")
                return y + b if b is not None else y

            q = lin("self_attn.q_proj", h).view(T, H, D)
            k = lin("self_attn.k_proj", h).view(T, KV, D)
            v = lin("self_attn.v_proj", h).view(T, KV, D)
            if c["model_type"] == "qwen3":  # per-head RMSNorm over head_dim, before RoPE
                q = rms_norm(q, g("self_attn.q_norm.weight"), self.eps)
                k = rms_norm(k, g("self_attn.k_norm.weight"), self.eps)
            q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # (heads, T, D)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            rep = H // KV  # repeat_kv: kv head j serves query heads j*rep .. j*rep+rep-1
            k = k.repeat_interleave(rep, dim=0)
            v = v.repeat_interleave(rep, dim=0)
            s = (q @ k.transpose(1, 2)) * (D ** -0.5)
            allow = jj <= ii
            win = layer_window(c, L, self.no_window)
            if win is not None:
                allow = allow & (ii - jj < win)
            s = s.masked_fill(~allow, float("-inf"))
            a = torch.softmax(s, dim=-1) @ v  # (H, T, D)
            a = a.transpose(0, 1).reshape(T, H * D)
            x = r + lin("self_attn.o_proj", a)
            r = x
            h = rms_norm(x, g("post_attention_layernorm.weight"), self.eps)
            m = lin("mlp.down_proj", torch.nn.functional.silu(lin("mlp.gate_proj", h)) * lin("mlp.up_proj", h))
            x = r + m
        x = rms_norm(x, w["model.norm.weight"], self.eps)
        return x @ self.lm_head.t()  # (T, V)


def token_nll(logits, ids):
    """NLL of ids[t] from logits[t-1], t = 1..T-1."""
    lp = torch.log_softmax(logits[:-1].double(), dim=-1)
    tgt = torch.tensor(ids[1:], dtype=torch.long)
    return -lp[torch.arange(len(ids) - 1), tgt]


def cmd_forward(a):
    dtype = torch.float64 if a.fp64 else torch.float32
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    t0 = time.time()
    m = Model(a.model, dtype, a.no_sliding_window)
    t_load = time.time() - t0
    ids = [int(s) for s in a.ids.split(",") if s.strip()]
    V = m.lm_head.shape[0]
    assert all(0 <= i < V for i in ids), "id out of range"
    t1 = time.time()
    logits = m(ids)
    res = {"n": len(ids), "vocab": V}
    l32 = logits.to(torch.float32).contiguous()
    raw = l32.numpy().astype("<f4").tobytes()
    res["logits_sha"] = hashlib.sha256(raw).hexdigest()
    res["finite"] = bool(torch.isfinite(logits).all())
    res["logits_std"] = float(logits.std())
    if a.logits_out:
        with open(a.logits_out, "wb") as f:
            f.write(raw)
    if len(ids) >= 2:
        nll = token_nll(logits, ids)
        res["nll_mean"] = float(nll.mean())
        res["ppl"] = math.exp(res["nll_mean"])
    if a.window:
        W, S = a.window, a.stride or a.window
        assert W >= 2 and S >= 1
        total, count, prev_end, T = 0.0, 0, 0, len(ids)
        for begin in range(0, T, S):
            end = min(begin + W, T)
            lo = max(prev_end, begin + 1)  # positions scored in this window
            if lo < end:
                wl = m(ids[begin:end])
                nll = token_nll(wl, ids[begin:end])  # nll[k] scores position begin+k+1
                sel = nll[lo - begin - 1:end - begin - 1]
                total += float(sel.sum())
                count += sel.numel()
            prev_end = end
            if end == T:
                break
        res["n_window_tokens"] = count
        res["nll_window"] = total / count if count else float("nan")
        res["ppl_window"] = math.exp(res["nll_window"]) if count else float("nan")
    greedy, gaps, rel, seq = [], [], [], list(ids)
    lg = logits
    for step in range(a.greedy):
        if step:
            lg = m(seq)
        top = torch.topk(lg[-1], 2)
        nxt = int(top.indices[0])
        gap = float(top.values[0] - top.values[1])
        gaps.append(gap)
        rel.append(gap / max(abs(float(top.values[0])), 1e-30))
        greedy.append(nxt)
        seq.append(nxt)
    res["greedy"] = greedy
    if a.greedy:
        res["greedy_gaps"] = [round(g, 5) for g in gaps]
        res["greedy_rel_gap_min"] = min(rel)
    res["time_load_s"] = round(t_load, 3)
    res["time_forward_s"] = round(time.time() - t1, 3)
    print(json.dumps(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--family", required=True, choices=["llama3", "llama32", "qwen2", "qwen3", "mistral", "llama3-8b"])
    w.add_argument("--layers", type=int, help="override num_hidden_layers (llama3-8b: 2 by default)")
    w.add_argument("--tokenizer-dir", required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--seed", type=int, default=0)
    f = sub.add_parser("forward")
    f.add_argument("--model", required=True)
    f.add_argument("--ids", required=True)
    f.add_argument("--greedy", type=int, default=0)
    f.add_argument("--logits-out")
    f.add_argument("--window", type=int)
    f.add_argument("--stride", type=int)
    f.add_argument("--fp64", action="store_true")
    f.add_argument("--no-sliding-window", action="store_true")
    c = sub.add_parser("check")
    c.add_argument("--model", required=True)
    a = ap.parse_args()
    {"write": cmd_write, "forward": cmd_forward, "check": cmd_check}[a.cmd](a)


if __name__ == "__main__":
    main()
