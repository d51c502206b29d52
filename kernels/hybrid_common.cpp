// Shape checks, sizes and the host emulation of the kernels (hybrid_body.h).
#include <algorithm>
#include <vector>

#include "hybrid_body.h"

namespace lincat::kernels {

namespace {
bool dims_ok(int64_t d, int64_t F) {
    return d > 0 && F > 0 && d % 4 == 0 && F % 4 == 0 && d <= 256 && F <= 256;
}
}  // namespace

const char* prefill_unsupported(const PrefillArgs& a) {
    if (a.B <= 0 || a.H <= 0 || a.T <= 0) return "empty batch, heads or sequence";
    if (!dims_ok(a.d, a.F)) return "head dim and feature dim must be multiples of 4 up to 256";
    if (a.window <= 0 || a.window % 4 != 0 || a.window > 128) return "window must be a multiple of 4 up to 128";
    if (a.shift < 0 || a.shift >= a.window) return "shift must be in [0, window)";
    if (a.B * a.H > 65535) return "batch x heads over 65535";
    if (body::output_smem_floats(a) * 4 > 227 * 1024)
        return "window x head dim needs more than 227 KiB of shared memory";
    return "";
}

const char* decode_unsupported(const DecodeArgs& a) {
    if (a.B <= 0 || a.H <= 0) return "empty batch or heads";
    if (!dims_ok(a.d, a.F)) return "head dim and feature dim must be multiples of 4 up to 256";
    if (a.window <= 0 || a.capacity < a.window || a.capacity > 1024) return "ring capacity must be in [window, 1024]";
    if (a.position < 0) return "negative position";
    if (a.B * a.H > 65535) return "batch x heads over 65535";
    return "";
}

int64_t prefill_chunks(const PrefillArgs& a) {
    return body::chunk_count(a);
}

size_t prefill_workspace_bytes(const PrefillArgs& a) {
    return size_t(a.B * a.H * body::chunk_count(a) * body::state_floats(a)) * sizeof(float);
}

float bf16_to_float(uint16_t bits) {
    return body::bf16_bits_to_float(bits);
}
uint16_t float_to_bf16(float f) {
    return body::float_to_bf16_bits(f);
}

void hybrid_prefill_emulated(const PrefillArgs& a, void* workspace) {
    auto* states = static_cast<float*>(workspace);
    const int64_t C = body::chunk_count(a), BH = a.B * a.H;
    std::vector<float> smem(size_t(std::max(body::output_smem_floats(a), body::chunk_state_smem_floats(a))));
    body::Ctx ctx;
    for (ctx.by = 0; ctx.by < BH; ++ctx.by)
        for (ctx.bx = 0; ctx.bx < C; ++ctx.bx) body::chunk_state(ctx, a, states, smem.data());
    const int64_t tiles = (body::state_floats(a) + body::kScanTile - 1) / body::kScanTile;
    for (ctx.by = 0; ctx.by < BH; ++ctx.by)
        for (ctx.bx = 0; ctx.bx < tiles; ++ctx.bx) body::state_scan(ctx, a, states);
    for (ctx.by = 0; ctx.by < BH; ++ctx.by)
        for (ctx.bx = 0; ctx.bx < C; ++ctx.bx) body::chunk_output(ctx, a, states, smem.data());
}

void hybrid_decode_emulated(const DecodeArgs& a) {
    std::vector<float> smem(size_t(body::decode_smem_floats(a)));
    body::Ctx ctx;
    for (ctx.by = 0; ctx.by < a.B * a.H; ++ctx.by) body::decode_step(ctx, a, smem.data());
}

}  // namespace lincat::kernels
