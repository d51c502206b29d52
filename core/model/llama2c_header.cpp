#include <cstdlib>
#include <cstring>

#include "model/llama2c.h"
#include "util/error.h"

namespace lincat {

uint64_t Llama2cHeader::expected_file_size() const {
    const uint64_t d = uint64_t(dim), hd = uint64_t(hidden_dim), L = uint64_t(n_layers), V = uint64_t(vocab_size);
    const uint64_t head = d / uint64_t(n_heads), kv = uint64_t(n_kv_heads) * head;
    uint64_t floats = V * d                                     // token embedding
                      + L * d                                   // rms_att
                      + L * d * d + 2 * L * d * kv + L * d * d  // wq, wk, wv, wo
                      + L * d                                   // rms_ffn
                      + 3 * L * d * hd                          // w1, w2, w3
                      + d                                       // rms_final
                      + uint64_t(seq_len) * head;               // freq_cis real + imag (head/2 each)
    if (!shared_classifier) floats += V * d;
    return 28 + 4 * floats;
}

Llama2cHeader parse_llama2c_header(const uint8_t* bytes, size_t size, const std::string& label) {
    if (size < 28) fail(label, ": truncated llama2.c checkpoint (", size, " bytes, the header alone is 28)");
    int32_t f[7];
    std::memcpy(f, bytes, 28);
    Llama2cHeader h{f[0], f[1], f[2], f[3], f[4], std::abs(f[5]), f[6], f[5] > 0};
    const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    const int32_t limits[7] = {65536, 1 << 20, 1024, 1024, 1024, 1 << 22, 1 << 22};
    for (int i = 0; i < 7; ++i)
        if (f[i] == 0 || std::abs(int64_t(f[i])) > limits[i] || (i != 5 && f[i] < 0))
            fail(label, ": header field '", names[i], "' = ", f[i], " is out of range");
    if (h.dim % h.n_heads != 0) fail(label, ": dim ", h.dim, " is not divisible by n_heads ", h.n_heads);
    if ((h.dim / h.n_heads) % 2 != 0) fail(label, ": head size ", h.dim / h.n_heads, " must be even");
    if (h.n_heads % h.n_kv_heads != 0)
        fail(label, ": n_heads ", h.n_heads, " is not a multiple of n_kv_heads ", h.n_kv_heads);
    if (h.expected_file_size() != size)
        fail(label, ": file is ", size, " bytes but its header (dim ", h.dim, ", layers ", h.n_layers, ", vocab ",
             h.vocab_size, ") implies ", h.expected_file_size(), " bytes");
    return h;
}

ModelConfig llama2c_config(const Llama2cHeader& h) {
    ModelConfig c;
    c.model_type = "llama";
    c.vocab_size = h.vocab_size;
    c.hidden_size = h.dim;
    c.intermediate_size = h.hidden_dim;
    c.num_hidden_layers = h.n_layers;
    c.num_attention_heads = h.n_heads;
    c.num_key_value_heads = h.n_kv_heads;
    c.head_dim = h.dim / h.n_heads;
    c.max_position_embeddings = h.seq_len;
    c.rms_norm_eps = 1e-5;
    c.rope_theta = 10000.0;
    c.tie_word_embeddings = h.shared_classifier;
    c.bos_token_id = 1;
    c.eos_token_id = 2;
    c.torch_dtype = "float32";
    return c;
}

}  // namespace lincat
