#!/usr/bin/python3
"""LoLCATs-format checkpoints and an independent forward pass of a linearized Llama.

Written from the HazyResearch/lolcats sources (src/model/linear_attention/
linear_window_attention_{tk,sw}.py, src/model/feature_map.py, src/trainer/default_lm.py,
their configs) and PEFT's LoRA conventions, with no project code. Needs Debian's
python3-torch (+ numpy, PyYAML); the base model is read through tiny_models.py.

usage:
  lolcats_reference.py write   --model DIR --out OUT [--variant tk|sw] [--window 16]
                               [--feature-dim 16] [--affine] [--softmax-layers 1,..]
                               [--lora-rank 4] [--lora-alpha 8] [--seed 0] [--dtype fp32|bf16]
  lolcats_reference.py hostile --from OUT --out BAD
  lolcats_reference.py forward --model DIR --lolcats OUT [--config OUT/model.yaml]
                               [--no-finetune] [--finetune-config OUT/finetune.yaml]
                               --ids 1,2,3 [--logits-out FILE] [--greedy N] [--fp64]
  lolcats_reference.py compare --a A.pt --b B.pt [--prefix-insensitive]
  lolcats_reference.py check-peft --dir EXPORT --finetune OUT/finetune.pt [--lora-alpha A]

write: OUT gets distill.pt (feature maps + window factors of every linearized layer, as
  LoLCATs' save_trainable_weights writes after attention distillation), finetune.pt (LoRA
  A/B of q/k/v/o in every layer, PEFT-wrapped names), model.yaml, finetune.yaml and
  tensors.safetensors (every tensor of both .pt files, F32, same names).
  Prints {"out", "linearized_layers", "distill_keys", "finetune_keys"}.
hostile: BAD gets evil_global.pt, truncated.pt, not_a_dict.pt, no_state_dict.pt,
  wrong_shape.pt, unknown_key.pt (all to be refused) and parameter.pt, protocol4.pt (valid).
  Prints {"files": [...], "valid": [...], "refused": [...]}.
forward: the linearized model's logits over the ids (batch 1), in fp32 (or --fp64). LoRA is
  merged as W + (lora_alpha / r) * B @ A. Prints {"n", "vocab", "logits_sha", "nll_mean",
  "ppl", "greedy", "finite", "variant", "window", "linearized_layers", "finetune",
  "lora_scale", "tk_blocks", "tk_single_block"}; --logits-out writes the T x V logits as raw
  little-endian float32, row-major.
compare: key sets, shapes and bit-exact fp32 values of two checkpoints' model_state_dict.
  Exit 0 only if identical.
check-peft: an exported PEFT LoRA adapter folder against finetune.pt. Exit 0 only if ok.
A refused input (unreadable or hostile .pt, unexpected key, bad shape) prints {"error": why}
and exits 2, for every subcommand.

.pt files are never given to torch.load: they are opened as zips and data.pkl goes through a
restricted unpickler (tensors, Parameters, storages, OrderedDict, nothing else; see
safe_load). torch 1.13's torch.load ignores pickle_module unless weights_only, and its
weights_only rejects the plain float LoLCATs stores as 'eval/loss'; a plain torch.load would
run whatever a hostile file asks for. write checks the reader against what it saved.

LoLCATs facts this encodes:
- tk masks come from a block-diagonal of ceil(T/w) w x w blocks plus its roll by -w, cut to
  the LAST T rows and columns: blocks are aligned to the sequence end. With a single block
  (T <= w) the roll adds the matrix to itself, the mask is 2, 1 - mask is -1, and -1 is
  True as a mask: the linear term then covers the whole causal past as well as the softmax
  term. That quirk is reproduced here, as LoLCATs computes it.
- with two blocks (w < T <= 2w) the tk softmax window is the whole causal past and the
  linear term is empty: the output is exact softmax attention (window factor cancels).
"""
import argparse
import collections
import hashlib
import io
import json
import math
import os
import pickle
import re
import shlex
import struct
import sys
import zipfile

import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_models as tm  # noqa: E402

PROJS = ("q_proj", "k_proj", "v_proj", "o_proj")
INIT_WINDOW_FACTOR = -2.1972245773362196  # logit of 0.1: LoLCATs' "w01" configs

# ----------------------------------------------------------------------------- safe .pt I/O

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "UntypedStorage": torch.uint8,
}
_DTYPES = {"bfloat16", "float16", "float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"}


def _rebuild_tensor(storage, offset, size, stride, *_):
    # _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
    return storage.as_strided(tuple(size), tuple(stride), offset).clone()


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, *_):
    # torch 2's form for dtypes without a typed storage: the storage is untyped bytes
    return _rebuild_tensor(storage.view(dtype), offset, size, stride)


def _rebuild_parameter(data, requires_grad, *_):
    return torch.nn.Parameter(data, requires_grad)


class _SafeUnpickler(pickle.Unpickler):
    """Resolves only the globals a torch.save'd dict of tensors names, to our own rebuilders."""

    def __init__(self, f, storage):
        super().__init__(f, encoding="utf-8")
        self._storage = storage

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_tensor_v3":
            return _rebuild_tensor_v3
        if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return _rebuild_parameter
        if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
            return ("storage-type", _STORAGE_DTYPES[name])
        if module == "torch" and name in _DTYPES:
            return getattr(torch, name)
        raise pickle.UnpicklingError("refused global %s.%s" % (module, name))

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], tuple) and pid[1][0] == "storage-type"):
            raise pickle.UnpicklingError("unexpected persistent id %r" % (pid,))
        return self._storage(pid[1][1], str(pid[2]), int(pid[4]))


def safe_load(path):
    """torch.save's zip format, read without torch.load.

    torch.load cannot be made safe here: torch 1.13 replaces any pickle_module by pickle when
    weights_only is False, and its weights_only unpickler rejects the plain float LoLCATs
    stores as the checkpoint's metric. So: the zip by hand, data.pkl through an unpickler that
    knows only tensors, Parameters, storages and OrderedDict.
    """
    with zipfile.ZipFile(path) as z:
        pkls = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkls) != 1:
            raise pickle.UnpicklingError("%d data.pkl records" % len(pkls))
        prefix = pkls[0][:-len("data.pkl")]
        if prefix + "byteorder" in z.namelist() and z.read(prefix + "byteorder") != b"little":
            raise pickle.UnpicklingError("big-endian checkpoint")
        cache = {}

        def storage(dtype, key, numel):
            if key not in cache:
                raw = z.read(prefix + "data/" + key)
                esize = torch.empty((), dtype=dtype).element_size()
                if len(raw) < numel * esize:
                    raise pickle.UnpicklingError("storage %s: %d bytes for %d elements" % (key, len(raw), numel))
                cache[key] = torch.frombuffer(bytearray(raw[:numel * esize]), dtype=dtype) if numel \
                    else torch.empty((0,), dtype=dtype)
            return cache[key]

        return _SafeUnpickler(io.BytesIO(z.read(pkls[0])), storage).load()


def load_state_dict(path):
    """model_state_dict of a LoLCATs checkpoint; SystemExit with a reason otherwise."""
    try:
        obj = safe_load(path)
    except Exception as e:  # truncated zip, refused global, ...
        raise SystemExit("%s: cannot load: %s: %s" % (path, type(e).__name__, e))
    if not isinstance(obj, dict) or "model_state_dict" not in obj:
        raise SystemExit("%s: not a dict with 'model_state_dict'" % path)
    sd = obj["model_state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise SystemExit("%s: model_state_dict is not a dict of tensors" % path)
    return sd


def save_checkpoint(path, sd, **kw):
    # the dict LoLCATs' trainer saves: state dict, step, metric_for_best_model's value
    torch.save({"model_state_dict": sd, "step": 100, "eval/loss": 0.5}, path, **kw)


def write_safetensors_f32(path, tensors):
    """tensors: dict name -> tensor, written as F32 in sorted-name order."""
    names = sorted(tensors)
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for n in names:
        b = tensors[n].detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[n] = {"dtype": "F32", "shape": list(tensors[n].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


# ----------------------------------------------------------------------------- key names

_LAYER_KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.self_attn\.(.+)$")


def split_key(name):
    """(layer, rest) with PEFT's adapter name dropped, or None for a non-attention key.

    LoLCATs' names depend on how the model was wrapped when saved: model.layers... (plain
    LlamaForCausalLM), base_model.model.model.layers... (PeftModel), model.model.layers...;
    PEFT inserts '.default' (the adapter name) in module state dicts but not in saved adapters.
    """
    m = _LAYER_KEY.search(name)
    if not m:
        return None
    rest = m.group(2).replace(".default.", ".")
    return int(m.group(1)), rest


def canonical(name):
    s = split_key(name)
    return name if s is None else "layers.%d.self_attn.%s" % s


# ----------------------------------------------------------------------------- write

def model_dims(cfg):
    return cfg["num_attention_heads"], cfg["num_key_value_heads"], tm.head_dim_of(cfg)


def parse_layers(s):
    return sorted({int(x) for x in s.split(",") if x.strip()}) if s else []


MODEL_YAML = """\
name: llama
model:
  pretrained_model_name_or_path: {model}
  cache_dir: /scratch/
  return_dict: true
  load_in_8bit: false
  load_in_4bit: false
  device_map: auto
  low_cpu_mem_usage: true
  torch_dtype: bfloat16
  attn_implementation: eager
  rope_theta: {rope_theta}
{rope_scaling}
attention:
  attention_type: lolcats_llama_window_{variant}
  state_chunk_len: 1024
  window_size: {window}
  affine_attention_factors: {affine}
  init_window_factor: {iwf}
  feature_map: softmax_dim
  feature_map_kwargs:
    eps: 1e-12
    # mlp: null  # to set
    fullspace: true
  layer_idx: null # to set
  learned_kernel: untied_head_einsum
  learned_kernel_kwargs:
    feature_dim: {fdim}
    skip_connection: false
    bias: false
    zero_init: false
  tie_qk_kernels: false
  train_qk: false
  softmax_attentions: [{softmax}]
"""

# configs/experiment/finetune_lora_qkvo_alpaca_clean.yaml's layout, r and alpha filled in
FINETUNE_YAML = """\
dataset:
  name: alpaca_clean
  dataset_config:
    name: default
    path: yahma/alpaca-cleaned
    chunk_size: 1024
    concat_data: true
    cache_dir: "data/alpaca"
  pretrained_model_config:
    pretrained_model_name_or_path: "{model}"
    cache_dir: "/scratch/"
  preprocess_config: null

dataloader:
  batch_size: 1
  num_workers: 2
  drop_last: false
  pin_memory: true

optimizer:
  optim: adamw_torch_fused
  lr: 1e-4
  weight_decay: 0.0

lr_scheduler:
  lr_scheduler_type: reduce_lr_on_plateau
  mode: min
  factor: 0.1
  patience: 10
  min_lr: 0.00001

trainer: # HuggingFace Trainer-like arguments
  name: default_lm
  bf16: true
  train_split: train
  val_split: validation
  num_train_epochs: 2
  gradient_accumulation_steps: 8
  seed: 42
  batch_size: 1
  load_best_model_at_end: true
  greater_is_better: false
  metric_for_best_model: eval/loss # eval/rouge/geometric_mean
  logging_steps: 100
  evaluation_strategy: steps
  max_steps: -1
  eval_steps: 100
  max_eval_batches: null

finetune:
  method: lora
  kwargs:
    r: {r}
    lora_alpha: {alpha}
    lora_dropout: 0 # 0.05
    target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"]
"""


def rope_scaling_yaml(cfg):
    rs = cfg.get("rope_scaling")
    if not rs:
        return "  rope_scaling: null"
    lines = ["  rope_scaling:"] + ["    %s: %s" % (k, json.dumps(v)) for k, v in rs.items()]
    return "\n".join(lines)


def cmd_write(a):
    cfg, w = tm.load_model(a.model, torch.float32)
    H, KV, D = model_dims(cfg)
    nl = cfg["num_hidden_layers"]
    soft = parse_layers(a.softmax_layers)
    assert all(0 <= i < nl for i in soft), "softmax layer out of range"
    lin = [i for i in range(nl) if i not in soft]
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
    g = torch.Generator().manual_seed(a.seed)
    F = a.feature_dim

    distill = collections.OrderedDict()
    # Wider than LoLCATs' kaiming_uniform_ init (bound sqrt(6 / (D * F))) so the feature maps
    # are far from uniform and a swapped head or q/k map shows in the logits.
    bound = math.sqrt(6.0 / D)
    for i in lin:
        p = "model.layers.%d.self_attn." % i
        for n in ("feature_map_q", "feature_map_k"):
            # (num_heads, head_dim, feature_dim): the key map too has one slice per query head,
            # as LoLCATs applies it after repeat_kv
            t = (torch.rand((H, D, F), generator=g) * 2 - 1) * bound
            distill[p + n + ".mlp.layer"] = t.to(dt).contiguous()
        wf = INIT_WINDOW_FACTOR + (torch.rand((1, H, 1, 1), generator=g) * 2 - 1)
        distill[p + "window_factors"] = wf.to(dt).contiguous()

    finetune = collections.OrderedDict()
    r = a.lora_rank
    for i in range(nl):  # PEFT puts adapters on every matching module, softmax layers too
        p = "base_model.model.model.layers.%d.self_attn." % i
        for proj in PROJS:
            out_f, in_f = w["model.layers.%d.self_attn.%s.weight" % (i, proj)].shape
            A = torch.randn((r, in_f), generator=g) * 0.05
            B = torch.randn((out_f, r), generator=g) * 0.02  # non-zero, unlike PEFT's init
            finetune[p + proj + ".lora_A.default.weight"] = A.to(dt).contiguous()
            finetune[p + proj + ".lora_B.default.weight"] = B.to(dt).contiguous()

    out = a.out
    os.makedirs(out, exist_ok=True)
    for fn, sd in (("distill.pt", distill), ("finetune.pt", finetune)):
        save_checkpoint(os.path.join(out, fn), sd)
        back = load_state_dict(os.path.join(out, fn))  # the reader, checked on what we saved
        assert list(back) == list(sd) and all(
            back[k].dtype == v.dtype and torch.equal(back[k], v) for k, v in sd.items()), fn
    with open(os.path.join(out, "model.yaml"), "w") as f:
        f.write(MODEL_YAML.format(
            model=json.dumps(os.path.abspath(a.model)), rope_theta=float(cfg.get("rope_theta", 10000.0)),
            rope_scaling=rope_scaling_yaml(cfg), variant=a.variant, window=a.window,
            affine="true" if a.affine else "false", iwf=repr(INIT_WINDOW_FACTOR), fdim=F,
            softmax=", ".join(str(i) for i in soft)))
    with open(os.path.join(out, "finetune.yaml"), "w") as f:
        f.write(FINETUNE_YAML.format(model=os.path.abspath(a.model), r=r, alpha=a.lora_alpha))
    write_safetensors_f32(os.path.join(out, "tensors.safetensors"), dict(distill, **finetune))
    print(json.dumps({"out": out, "linearized_layers": lin, "distill_keys": len(distill),
                      "finetune_keys": len(finetune)}))


# ----------------------------------------------------------------------------- hostile

class _RunsCommand:
    """Unpickling this calls os.system(cmd): what a malicious checkpoint looks like."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def cmd_hostile(a):
    src, bad = a.src, os.path.abspath(a.out)
    os.makedirs(bad, exist_ok=True)
    path = lambda n: os.path.join(bad, n)
    sd = load_state_dict(os.path.join(src, "distill.pt"))  # ours: restricted load anyway

    # Pickling only records the global posix.system and its argument; nothing runs here.
    torch.save({"model_state_dict": _RunsCommand("touch " + shlex.quote(path("pwned"))), "step": 1},
               path("evil_global.pt"))
    raw = open(os.path.join(src, "distill.pt"), "rb").read()
    with open(path("truncated.pt"), "wb") as f:
        f.write(raw[:len(raw) // 2])
    first = next(iter(sd.values()))
    torch.save([first.clone(), first.clone()], path("not_a_dict.pt"))
    torch.save({"step": 3}, path("no_state_dict.pt"))

    ws = collections.OrderedDict(sd)
    qkey = next(k for k in ws if k.endswith("feature_map_q.mlp.layer"))  # layer 0's unless softmax
    H, D, F = ws[qkey].shape
    ws[qkey] = torch.zeros((H, D, F + 1), dtype=ws[qkey].dtype)
    save_checkpoint(path("wrong_shape.pt"), ws)

    uk = collections.OrderedDict(sd)
    uk["model.layers.0.mlp.up_proj.weight"] = torch.zeros((2, 2), dtype=first.dtype)
    save_checkpoint(path("unknown_key.pt"), uk)

    # LoLCATs on CPU: save_trainable_weights stores p.cpu(), which is the Parameter itself
    prm = collections.OrderedDict((k, torch.nn.Parameter(v.clone())) for k, v in sd.items())
    save_checkpoint(path("parameter.pt"), prm)
    save_checkpoint(path("protocol4.pt"), collections.OrderedDict(sd), pickle_protocol=4)

    refused = ["evil_global.pt", "truncated.pt", "not_a_dict.pt", "no_state_dict.pt",
               "wrong_shape.pt", "unknown_key.pt"]
    valid = ["parameter.pt", "protocol4.pt"]
    assert not os.path.exists(path("pwned"))
    print(json.dumps({"files": refused + valid, "refused": refused, "valid": valid,
                      "wrong_shape_key": qkey}))


# ----------------------------------------------------------------------------- forward

def read_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def load_attention_config(path):
    c = read_yaml(path)["attention"]
    kind = c["attention_type"]
    variants = {"lolcats_llama_window_tk": "tk", "lolcats_llama_window_sw": "sw"}
    if kind not in variants:
        raise SystemExit("attention_type %r not supported" % kind)
    if c.get("feature_map") != "softmax_dim" or c.get("learned_kernel") != "untied_head_einsum":
        raise SystemExit("only softmax_dim + untied_head_einsum feature maps are supported")
    fmk = c.get("feature_map_kwargs") or {}
    if not fmk.get("fullspace", True):
        raise SystemExit("fullspace: false not supported")
    lkk = c.get("learned_kernel_kwargs") or {}
    return {
        "variant": variants[kind],
        "window": int(c["window_size"]),
        "affine": bool(c.get("affine_attention_factors", False)),
        # PyYAML reads LoLCATs' "eps: 1e-12" as a string (YAML 1.1 floats need a dot)
        "eps": float(fmk.get("eps", 1e-12)),
        "feature_dim": int(lkk["feature_dim"]),
        "skip": bool(lkk.get("skip_connection", False)),
        "tie_qk": bool(c.get("tie_qk_kernels", False)),
        "softmax_layers": sorted(int(i) for i in (c.get("softmax_attentions") or [])),
    }


def lora_alpha_of(path):
    if not path or not os.path.exists(path):
        return 16.0  # PEFT-era LoLCATs configs all use lora_alpha 16
    return float(read_yaml(path)["finetune"]["kwargs"]["lora_alpha"])


def distill_params(sd, cfg, ac, dtype):
    """{layer: {'fq', 'fk', 'wf', 'bq', 'bk'}} for the linearized layers, checked."""
    H, _, D = model_dims(cfg)
    nl = cfg["num_hidden_layers"]
    lin = [i for i in range(nl) if i not in ac["softmax_layers"]]
    got = {}
    for name, t in sd.items():
        s = split_key(name)
        alias = {"feature_map_q.mlp.layer": "fq", "feature_map_k.mlp.layer": "fk",
                 "window_factors": "wf", "window_factor": "wf",  # legacy alias of the same Parameter
                 "feature_map_q.mlp.bias": "bq", "feature_map_k.mlp.bias": "bk"}
        if s is None or s[1] not in alias or s[0] not in lin:
            raise SystemExit("unexpected key %s in distill checkpoint" % name)
        got.setdefault(s[0], {})[alias[s[1]]] = t.detach().to(dtype)
    want = {"fq": (H, D, ac["feature_dim"]), "fk": (H, D, ac["feature_dim"]), "wf": (1, H, 1, 1),
            "bq": (1, H, 1, 1), "bk": (1, H, 1, 1)}
    for i in lin:
        p = got.get(i, {})
        if ac["tie_qk"] and "fk" not in p and "fq" in p:  # tied maps are saved once
            p["fk"] = p["fq"]
            if "bq" in p:
                p.setdefault("bk", p["bq"])
        for k in ("fq", "fk", "wf"):
            if k not in p:
                raise SystemExit("layer %d: %s missing from distill checkpoint" % (i, k))
        for k, t in p.items():
            if t is not None and tuple(t.shape) != want[k]:
                raise SystemExit("layer %d: %s has shape %s, want %s" % (i, k, tuple(t.shape), want[k]))
        got[i] = p
    return got


def merge_lora(w, sd, scale, dtype):
    """w <- w with W + scale * B @ A merged into every adapted q/k/v/o (merge_and_unload)."""
    ab = {}
    for name, t in sd.items():
        s = split_key(name)
        m = re.fullmatch(r"([qkvo]_proj)\.lora_([AB])\.weight", s[1]) if s else None
        if m is None:
            raise SystemExit("unexpected key %s in finetune checkpoint" % name)
        ab.setdefault((s[0], m.group(1)), {})[m.group(2)] = t.detach().to(dtype)
    ranks = set()
    for (i, proj), p in sorted(ab.items()):
        key = "model.layers.%d.self_attn.%s.weight" % (i, proj)
        if key not in w or "A" not in p or "B" not in p:
            raise SystemExit("layer %d %s: incomplete LoRA pair or no such module" % (i, proj))
        W, A, B = w[key], p["A"], p["B"]
        if A.shape[1] != W.shape[1] or B.shape[0] != W.shape[0] or A.shape[0] != B.shape[1]:
            raise SystemExit("layer %d %s: LoRA shapes %s, %s for weight %s" % (
                i, proj, tuple(A.shape), tuple(B.shape), tuple(W.shape)))
        ranks.add(A.shape[0])
        w[key] = W + scale(A.shape[0]) * (B @ A)
    return len(ab), sorted(ranks)


def get_masks(variant, w, T):
    """(window, linear) boolean masks (T x T), as LoLCATs' get_masks for q_len == k_len."""
    if variant == "sw":
        causal = torch.ones((T, T), dtype=torch.long).tril(0)
        linear = torch.ones((T, T), dtype=torch.long).tril(-w)
        return (causal - linear).bool(), linear.bool()
    m = math.ceil(T / w)
    mask = torch.block_diag(*[torch.ones((w, w))] * m)
    mask = mask + torch.roll(mask, -w, -1)  # the terracing: each block also sees the one before
    mask = mask[-T:, -T:]  # end alignment: the last block ends at the last token
    # with m == 1 the roll is the identity, mask is 2 and 1 - mask is -1: both masks True
    return torch.tril(mask).long().bool(), torch.tril(1 - mask).long().bool()


def softmax_dim(x, eps):
    return torch.cat([torch.softmax(x, -1), torch.softmax(-x, -1)], -1).clamp(min=eps)


def feature_map(W, b, x, skip, eps):
    y = torch.einsum("hdf,hld->hlf", W, x)  # untied_head_einsum, batch 1
    if b is not None:
        y = y + b[0]
    return softmax_dim(x + y if skip else y, eps)


def hybrid_attention(q, k, v, p, ac):
    """q, k, v: (H, T, D) after RoPE and repeat_kv. hybrid_attention_quadratic, batch 1."""
    T, D = q.shape[1], q.shape[2]
    f_q = feature_map(p["fq"], p.get("bq"), q, ac["skip"], ac["eps"])
    f_k = feature_map(p["fk"], p.get("bk"), k, ac["skip"], ac["eps"])
    win, lin = get_masks(ac["variant"], ac["window"], T)
    gamma = torch.sigmoid(p["wf"][0])  # (H, 1, 1)
    lam = (1 - gamma) if ac["affine"] else 1.0
    s = (q @ k.transpose(1, 2)) * (D ** -0.5)
    s = s.masked_fill(~win, -1e8)
    a_sm = gamma * torch.exp(s - s.amax(-1, keepdim=True))
    a_ln = lam * (f_q @ f_k.transpose(1, 2)).masked_fill(~lin, 0)
    return ((a_sm + a_ln) @ v) / (a_sm.sum(-1, keepdim=True) + a_ln.sum(-1, keepdim=True))


class LinearizedModel:
    def __init__(self, a, dtype):
        self.cfg, self.w = tm.load_model(a.model, dtype)
        c = self.cfg
        if c["model_type"] not in ("llama",):
            raise SystemExit("model_type %r: only Llama models are supported" % c["model_type"])
        self.H, self.KV, self.D = model_dims(c)
        self.eps = c["rms_norm_eps"]
        self.inv_freq = tm.rope_inv_freq(c, self.D, dtype)
        self.dtype = dtype
        self.ac = load_attention_config(a.config or os.path.join(a.lolcats, "model.yaml"))
        sd = load_state_dict(os.path.join(a.lolcats, "distill.pt"))
        self.lin = distill_params(sd, c, self.ac, dtype)
        self.finetune, self.lora_scale, self.lora_modules = False, None, 0
        if not a.no_finetune:
            alpha = lora_alpha_of(a.finetune_config or os.path.join(a.lolcats, "finetune.yaml"))
            fsd = load_state_dict(os.path.join(a.lolcats, "finetune.pt"))
            self.lora_modules, ranks = merge_lora(self.w, fsd, lambda r: alpha / r, dtype)
            self.finetune = True
            self.lora_scale = [alpha / r for r in ranks]
        self.lm_head = self.w["model.embed_tokens.weight"] if c.get("tie_word_embeddings", False) \
            else self.w["lm_head.weight"]

    def __call__(self, ids):
        c, w, T = self.cfg, self.w, len(ids)
        H, KV, D = self.H, self.KV, self.D
        x = w["model.embed_tokens.weight"][torch.tensor(ids, dtype=torch.long)]
        freqs = torch.arange(T, dtype=self.dtype)[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        causal = torch.ones((T, T), dtype=torch.bool).tril()
        for L in range(c["num_hidden_layers"]):
            g = lambda n: w.get("model.layers.%d.%s" % (L, n))

            def lin(name, v):
                y = v @ g(name + ".weight").t()
                b = g(name + ".bias")
                return y if b is None else y + b

            r = x
            h = tm.rms_norm(x, g("input_layernorm.weight"), self.eps)
            q = lin("self_attn.q_proj", h).view(T, H, D).transpose(0, 1)
            k = lin("self_attn.k_proj", h).view(T, KV, D).transpose(0, 1)
            v = lin("self_attn.v_proj", h).view(T, KV, D).transpose(0, 1)
            q = q * cos + tm.rotate_half(q) * sin
            k = k * cos + tm.rotate_half(k) * sin
            k = k.repeat_interleave(H // KV, dim=0)  # repeat_kv
            v = v.repeat_interleave(H // KV, dim=0)
            if L in self.lin:
                y = hybrid_attention(q, k, v, self.lin[L], self.ac)
            else:  # preserved softmax layer: HF eager causal attention
                s = ((q @ k.transpose(1, 2)) * (D ** -0.5)).masked_fill(~causal, float("-inf"))
                y = torch.softmax(s, -1) @ v
            x = r + lin("self_attn.o_proj", y.transpose(0, 1).reshape(T, H * D))
            r = x
            h = tm.rms_norm(x, g("post_attention_layernorm.weight"), self.eps)
            x = r + lin("mlp.down_proj", torch.nn.functional.silu(lin("mlp.gate_proj", h)) * lin("mlp.up_proj", h))
        x = tm.rms_norm(x, w["model.norm.weight"], self.eps)
        return x @ self.lm_head.t()


def cmd_forward(a):
    dtype = torch.float64 if a.fp64 else torch.float32
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    m = LinearizedModel(a, dtype)
    ids = [int(s) for s in a.ids.split(",") if s.strip()]
    V = m.lm_head.shape[0]
    if not ids or not all(0 <= i < V for i in ids):
        raise SystemExit("ids empty or out of range")
    logits = m(ids)
    raw = logits.to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
    T, wnd = len(ids), m.ac["window"]
    res = {"n": T, "vocab": V, "logits_sha": hashlib.sha256(raw).hexdigest(),
           "finite": bool(torch.isfinite(logits).all()), "variant": m.ac["variant"], "window": wnd,
           "affine": m.ac["affine"], "linearized_layers": sorted(m.lin), "finetune": m.finetune,
           "lora_modules": m.lora_modules, "lora_scale": m.lora_scale}
    if m.ac["variant"] == "tk":
        res["tk_blocks"] = math.ceil(T / wnd)
        res["tk_single_block"] = T <= wnd  # linear term over the whole past too (see docstring)
    if a.logits_out:
        with open(a.logits_out, "wb") as f:
            f.write(raw)
    if T >= 2:
        res["nll_mean"] = float(tm.token_nll(logits, ids).mean())
        res["ppl"] = math.exp(res["nll_mean"])
    greedy, seq, lg = [], list(ids), logits
    for step in range(a.greedy):
        if step:
            lg = m(seq)
        nxt = int(torch.argmax(lg[-1]))
        greedy.append(nxt)
        seq.append(nxt)
    res["greedy"] = greedy
    print(json.dumps(res))


# ----------------------------------------------------------------------------- compare

def bits(t):
    return t.detach().to(torch.float32).contiguous().view(torch.int32)


def cmd_compare(a):
    sa, sb = load_state_dict(a.a), load_state_dict(a.b)
    norm = canonical if a.prefix_insensitive else (lambda n: n)
    ma = {norm(k): v for k, v in sa.items()}
    mb = {norm(k): v for k, v in sb.items()}
    if len(ma) != len(sa) or len(mb) != len(sb):
        raise SystemExit("two keys normalise to the same name")
    common = [k for k in ma if k in mb]
    shape_mm = [k for k in common if tuple(ma[k].shape) != tuple(mb[k].shape)]
    diff, exact = 0.0, True
    for k in common:
        if k in shape_mm:
            continue
        x, y = ma[k].detach().double(), mb[k].detach().double()
        if x.numel():
            diff = max(diff, float((x - y).abs().max()))
        exact = exact and torch.equal(bits(ma[k]), bits(mb[k]))
    only_a = sorted(set(ma) - set(mb))
    only_b = sorted(set(mb) - set(ma))
    same = not only_a and not only_b
    res = {"same_keys": same, "only_a": only_a, "only_b": only_b, "shape_mismatch": shape_mm,
           "max_abs_diff": diff,
           "dtypes_a": sorted({str(v.dtype).replace("torch.", "") for v in sa.values()}),
           "dtypes_b": sorted({str(v.dtype).replace("torch.", "") for v in sb.values()}),
           "bit_exact": bool(same and not shape_mm and exact)}
    print(json.dumps(res))
    sys.exit(0 if res["bit_exact"] else 1)


# ----------------------------------------------------------------------------- check-peft

def cmd_check_peft(a):
    problems, warnings = [], []
    st_path = os.path.join(a.dir, "adapter_model.safetensors")
    for need in ("adapter_config.json", "adapter_model.safetensors"):
        if not os.path.isfile(os.path.join(a.dir, need)):
            raise SystemExit("%s: no %s" % (a.dir, need))
    cfg = json.load(open(os.path.join(a.dir, "adapter_config.json")))
    got = tm.read_safetensors(st_path, torch.float32)  # upcast: bit-exact for bf16/f16/f32
    _, header = tm.read_safetensors_header(st_path)
    if (header.get("__metadata__") or {}).get("format") != "pt":
        warnings.append("safetensors __metadata__.format is not 'pt' (PEFT writes it)")

    # PEFT's saved names: the adapter name ('default') dropped, PeftModel prefix kept
    want, ranks = {}, set()
    for name, t in load_state_dict(a.finetune).items():
        s = split_key(name)
        if s is None:
            raise SystemExit("unexpected key %s in %s" % (name, a.finetune))
        want["base_model.model.model.layers.%d.self_attn.%s" % s] = t.detach().to(torch.float32)
        if ".lora_A." in name:
            ranks.add(t.shape[0])
    for k in sorted(set(want) - set(got)):
        problems.append("missing " + k)
    for k in sorted(set(got) - set(want)):
        problems.append("unexpected " + k)
    for k in sorted(set(want) & set(got)):
        if tuple(got[k].shape) != tuple(want[k].shape):
            problems.append("shape %s: %s, want %s" % (k, tuple(got[k].shape), tuple(want[k].shape)))
        elif not torch.equal(bits(got[k]), bits(want[k])):
            problems.append("values differ: %s (max %g)" % (k, float((got[k] - want[k]).abs().max())))

    def field(name, ok, why):
        if name not in cfg:
            problems.append("adapter_config.json lacks %s" % name)
        elif not ok(cfg[name]):
            problems.append("%s = %r: %s" % (name, cfg[name], why))

    field("peft_type", lambda v: v == "LORA", "want LORA")
    field("task_type", lambda v: v == "CAUSAL_LM", "want CAUSAL_LM")
    field("r", lambda v: isinstance(v, int) and ranks == {v}, "want %s" % sorted(ranks))
    field("lora_alpha", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
          and (a.lora_alpha is None or v == a.lora_alpha), "want %s" % a.lora_alpha)
    # LoLCATs itself passes 'self_attn.q_proj' etc.; PEFT matches either by suffix
    field("target_modules", lambda v: isinstance(v, list)
          and {str(x).replace("self_attn.", "") for x in v} == set(PROJS), "want %s" % list(PROJS))
    field("lora_dropout", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1,
          "want a number in [0, 1)")
    field("bias", lambda v: v == "none", "want 'none'")
    field("fan_in_fan_out", lambda v: v is False, "want false")
    res = {"ok": not problems, "problems": problems, "warnings": warnings, "keys": len(got)}
    print(json.dumps(res))
    sys.exit(0 if res["ok"] else 1)


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--model", required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--variant", choices=["tk", "sw"], default="tk")
    w.add_argument("--window", type=int, default=16)
    w.add_argument("--feature-dim", type=int, default=16)
    w.add_argument("--affine", action="store_true")
    w.add_argument("--softmax-layers", default="")
    w.add_argument("--lora-rank", type=int, default=4)
    w.add_argument("--lora-alpha", type=int, default=8)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    h = sub.add_parser("hostile")
    h.add_argument("--from", dest="src", required=True)
    h.add_argument("--out", required=True)
    f = sub.add_parser("forward")
    f.add_argument("--model", required=True)
    f.add_argument("--lolcats", required=True)
    f.add_argument("--config")
    f.add_argument("--no-finetune", action="store_true")
    f.add_argument("--finetune-config")
    f.add_argument("--ids", required=True)
    f.add_argument("--logits-out")
    f.add_argument("--greedy", type=int, default=0)
    f.add_argument("--fp64", action="store_true")
    c = sub.add_parser("compare")
    c.add_argument("--a", required=True)
    c.add_argument("--b", required=True)
    c.add_argument("--prefix-insensitive", action="store_true")
    p = sub.add_parser("check-peft")
    p.add_argument("--dir", required=True)
    p.add_argument("--finetune", required=True)
    p.add_argument("--lora-alpha", type=float)
    a = ap.parse_args()
    try:
        {"write": cmd_write, "hostile": cmd_hostile, "forward": cmd_forward, "compare": cmd_compare,
         "check-peft": cmd_check_peft}[a.cmd](a)
    except SystemExit as e:
        if isinstance(e.code, str):  # a refusal with a reason: still one JSON object on stdout
            print(json.dumps({"error": e.code}))
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
