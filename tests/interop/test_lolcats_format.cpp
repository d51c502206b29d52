// The torch-free half of the LoLCATs interop: key names, the YAML configs and the restricted
// pickle reader, on hand-written inputs whose meaning is known from the pickle protocol.
#include <gtest/gtest.h>

#include "interop/lolcats_format.h"
#include "interop/torch_pickle.h"
#include "test_util.h"

using namespace lincat;
using lincat::test::expect_error;
using namespace std::string_literals;  // the pickles below hold NUL bytes

TEST(LolcatsKeys, EveryPrefixTheirLoadersAcceptMapsToOneTensor) {
    for (std::string prefix : {"", "model.", "model.model.", "base_model.model.", "base_model.model.model."}) {
        auto k = parse_lolcats_key(prefix + "layers.12.self_attn.feature_map_k.mlp.layer");
        ASSERT_TRUE(k) << prefix;
        EXPECT_EQ(k->layer, 12);
        EXPECT_EQ(k->tensor, LolcatsTensor::FeatureMapK);
    }
    auto a = parse_lolcats_key("base_model.model.model.layers.3.self_attn.o_proj.lora_A.default.weight");
    ASSERT_TRUE(a);
    EXPECT_EQ(*a, (LolcatsKey{3, LolcatsTensor::LoraA, "o_proj"}));
    EXPECT_EQ(parse_lolcats_key("base_model.model.model.layers.3.self_attn.o_proj.lora_A.weight"),
              a);  // PEFT's saved name
    EXPECT_EQ(lolcats_key_name(*a), "base_model.model.model.layers.3.self_attn.o_proj.lora_A.default.weight");
    EXPECT_EQ(peft_tensor_name(*a), "base_model.model.model.layers.3.self_attn.o_proj.lora_A.weight");
    EXPECT_EQ(lincat_tensor_name(*a), "model.layers.3.self_attn.o_proj.lora_A.weight");
    LolcatsKey w{0, LolcatsTensor::WindowFactors, ""};
    EXPECT_EQ(lolcats_key_name(w), "model.layers.0.self_attn.window_factors");
    EXPECT_EQ(lincat_tensor_name(w), "model.layers.0.self_attn.attn.window_factors");
    EXPECT_EQ(parse_lolcats_key(lolcats_key_name(w)), w);
    expect_error([&] { peft_tensor_name(w); }, {"LoRA tensors only"});
}

TEST(LolcatsKeys, AnythingElseIsNotOneOfTheirs) {
    for (const char* bad :
         {"layers.1.self_attn.feature_map_q.mlp.layer.extra", "foo.layers.1.self_attn.window_factors",
          "model.layers.01.self_attn.window_factors", "model.layers.x.self_attn.window_factors",
          "model.layers.1.mlp.up_proj.weight", "model.layers.1.self_attn.q_proj.weight",
          "model.layers.1.self_attn.gate_proj.lora_A.weight", "model.layers.99999999.self_attn.window_factors",
          "model.layers.1.self_attn.q_proj.lora_C.weight", "", "layers."})
        EXPECT_FALSE(parse_lolcats_key(bad)) << bad;
}

// A LoLCATs model config as their configs/model/*.yaml lay it out (eps written as 1e-12, which
// YAML 1.1 reads as a string: it must still mean 1e-12).
static const char* kConfig = R"(name: llama
model:
  pretrained_model_name_or_path: "meta-llama/Meta-Llama-3.1-8B"
  torch_dtype: bfloat16
attention:
  attention_type: lolcats_llama_window_tk
  state_chunk_len: 1024
  window_size: 64
  affine_attention_factors: false
  init_window_factor: -2.1972245773362196
  feature_map: softmax_dim
  feature_map_kwargs:
    eps: 1e-12
    fullspace: true
  layer_idx: null # to set
  learned_kernel: untied_head_einsum
  learned_kernel_kwargs:
    feature_dim: 64
    skip_connection: false
    bias: false
    zero_init: false
  tie_qk_kernels: false
  train_qk: false
)";

TEST(LolcatsConfig, TheirDefaultIsOurTkWithEndAlignedBlocks) {
    LolcatsAttention a = lolcats_attention_from_yaml(kConfig, "model.yaml", 32);
    EXPECT_EQ(a.linearize.window.kind, WindowKind::Terraced);
    EXPECT_EQ(a.linearize.window.size, 64);
    EXPECT_EQ(a.linearize.window.align, BlockAlign::End);
    EXPECT_EQ(a.linearize.decode_window, WindowKind::Sliding);
    EXPECT_EQ(a.linearize.feature_dim, 64);
    EXPECT_EQ(a.linearize.feature_map, FeatureMapKind::SoftmaxDim);
    EXPECT_FALSE(a.linearize.affine);
    EXPECT_TRUE(a.linearize.layers.empty());
    EXPECT_DOUBLE_EQ(a.init_window_factor, -2.1972245773362196);

    std::string kept = std::string(kConfig) + "  softmax_attentions: [0, 31]\n";
    LolcatsAttention b = lolcats_attention_from_yaml(kept, "model.yaml", 32);
    ASSERT_EQ(b.linearize.layers.size(), 30u);
    EXPECT_EQ(b.linearize.layers.front(), 1);
    EXPECT_EQ(b.linearize.layers.back(), 30);

    // Our YAML, read back, is the same linearization.
    std::string out = lolcats_model_yaml(b.linearize, 32, "/models/llama", "bfloat16");
    EXPECT_EQ(lolcats_attention_from_yaml(out, "out.yaml", 32).linearize, b.linearize);
}

TEST(LolcatsConfig, WhatWeCannotReproduceIsRefusedByField) {
    auto with = [](const std::string& from, const std::string& to) {
        std::string s = kConfig;
        s.replace(s.find(from), from.size(), to);
        return s;
    };
    expect_error([&] { lolcats_attention_from_yaml(with("window_tk", "window_xx"), "m.yaml", 4); },
                 {"m.yaml", "attention_type 'lolcats_llama_window_xx'"});
    expect_error([&] { lolcats_attention_from_yaml(with("fullspace: true", "fullspace: false"), "m.yaml", 4); },
                 {"m.yaml", "fullspace"});
    expect_error([&] { lolcats_attention_from_yaml(with("bias: false", "bias: true"), "m.yaml", 4); }, {"bias true"});
    expect_error(
        [&] { lolcats_attention_from_yaml(with("tie_qk_kernels: false", "tie_qk_kernels: true"), "m.yaml", 4); },
        {"tie_qk_kernels"});
    expect_error([&] { lolcats_attention_from_yaml(with("feature_dim: 64", "feature_dim: many"), "m.yaml", 4); },
                 {"m.yaml", "feature_dim", "wrong type"});
    expect_error(
        [&] { lolcats_attention_from_yaml(std::string(kConfig) + "  softmax_attentions: [4]\n", "m.yaml", 4); },
        {"softmax_attentions layer 4", "[0, 4)"});
    expect_error([&] { lolcats_attention_from_yaml("attention: [1, 2", "m.yaml", 4); }, {"m.yaml", "not valid YAML"});
    expect_error([&] { lolcats_attention_from_yaml("name: llama\n", "m.yaml", 4); }, {"m.yaml", "attention_type"});
}

TEST(LolcatsConfig, FinetuneKwargsGiveTheLoraOptions) {
    LoraOptions o = lolcats_lora_from_yaml(
        "finetune:\n  method: lora\n  kwargs:\n    r: 8\n    lora_alpha: 16\n    lora_dropout: 0 # 0.05\n"
        "    target_modules: ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj']\n",
        "ft.yaml");
    EXPECT_EQ(o.rank, 8);
    EXPECT_EQ(o.alpha, 16.0);
    EXPECT_EQ(o.targets, (std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj"}));
    EXPECT_EQ(lolcats_lora_from_yaml(lolcats_finetune_yaml(o), "out.yaml"), o);
    expect_error([&] { lolcats_lora_from_yaml("finetune:\n  method: full\n", "ft.yaml"); },
                 {"ft.yaml", "method 'full'"});
    expect_error([&] { lolcats_lora_from_yaml("finetune:\n  kwargs:\n    r: 0\n", "ft.yaml"); }, {"ft.yaml", "rank"});
}

// ------------------------------------------------------------------------------ pickle

// Protocol-2 opcodes written by hand (the pickle module's own table): {"a": 1, "b": [True, 2.5]}
static std::string small_pickle() {
    std::string p =
        "\x80\x02}q\x00(X\x01\x00\x00\x00"
        "aK\x01X\x01\x00\x00\x00"
        "b]q\x01(\x88G"s;
    const unsigned char two_and_half[8] = {0x40, 0x04, 0, 0, 0, 0, 0, 0};
    p.append(reinterpret_cast<const char*>(two_and_half), 8);
    p += "eu.";
    return p;
}

TEST(TorchPickle, ReadsDictsListsAndScalars) {
    PickleDocument d = read_torch_pickle(small_pickle(), "x.pkl");
    ASSERT_EQ(d.at(d.root).kind, PickleNode::Kind::Dict);
    int a = d.find(d.root, "a"), b = d.find(d.root, "b");
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    EXPECT_EQ(d.at(a).integer, 1);
    ASSERT_EQ(d.at(b).kind, PickleNode::Kind::List);
    ASSERT_EQ(d.at(b).items.size(), 2u);
    EXPECT_TRUE(d.at(d.at(b).items[0]).boolean);
    EXPECT_EQ(d.at(d.at(b).items[1]).real, 2.5);
}

TEST(TorchPickle, ReadsAnOrderedDictOfOneTensorAsTorchSaveWritesIt) {
    // OrderedDict() with one SETITEM of _rebuild_tensor_v2(persistent storage, 0, (2, 3), (3, 1), False, OrderedDict())
    std::string p =
        "\x80\x02"
        "ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00w"
        "ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storagectorch\nBFloat16Storage\n"
        "X\x01\x00\x00\x00"
        "0X\x03\x00\x00\x00"
        "cpuK\x06tQK\x00K\x02K\x03\x86K\x03K\x01\x86\x89h\x00)Rtq\x03R"
        "s."s;
    PickleDocument d = read_torch_pickle(p, "data.pkl");
    int w = d.find(d.root, "w");
    ASSERT_GE(w, 0);
    const PickleNode& t = d.at(w);
    ASSERT_EQ(t.kind, PickleNode::Kind::Tensor);
    EXPECT_EQ(t.dtype, "bfloat16");
    EXPECT_EQ(t.sizes, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(t.strides, (std::vector<int64_t>{3, 1}));
    EXPECT_EQ(d.at(t.storage).text, "0");
    EXPECT_EQ(d.at(t.storage).numel, 6);
}

TEST(TorchPickle, RefusesGlobalsOpcodesAndBrokenStreams) {
    expect_error(
        [] {
            read_torch_pickle(
                "\x80\x02"
                "cposix\nsystem\nq\x00."s,
                "evil.pkl");
        },
        {"evil.pkl", "posix.system", "nothing was run"});
    expect_error(
        [] {
            read_torch_pickle(
                "\x80\x02"
                "cbuiltins\neval\n.",
                "e.pkl");
        },
        {"builtins.eval"});
    expect_error([] { read_torch_pickle("\x80\x02K\x01K\x02\x93.", "s.pkl"); }, {"STACK_GLOBAL"});
    expect_error([] { read_torch_pickle("\x80\x02}q\x00("s, "t.pkl"); }, {"t.pkl", "before the STOP"});
    expect_error([] { read_torch_pickle("\x80\x02X\xff\xff\xff\x7f", "l.pkl"); }, {"l.pkl", "past the end"});
    expect_error([] { read_torch_pickle("\x80\x02h\x07."s, "m.pkl"); }, {"memo entry 7"});
    expect_error([] { read_torch_pickle("\x80\x02i.", "i.pkl"); }, {"opcode 0x69"});  // INST
    expect_error([] { read_torch_pickle("\x80\x02K\x01K\x02.", "two.pkl"); }, {"2 values on its stack"});
    expect_error(
        [] {
            read_torch_pickle(
                "\x80\x02K\x01"
                "a.",
                "a.pkl");
        },
        {"empty stack"});
    expect_error([] { read_torch_pickle("\x80\x02]K\x01K\x02s.", "si.pkl"); }, {"sets items on a list"});
    // A REDUCE of a storage class or an OrderedDict used as a tensor builds nothing.
    expect_error(
        [] {
            read_torch_pickle(
                "\x80\x02"
                "ctorch\nFloatStorage\n)R.",
                "r.pkl");
        },
        {"builds no value"});
}

TEST(TorchPickle, WhatWeWriteReadsBackAsTheSameTensors) {
    std::vector<PickledTensor> in = {{"model.layers.0.self_attn.window_factors", "float32", "0", {1, 4, 1, 1}},
                                     {"scalar", "bfloat16", "1", {}},
                                     {"big", "int64", "2", {70000, 3}}};
    const std::string p = write_state_dict_pickle("model_state_dict", in, int64_t(1) << 40);
    PickleDocument d = read_torch_pickle(p, "ours.pkl");
    EXPECT_EQ(d.at(d.find(d.root, "step")).integer, int64_t(1) << 40);
    int sd = d.find(d.root, "model_state_dict");
    ASSERT_GE(sd, 0);
    ASSERT_EQ(d.at(sd).entries.size(), in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        auto [k, v] = d.at(sd).entries[i];
        EXPECT_EQ(d.at(k).text, in[i].name);
        const PickleNode& t = d.at(v);
        ASSERT_EQ(t.kind, PickleNode::Kind::Tensor);
        EXPECT_EQ(t.dtype, in[i].dtype);
        EXPECT_EQ(t.sizes, in[i].sizes);
        EXPECT_EQ(d.at(t.storage).text, in[i].storage_key);
    }
    EXPECT_EQ(d.at(d.at(sd).entries[2].second).strides, (std::vector<int64_t>{3, 1}));
    EXPECT_EQ(d.at(d.at(d.at(sd).entries[2].second).storage).numel, 210000);
}
