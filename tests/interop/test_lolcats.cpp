// LoLCATs checkpoints in and out, judged by an independent Python implementation written from
// the LoLCATs sources (tests/reference/lolcats_reference.py): it writes LoLCATs-format files
// for the tiny Llama 3.1 model with known tensors, computes the LoLCATs forward over them, and
// reads back what we export. Needs the ctest fixture tiny_models.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "attention/linearize.h"
#include "interop/lolcats.h"
#include "interop/lolcats_format.h"
#include "interop/torch_file.h"
#include "model/fingerprint.h"
#include "model/lora_model.h"
#include "model/tokenizer.h"
#include "model/weights.h"
#include "train/checkpoint.h"
#include "train/linearized_model.h"
#include "test_util.h"
#include "util/file.h"
#include "util/json.h"

using namespace lincat;
namespace fs = std::filesystem;

static const std::string kModel = std::string(LINCAT_BINARY_DIR) + "/tiny-models/llama3";
static const std::string kLincat = std::string(LINCAT_BINARY_DIR) + "/lincat";

static lincat::test::CommandResult reference(const std::string& args) {
    return lincat::test::run_command("/usr/bin/python3 " + std::string(LINCAT_TESTS_DIR) +
                                     "/reference/lolcats_reference.py " + args + " 2>&1");
}

static json reference_json(const std::string& args) {
    auto r = reference(args);
    EXPECT_EQ(r.code, 0) << "lolcats_reference.py " << args << ":\n" << r.out;
    return r.code == 0 ? parse_json(r.out, "lolcats_reference.py") : json();
}

static std::string ids_arg(const std::vector<int64_t>& ids) {
    std::string s;
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
    return s;
}

static std::vector<int64_t> sample_ids(int64_t n) {
    Tokenizer tok = Tokenizer::load_dir(kModel);
    auto ids = tok.encode(
        "Once upon a time, in a small village by the sea, there lived an old fisherman named Tom. Every morning he "
        "rowed out past the rocks, and every evening he came home with stories for the children of the harbour.",
        true);
    std::vector<int64_t> out(ids.begin(), ids.end());
    EXPECT_GE(int64_t(out.size()), n);
    out.resize(size_t(n));
    return out;
}

// One set of LoLCATs files (written once per variant) and its import into a workspace.
struct Written {
    std::string dir, ws;
    LolcatsImport import;
};

static Written write_and_import(const lincat::test::TempDir& tmp, const std::string& name, const std::string& args,
                                bool finetune = true) {
    Written w;
    w.dir = tmp.file(name);
    json made = reference_json("write --model " + kModel + " --out " + w.dir + " " + args);
    EXPECT_TRUE(made.is_object());
    w.ws = tmp.file(name + "-ws");
    Workspace ws = Workspace::open(w.ws);
    LolcatsImportFiles f;
    f.distill = w.dir + "/distill.pt";
    f.config = w.dir + "/model.yaml";
    if (finetune) {
        f.finetune = w.dir + "/finetune.pt";
        f.finetune_config = w.dir + "/finetune.yaml";
    }
    w.import = import_lolcats(ws, kModel, f);
    return w;
}

// max |ours - LoLCATs| over the logits of `ids`, and the largest |logit|.
static std::pair<double, double> logits_gap(const std::string& checkpoint, const Written& w,
                                            const std::vector<int64_t>& ids, const std::string& extra,
                                            const lincat::test::TempDir& tmp) {
    LlamaModel model = load_linearized(kModel, checkpoint, torch::kFloat32);
    torch::NoGradGuard ng;
    auto ours = model->forward(torch::tensor(ids).view({1, -1}))[0];
    const std::string out = tmp.file("logits.bin");
    json ref = reference_json("forward --model " + kModel + " --lolcats " + w.dir + " --ids " + ids_arg(ids) +
                              " --logits-out " + out + " " + extra);
    if (!ref.is_object()) return {1e9, 0};
    std::string raw = read_file(out);
    const int64_t T = int64_t(ids.size()), V = ours.size(1);
    EXPECT_EQ(raw.size(), size_t(T * V * 4));
    if (raw.size() != size_t(T * V * 4)) return {1e9, 0};
    auto theirs = torch::from_blob(raw.data(), {T, V}, torch::kFloat32).clone();
    return {(ours - theirs).abs().max().item<double>(), theirs.abs().max().item<double>()};
}

// Both fp32, the same bf16 base weights; what differs is the order of fp32 sums (our chunked
// form against their quadratic one, softmax via max-subtraction in both): a few ulp of the
// largest logit (|logit| about 10-50 here, one fp32 ulp there is 1e-6 to 4e-6).
static double tolerance(double scale) {
    return std::max(2e-4, 8e-6 * scale);
}

struct Variant {
    const char* name;
    const char* args;
};

static void PrintTo(const Variant& v, std::ostream* os) {
    *os << v.name;
}  // ctest's test names

class LolcatsForward : public ::testing::TestWithParam<Variant> {};

TEST_P(LolcatsForward, ImportedRunGivesTheLolcatsOutputs) {
    ASSERT_TRUE(fs::exists(kModel + "/config.json")) << kModel << " missing (ctest fixture tiny_models)";
    lincat::test::TempDir tmp;
    Written w = write_and_import(tmp, "lolcats", GetParam().args);
    ASSERT_GT(w.import.finetune_run, 0);
    Workspace ws = Workspace::open(w.ws);
    const std::string stage1 = ws.best_checkpoint(w.import.distill_run)->path;
    // Longer than 2 windows so the linear part is there; 37 leaves a partial first tk block
    // (LoLCATs aligns blocks to the end).
    for (int64_t T : {40, 37}) {
        auto ids = sample_ids(T);
        auto [gap1, scale1] = logits_gap(stage1, w, ids, "--no-finetune", tmp);
        EXPECT_LT(gap1, tolerance(scale1)) << GetParam().name << " stage 1, T " << T;
        auto [gap2, scale2] =
            logits_gap(w.import.checkpoint, w, ids, "--finetune-config " + w.dir + "/finetune.yaml", tmp);
        EXPECT_LT(gap2, tolerance(scale2)) << GetParam().name << " stage 2 (LoRA merged), T " << T;
        std::printf("%s T %lld: max |ours - LoLCATs| %.3g (|logit| up to %.1f) stage 1, %.3g stage 2\n",
                    GetParam().name, (long long)T, gap1, scale1, gap2);
    }
}

INSTANTIATE_TEST_SUITE_P(Tiny, LolcatsForward,
                         ::testing::Values(Variant{"tk_w16_softmax_layer1",
                                                   "--variant tk --window 16 --softmax-layers 1"},
                                           Variant{"sw_w12_affine", "--variant sw --window 12 --affine"},
                                           Variant{"tk_w8_bf16", "--variant tk --window 8 --dtype bf16"}),
                         [](const auto& info) { return std::string(info.param.name); });

// The same tensors put into a native run by hand (linearize, copy, attach LoRA, save) must
// evaluate and generate exactly as the imported run does.
TEST(LolcatsImport, EvalAndGenerateEqualTheNativeRunOfTheSameTensors) {
    ASSERT_TRUE(fs::exists(kModel + "/config.json")) << kModel << " missing (ctest fixture tiny_models)";
    lincat::test::TempDir tmp;
    Written w = write_and_import(tmp, "lolcats", "--variant tk --window 16 --softmax-layers 1");
    Workspace ws = Workspace::open(w.ws);

    // Native: the reference's own float32 copy of the tensors, by name.
    LinearizeOptions o = checkpoint_linearization(w.import.checkpoint, nullptr);
    LoraOptions lora = *checkpoint_lora(w.import.checkpoint);
    LlamaModel model = load_llama(kModel, torch::kFloat32);
    linearize(model, o);
    attach_lora(model, lora);
    WeightStore ref = WeightStore::open_file(w.dir + "/tensors.safetensors");
    std::map<std::string, torch::Tensor> params;
    for (auto& [n, t] : linearized_tensors(model)) params[n] = t;
    for (auto& [n, t] : lora_tensors(model)) params[n] = t;
    {
        torch::NoGradGuard ng;
        size_t copied = 0;
        for (auto& name : ref.names()) {
            auto k = parse_lolcats_key(name);
            ASSERT_TRUE(k) << name;
            auto& p = params.at(lincat_tensor_name(*k));
            p.copy_(ref.get(name).view(p.sizes()));
            ++copied;
        }
        ASSERT_EQ(copied, params.size());
    }
    const std::string native = tmp.file("native");
    save_linear_checkpoint(native, model, o, model_fingerprint(kModel), &lora);

    std::string text;
    for (int i = 0; i < 6; ++i)
        text += "Once upon a time, in a small village by the sea, there lived an old fisherman. ";
    write_file_atomic(tmp.file("text.txt"), text);
    auto eval = [&](const std::string& ck) {
        auto r = lincat::test::run_command(kLincat + " eval --model " + kModel + " --workspace " + tmp.file("eval-ws") +
                                           " --checkpoint " + ck + " --data " + tmp.file("text.txt") +
                                           " --seq-len 40 --dtype fp32 --json 2>&1");
        EXPECT_EQ(r.code, 0) << r.out;
        return r.code == 0 ? parse_json(r.out, "eval") : json();
    };
    json a = eval(w.import.checkpoint), b = eval(native);
    ASSERT_TRUE(a.is_object() && b.is_object());
    EXPECT_EQ(a["student_ppl"], b["student_ppl"]);
    EXPECT_EQ(a["kl"], b["kl"]);
    EXPECT_EQ(a["top1_agreement"], b["top1_agreement"]);
    EXPECT_EQ(a["layer_mse"], b["layer_mse"]);
    EXPECT_NE(a["student_ppl"], a["teacher_ppl"]);  // the linearization did something

    auto gen = [&](const std::string& ck) {
        auto r = lincat::test::run_command(kLincat + " generate --model " + kModel + " --checkpoint " + ck +
                                           " --prompt 'Once upon a time' --max-new-tokens 24 --dtype fp32 --json 2>&1");
        EXPECT_EQ(r.code, 0) << r.out;
        return r.code == 0 ? parse_json(r.out, "generate") : json();
    };
    json g1 = gen(w.import.checkpoint), g2 = gen(native);
    ASSERT_TRUE(g1.is_object() && g2.is_object());
    EXPECT_EQ(g1["text"], g2["text"]);
    EXPECT_FALSE(g1["text"].get<std::string>().empty());

    // The import is an ordinary pair of completed runs: the finetune run continues the distill run.
    RunRecord ft = ws.run(w.import.finetune_run);
    EXPECT_EQ(ft.kind, RunKind::Finetune);
    EXPECT_EQ(ft.status, RunStatus::Completed);
    EXPECT_EQ(parse_json(ft.config_json, "config")["stage1_run"], w.import.distill_run);
    EXPECT_EQ(ws.run(w.import.distill_run).kind, RunKind::Distill);
}

// Import, export back, and the reference reads the same keys, shapes and values (fp32: bit-exact).
TEST(LolcatsExport, RoundTripIsBitExactAndPeftReadsTheAdapters) {
    ASSERT_TRUE(fs::exists(kModel + "/config.json")) << kModel << " missing (ctest fixture tiny_models)";
    lincat::test::TempDir tmp;
    Written w = write_and_import(tmp, "lolcats", "--variant sw --window 12 --softmax-layers 0 --lora-alpha 8");
    auto run = [&](const std::string& args) {
        auto r = lincat::test::run_command(kLincat + " " + args + " 2>&1");
        EXPECT_EQ(r.code, 0) << args << ":\n" << r.out;
        return r;
    };
    const std::string last = std::to_string(w.import.finetune_run);
    run("export --model " + kModel + " --workspace " + w.ws + " --run " + last + " --format lolcats --out " +
        tmp.file("out"));
    for (const char* f : {"distill.pt", "finetune.pt"}) {
        json c = reference_json(std::string("compare --a ") + w.dir + "/" + f + " --b " + tmp.file("out") + "/" + f);
        EXPECT_EQ(c.value("bit_exact", false), true) << f << ": " << c.dump();
        EXPECT_EQ(c.value("same_keys", false), true) << f << ": " << c.dump();
    }
    // LoLCATs loads with a plain torch.load (safe here: the file is ours) and wants an OrderedDict.
    auto loaded = lincat::test::run_command(
        "/usr/bin/python3 -c \"import collections, torch; d = torch.load('" + tmp.file("out") +
        "/finetune.pt'); sd = d['model_state_dict']; assert isinstance(sd, collections.OrderedDict); "
        "print(len(sd), d['step'])\" 2>&1");
    EXPECT_EQ(loaded.code, 0) << loaded.out;
    EXPECT_EQ(loaded.out, "16 0\n");  // 2 layers x q, k, v, o x A, B
    // The exported YAML means the same linearization: importing the export gives the same run.
    Workspace ws2 = Workspace::open(tmp.file("ws2"));
    LolcatsImport again = import_lolcats(ws2, kModel,
                                         {tmp.file("out") + "/distill.pt", tmp.file("out") + "/finetune.pt",
                                          tmp.file("out") + "/model.yaml", tmp.file("out") + "/finetune.yaml"});
    EXPECT_EQ(checkpoint_linearization(again.checkpoint, nullptr),
              checkpoint_linearization(w.import.checkpoint, nullptr));
    EXPECT_EQ(*checkpoint_lora(again.checkpoint), *checkpoint_lora(w.import.checkpoint));
    EXPECT_EQ(read_file(again.checkpoint + "/adapter.safetensors"),
              read_file(w.import.checkpoint + "/adapter.safetensors"));
    EXPECT_EQ(read_file(again.checkpoint + "/linear.safetensors"),
              read_file(w.import.checkpoint + "/linear.safetensors"));
    EXPECT_TRUE(again.notes.empty()) << again.notes.front();

    run("export --model " + kModel + " --workspace " + w.ws + " --run " + last + " --format peft --out " +
        tmp.file("peft"));
    json p =
        reference_json("check-peft --dir " + tmp.file("peft") + " --finetune " + w.dir + "/finetune.pt --lora-alpha 8");
    EXPECT_EQ(p.value("ok", false), true) << p.dump();
    EXPECT_TRUE(fs::exists(tmp.file("peft") + "/README.md"));

    // A stage-1 run has no adapters for PEFT: refused, and nothing is left behind.
    auto r = lincat::test::run_command(kLincat + " export --model " + kModel + " --workspace " + w.ws + " --run " +
                                       std::to_string(w.import.distill_run) + " --format peft --out " +
                                       tmp.file("peft1") + " 2>&1");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("has no LoRA adapters"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(tmp.file("peft1")));
}

// The merged export's README.md is a model card with the evaluation that was recorded.
TEST(LolcatsExport, ModelCardCarriesTheMethodAndTheEvaluation) {
    ASSERT_TRUE(fs::exists(kModel + "/config.json")) << kModel << " missing (ctest fixture tiny_models)";
    lincat::test::TempDir tmp;
    Written w = write_and_import(tmp, "lolcats", "--variant tk --window 16");
    std::string text;
    for (int i = 0; i < 4; ++i) text += "Every morning he rowed out past the rocks and came home with stories. ";
    write_file_atomic(tmp.file("text.txt"), text);
    const std::string last = std::to_string(w.import.finetune_run);
    auto e = lincat::test::run_command(kLincat + " eval --model " + kModel + " --workspace " + w.ws + " --run " + last +
                                       " --data " + tmp.file("text.txt") + " --seq-len 32 --json 2>&1");
    ASSERT_EQ(e.code, 0) << e.out;
    json doc = parse_json(e.out, "eval");
    auto x = lincat::test::run_command(kLincat + " export --model " + kModel + " --workspace " + w.ws + " --run " +
                                       last + " --out " + tmp.file("hf") + " 2>&1");
    ASSERT_EQ(x.code, 0) << x.out;
    // The base model is bf16 (config.json): the merged weights are cast once to it, and the
    // rounding of that cast is reported against the LoRA updates.
    EXPECT_NE(x.out.find("(bfloat16 weights"), std::string::npos) << x.out;
    EXPECT_NE(x.out.find("LoRA merged into 8 projections in fp32, cast once to bfloat16"), std::string::npos) << x.out;
    std::ifstream weights(tmp.file("hf") + "/model.safetensors", std::ios::binary);
    uint64_t header = 0;
    weights.read(reinterpret_cast<char*>(&header), 8);
    ASSERT_LT(header, uint64_t(1) << 20);
    std::string names(size_t(header), '\0');
    weights.read(names.data(), std::streamsize(header));
    EXPECT_NE(names.find("\"BF16\""), std::string::npos);
    EXPECT_EQ(names.find("\"F32\""), std::string::npos) << "fp32 weights under a bf16 config.json";
    const std::string card = read_file(tmp.file("hf") + "/README.md");
    char ppl[32];
    std::snprintf(ppl, sizeof ppl, "%.3f", doc["student_ppl"].get<double>());
    for (std::string needle :
         {std::string("base_model: "), std::string("tk (terraced blocks of 16)"), std::string("LoRA rank 4"),
          std::string("| perplexity |"), std::string(ppl), std::string("imported from the LoLCATs checkpoint")})
        EXPECT_NE(card.find(needle), std::string::npos) << "model card lacks '" << needle << "':\n" << card;
}

TEST(LolcatsImport, HostileAndBrokenFilesAreRefusedByName) {
    ASSERT_TRUE(fs::exists(kModel + "/config.json")) << kModel << " missing (ctest fixture tiny_models)";
    lincat::test::TempDir tmp;
    const std::string good = tmp.file("good"), bad = tmp.file("bad");
    reference_json("write --model " + kModel + " --out " + good + " --window 16");
    reference_json("hostile --from " + good + " --out " + bad);
    Workspace ws = Workspace::open(tmp.file("ws"));
    auto import = [&](const std::string& file, const std::string& config = "") {
        return import_lolcats(ws, kModel, {bad + "/" + file, "", config.empty() ? good + "/model.yaml" : config, ""});
    };
    using lincat::test::expect_error;
    expect_error([&] { import("evil_global.pt"); }, {"evil_global.pt", "posix.system", "nothing was run"});
    EXPECT_FALSE(fs::exists(bad + "/pwned")) << "the hostile pickle ran its command";
    expect_error([&] { import("truncated.pt"); }, {"truncated.pt", "not a torch.save zip"});
    expect_error([&] { import("not_a_dict.pt"); }, {"not_a_dict.pt", "holds a list"});
    expect_error([&] { import("no_state_dict.pt"); }, {"no_state_dict.pt", "no 'model_state_dict'"});
    expect_error(
        [&] { import("wrong_shape.pt"); },
        {"wrong_shape.pt", "model.layers.0.self_attn.feature_map_q.mlp.layer", "has shape [4,64,17]", "[4,64,16]"});
    expect_error([&] { import("unknown_key.pt"); }, {"unknown_key.pt", "model.layers.0.mlp.up_proj.weight"});
    expect_error(
        [&] {
            import_lolcats(ws, kModel, {good + "/finetune.pt", "", good + "/model.yaml", ""});
        },
        {"finetune.pt", "LoRA tensors", "--finetune"});
    // A LoLCATs variant we cannot run is refused by its config, before any tensor is read.
    std::string yaml = read_file(good + "/model.yaml");
    std::string other = yaml;
    other.replace(other.find("lolcats_llama_window_tk"), 23, "lolcats_llama_window_xx");
    write_file_atomic(tmp.file("other.yaml"), other);
    expect_error([&] { import("parameter.pt", tmp.file("other.yaml")); },
                 {"other.yaml", "attention_type 'lolcats_llama_window_xx'", "not supported"});
    EXPECT_TRUE(ws.runs().empty()) << "a refused import left a run behind";

    // Parameters (a LoLCATs run on the CPU saves them) and pickle protocol 4 are valid.
    EXPECT_GT(import("parameter.pt").distill_run, 0);
    EXPECT_GT(import("protocol4.pt").distill_run, 0);
}

// What we write is what we read, in every dtype a checkpoint uses.
TEST(TorchFile, WriteThenReadKeepsNamesOrderDtypesAndValues) {
    lincat::test::TempDir tmp;
    NamedTensors in = {{"b.first", torch::randn({3, 4})},
                       {"a.second", torch::randn({2, 5}).to(torch::kBFloat16)},
                       {"c.third", torch::arange(6, torch::kLong).view({2, 3})}};
    write_torch_state_dict(tmp.file("x.pt"), "model_state_dict", in, 7);
    int64_t step = 0;
    NamedTensors out = read_torch_state_dict(tmp.file("x.pt"), "model_state_dict", &step);
    EXPECT_EQ(step, 7);
    ASSERT_EQ(out.size(), in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        EXPECT_EQ(out[i].first, in[i].first);
        EXPECT_EQ(out[i].second.scalar_type(), in[i].second.scalar_type());
        EXPECT_TRUE(out[i].second.equal(in[i].second)) << in[i].first;
    }
    lincat::test::expect_error([&] { read_torch_state_dict(tmp.file("missing.pt"), "model_state_dict"); },
                               {"missing.pt", "no such file"});
}
