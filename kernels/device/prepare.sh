#!/usr/bin/env bash
# Run here (not on the GPU machine): fills .device/ (git-ignored) with what the GPU machine
# lacks and cannot download: the Debian build dependencies of the core (nlohmann_json, GTest,
# SQLite) and the default model in bf16 (half of its 61 MB, so the carried tree stays under
# the device tool's 64 MiB). Then: device `run` with carry [".device"] and the command
# `bash kernels/device/check.sh` (see that script).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/.device
rm -rf "$out"
mkdir -p "$out/usr/include" "$out/usr/lib/x86_64-linux-gnu/cmake" "$out/usr/share/cmake" "$out/usr/lib/sqlite"
cp -r /usr/include/nlohmann /usr/include/gtest /usr/include/gmock "$out/usr/include/"
cp -r /usr/share/cmake/nlohmann_json "$out/usr/share/cmake/"
cp -r /usr/lib/x86_64-linux-gnu/cmake/GTest "$out/usr/lib/x86_64-linux-gnu/cmake/"
cp /usr/lib/x86_64-linux-gnu/libgtest*.a /usr/lib/x86_64-linux-gnu/libgmock*.a "$out/usr/lib/x86_64-linux-gnu/"
cp /usr/include/sqlite3.h /usr/include/sqlite3ext.h "$out/usr/include/"
cp -L /usr/lib/x86_64-linux-gnu/libsqlite3.so.0 "$out/usr/lib/sqlite/libsqlite3.so.0"
cp -L /usr/lib/x86_64-linux-gnu/libsqlite3.so.0 "$out/usr/lib/sqlite/libsqlite3.so"

model=${LINCAT_CACHE:-$HOME/.cache/lincat}/models/stories15M
[ -f "$model/model.safetensors" ] || { echo "no $model: run packaging/setup.sh first" >&2; exit 1; }
mkdir -p "$out/models/stories15M"
cp "$model/config.json" "$model/tokenizer.json" "$model/tokenizer.bin" "$out/models/stories15M/"
/usr/bin/python3 - "$model/model.safetensors" "$out/models/stories15M/model.safetensors" <<'PY'
import json, struct, sys, torch
src, dst = sys.argv[1], sys.argv[2]
raw = open(src, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
out_header, blobs, off = {}, [], 0
for name, t in header.items():
    if name == '__metadata__':
        out_header[name] = t
        continue
    b, e = t['data_offsets']
    x = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).reshape(t['shape'])
    blob = x.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
    out_header[name] = {'dtype': 'BF16', 'shape': t['shape'], 'data_offsets': [off, off + len(blob)]}
    blobs.append(blob)
    off += len(blob)
h = json.dumps(out_header).encode()
h += b' ' * ((8 - len(h) % 8) % 8)
with open(dst, 'wb') as f:
    f.write(struct.pack('<Q', len(h)) + h)
    for blob in blobs:
        f.write(blob)
PY
du -sh "$out"
