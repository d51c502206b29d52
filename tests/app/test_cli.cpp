// The lincat binary end to end: what a user types, what they see.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "test_util.h"
#include "store/workspace.h"
#include "util/file.h"
#include "util/json.h"

using namespace lincat;

namespace {

using Result = lincat::test::CommandResult;

Result run(const std::string& args) {
    return lincat::test::run_command(std::string(LINCAT_BINARY_DIR) + "/lincat " + args + " 2>&1");
}

}  // namespace

TEST(Cli, GenerateGreedyDefaultModel) {
    lincat::test::default_model_dir();
    Result r = run("generate --greedy --max-new-tokens 30");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out.rfind("Once upon a time, there was a little girl named Lily.", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("tokens/s"), std::string::npos) << r.out;
}

TEST(Cli, PerplexityOfAFile) {
    lincat::test::TempDir d;
    FILE* f = std::fopen(d.file("story.txt").c_str(), "w");
    std::fputs("Once upon a time, there was a little boy named Tim. Tim liked to play with his red ball.", f);
    std::fclose(f);
    Result r = run("ppl --data " + d.file("story.txt"));
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("perplexity"), std::string::npos) << r.out;
}

TEST(Cli, ErrorsAreMessagesNotCrashes) {
    Result r = run("frobnicate");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.out.find("unknown command 'frobnicate'"), std::string::npos) << r.out;
    r = run("generate --bogus 3");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("unknown option --bogus"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--max-new-tokens"), std::string::npos) << r.out;  // lists the options
    r = run("ppl --data /nonexistent/story.txt");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("/nonexistent/story.txt"), std::string::npos) << r.out;
    r = run("generate --model /nonexistent/model");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("/nonexistent/model"), std::string::npos) << r.out;
    r = run("generate --help");
    EXPECT_EQ(r.code, 0);
    EXPECT_NE(r.out.find("usage: lincat generate"), std::string::npos) << r.out;
}

TEST(Cli, DeviceAndDtypeOptions) {
    lincat::test::default_model_dir();
    // bf16 weights on the CPU take the same path a GPU's default does: the story stays the same
    // for its first words (bf16 rounds the weights, so later tokens may differ).
    Result r = run("generate --greedy --max-new-tokens 12 --device cpu --dtype bf16");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out.rfind("Once upon a time", 0), 0u) << r.out;
    r = run("generate --device tpu");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("'tpu' is not cpu, cuda or cuda:N"), std::string::npos) << r.out;
    r = run("generate --dtype fp8");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("'fp8' is not auto, fp32 or bf16"), std::string::npos) << r.out;
    r = run("generate --device cuda --max-new-tokens 2");
    if (r.code == 0) {
        std::printf("a CUDA LibTorch with a GPU: generate --device cuda ran\n");
    } else if (r.out.find("LibTorch without CUDA") != std::string::npos) {
        // Debian's LibTorch: the same clear error from every command that computes, before any work.
        for (const char* cmd :
             {"generate", "ppl", "eval", "distill", "finetune", "linearize", "bench decode", "bench kernels"}) {
            const bool takes_ws = std::string(cmd) != "bench kernels";
            r = run(std::string(cmd) + " --device cuda" + (takes_ws ? " --workspace /nonexistent-ws" : ""));
            EXPECT_EQ(r.code, 1) << cmd;
            EXPECT_NE(r.out.find("LibTorch without CUDA"), std::string::npos) << cmd << ": " << r.out;
            EXPECT_FALSE(std::filesystem::exists("/nonexistent-ws")) << cmd;
        }
    } else {
        EXPECT_NE(r.out.find("sees no GPU"), std::string::npos) << r.out;  // CUDA LibTorch, no device
    }
    r = run("bench kernels");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("--device cuda"), std::string::npos) << r.out;
}

TEST(Cli, GenerateWithMissingCheckpointNamesIt) {
    Result r = run("generate --checkpoint /nonexistent/ckpt --max-new-tokens 3");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("/nonexistent/ckpt"), std::string::npos) << r.out;
}

TEST(Cli, DistillRefusesBadOptionsBeforeRecordingARun) {
    lincat::test::TempDir d;
    Result r = run("distill --workspace " + d.file("ws") + " --layers 0,9 --steps 1");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("layer 9 does not exist"), std::string::npos) << r.out;
    EXPECT_TRUE(Workspace::open(d.file("ws")).runs().empty());
    r = run("distill --workspace " + d.file("ws") + " --window 0");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("--window"), std::string::npos) << r.out;
}

TEST(Cli, PlanJsonFor405B) {
    Result r = run("plan --preset llama-3.1-405b --tokens 50M --k 9 --json");
    ASSERT_EQ(r.code, 0) << r.out;
    json j = parse_json(r.out, "plan --json");
    ASSERT_EQ(j["rows"].size(), 1u);
    EXPECT_EQ(j["rows"][0]["blocks"], 14);
    EXPECT_NEAR(j["rows"][0]["disk_bytes"].get<double>() / 1e12, 22.9, 0.1);
    EXPECT_TRUE(j["recommended_k"].is_number());
    r = run("plan --preset llama-3.1-405b --k 0");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("k = 0"), std::string::npos) << r.out;
}

TEST(Cli, BenchAttentionJsonRows) {
    Result r = run("bench attention --json --n 256,512 --context 256 --shapes stories15m --steps 4 2>/dev/null");
    ASSERT_EQ(r.code, 0) << r.out;
    json rows = parse_json(r.out, "bench --json");
    ASSERT_TRUE(rows.is_array());
    ASSERT_EQ(rows.size(), 3u);  // two prefill rows, one decode row
    for (const json& row : rows)
        for (const char* key :
             {"kind", "n", "heads", "head_dim", "softmax_ms", "hybrid_ms", "softmax_peak_bytes", "hybrid_peak_bytes"})
            EXPECT_TRUE(row.contains(key)) << key;
    EXPECT_EQ(rows[0]["kind"], "prefill");
    EXPECT_EQ(rows[1]["n"], 512);
    EXPECT_EQ(rows[2]["kind"], "decode");
    EXPECT_GT(rows[0]["hybrid_ms"].get<double>(), 0.0);
    EXPECT_GT(rows[0]["hybrid_peak_bytes"].get<int64_t>(), 0);
}

TEST(Cli, BenchDecodeStateIsFlatForTheLinearizedModelAndGrowsForTheTeacher) {
    lincat::test::default_model_dir();
    Result r = lincat::test::run_command(std::string(LINCAT_BINARY_DIR) +
                                         "/lincat bench decode --context 128,512 --steps 2 --json 2>/dev/null");
    ASSERT_EQ(r.code, 0) << r.out;
    json rows = parse_json(r.out, "bench decode --json");
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0]["linear_state_bytes"], rows[1]["linear_state_bytes"]);  // constant in context
    // KV cache: 2 (k, v) x 6 layers x 288 x 4 bytes per token.
    const int64_t per_token = 2 * 6 * 288 * 4;
    EXPECT_EQ(rows[0]["teacher_state_bytes"].get<int64_t>(), (128 + 3) * per_token);
    EXPECT_EQ(rows[1]["teacher_state_bytes"].get<int64_t>(), (512 + 3) * per_token);
    EXPECT_GT(rows[1]["linear_tokens_per_second"].get<double>(), 0.0);

    // Past --teacher-up-to only the linearized model runs (the teacher's prefill is quadratic).
    r = lincat::test::run_command(
        std::string(LINCAT_BINARY_DIR) +
        "/lincat bench decode --context 32,96 --teacher-up-to 64 --steps 2 --json 2>/dev/null");
    ASSERT_EQ(r.code, 0) << r.out;
    rows = parse_json(r.out, "bench decode --json");
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_TRUE(rows[0].contains("teacher_tokens_per_second"));
    EXPECT_FALSE(rows[1].contains("teacher_tokens_per_second"));
    EXPECT_GT(rows[1]["linear_tokens_per_second"].get<double>(), 0.0);
}

TEST(Cli, BenchTrainTimesEveryFormAndThePlainPyTorchStep) {
    lincat::test::default_model_dir();
    const bool have_torch = std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
    if (!have_torch) std::printf("note: /usr/bin/python3 has no torch; the plain PyTorch row is not checked\n");
    Result r = lincat::test::run_command(std::string(LINCAT_BINARY_DIR) +
                                         "/lincat bench train --seq 32 --batch 1 --steps 1 --warmup 0 --json" +
                                         (have_torch ? "" : " --python ''") + " 2>/dev/null");
    ASSERT_EQ(r.code, 0) << r.out;
    json doc = parse_json(r.out, "bench train --json");
    EXPECT_GT(doc["sgemm_gflops"].get<double>(), 0.0);
    std::set<std::string> forms;
    for (auto& row : doc["rows"]) {
        forms.insert(row["stage"].get<std::string>() + ": " + row["form"].get<std::string>());
        EXPECT_GT(row["tokens_per_s"].get<double>(), 0.0) << row.dump();
        EXPECT_GT(row["gflops"].get<double>(), 0.0) << "every row counts its work: " << row.dump();
    }
    for (auto want : {"stage 1: teacher forward only", "stage 1: lincat, reference", "stage 1: lincat, shared scores",
                      "stage 2: lincat, reference", "stage 2: lincat, fused loss"})
        EXPECT_EQ(forms.count(want), 1u) << want;
    if (have_torch) {
        bool plain = false;
        for (auto& f : forms) plain = plain || f.rfind("stage 1: plain PyTorch", 0) == 0;
        EXPECT_TRUE(plain) << r.out;
    }
}

TEST(Cli, BenchSampleTimesEachPrecisionAndSplitsItsTime) {
    lincat::test::default_model_dir();
    Result r = lincat::test::run_command(std::string(LINCAT_BINARY_DIR) +
                                         "/lincat bench sample --sequences 3 --len 6 --dtypes model,bf16 --json "
                                         "2>/dev/null");
    ASSERT_EQ(r.code, 0) << r.out;
    json rows = parse_json(r.out, "bench sample --json");
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0]["computes_in"], "Float");
    EXPECT_EQ(rows[1]["computes_in"], "BFloat16");
    for (auto& row : rows) {
        EXPECT_EQ(row["batch_rows"].get<int64_t>(), 3) << row.dump();
        const double total = row["seconds"].get<double>();
        EXPECT_GT(row["forward_seconds"].get<double>(), 0.0) << row.dump();
        EXPECT_GT(row["pick_seconds"].get<double>(), 0.0) << row.dump();
        EXPECT_LE(row["forward_seconds"].get<double>() + row["pick_seconds"].get<double>(), total) << row.dump();
        EXPECT_NEAR(row["tokens_per_s"].get<double>(), 3 * 5 / total, 1e-6 * (3 * 5 / total));
    }
    r = lincat::test::run_command(std::string(LINCAT_BINARY_DIR) + "/lincat bench sample --dtypes fp16 2>&1");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("sample_dtype 'fp16'"), std::string::npos) << r.out;
}

TEST(Cli, BenchLinearTimesEachLayerShapeBothWaysAndMarksTheSlicedRows) {
    lincat::test::default_model_dir();
    Result r = lincat::test::run_command(std::string(LINCAT_BINARY_DIR) +
                                         "/lincat bench linear --rows 1,9 --dtypes fp32 --json 2>/dev/null");
    ASSERT_EQ(r.code, 0) << r.out;
    json rows = parse_json(r.out, "bench linear --json");
    std::set<std::string> layers;
    for (auto& row : rows) {
        layers.insert(row["layer"].get<std::string>());
        EXPECT_GT(row["torch_us"].get<double>(), 0.0) << row.dump();
        EXPECT_GT(row["one_pass_us"].get<double>(), 0.0) << row.dump();
        EXPECT_NEAR(row["speedup"].get<double>(), row["torch_us"].get<double>() / row["one_pass_us"].get<double>(),
                    1e-9 * row["speedup"].get<double>());
        // 9 rows is past the one-pass limit (8 fp32 rows): timed in slices, not what the model uses.
        EXPECT_EQ(row["one_pass_used"].get<bool>(), row["rows"].get<int64_t>() == 1) << row.dump();
    }
    // stories15M: q/k/v/o share 288x288, so q_proj stands for them; up and down differ; the head.
    EXPECT_EQ(layers, (std::set<std::string>{"q_proj", "up_proj", "down_proj", "lm_head"}));
    EXPECT_EQ(rows.size(), 2 * layers.size());
    r = lincat::test::run_command(std::string(LINCAT_BINARY_DIR) + "/lincat bench linear --dtypes fp16 2>&1");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("unknown precision 'fp16'"), std::string::npos) << r.out;
}

TEST(Cli, BenchBatchedTimesEachProductOfAStage1StepBothWays) {
    lincat::test::default_model_dir();
    Result r = lincat::test::run_command(std::string(LINCAT_BINARY_DIR) +
                                         "/lincat bench batched --batch 2 --seq 128 --rounds 1 --json 2>/dev/null");
    ASSERT_EQ(r.code, 0) << r.out;
    json rows = parse_json(r.out, "bench batched --json");
    ASSERT_EQ(rows.size(), 7u);
    for (auto& row : rows) {
        const double flops = 2.0 * row["batches"].get<double>() * row["m"].get<double>() * row["k"].get<double>() *
                             row["n"].get<double>();
        EXPECT_NEAR(row["batched_gflops"].get<double>(), flops / row["batched_us"].get<double>() / 1e3,
                    1e-9 * row["batched_gflops"].get<double>())
            << row.dump();
        EXPECT_NEAR(row["speedup"].get<double>(), row["torch_us"].get<double>() / row["batched_us"].get<double>(),
                    1e-9 * row["speedup"].get<double>());
    }
    // stories15M: 6 heads, batch 2; 128 tokens in windows of 64 are 3 chunks (one of padding).
    EXPECT_EQ(rows[2]["batches"].get<int64_t>(), 2 * 6 * 3);
}

TEST(Cli, AblateGivesOneRowPerVariantAndStageFromOneCommand) {
    lincat::test::default_model_dir();
    lincat::test::TempDir d;
    Result r = lincat::test::run_command(
        std::string(LINCAT_BINARY_DIR) + "/lincat ablate --workspace " + d.file("ws") +
        " --variants 'lolcats; window=16 stage2=off; keep_softmax=5' --seq-len 64 --teacher-sequences 16"
        " --stage1-steps 2 --stage2-steps 1 --json 2>/dev/null");
    ASSERT_EQ(r.code, 0) << r.out;
    std::vector<json> rows;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) rows.push_back(parse_json(line, "ablate --json"));
    ASSERT_EQ(rows.size(), 5u) << r.out;  // lolcats x 2 stages, window=16 stage 1 only, keep_softmax x 2
    auto at = [&](const std::string& v, const std::string& stage) {
        for (auto& row : rows)
            if (row["variant"] == v && row["stage"] == stage) return row;
        ADD_FAILURE() << "no row " << v << " / " << stage;
        return json::object();
    };
    json lol1 = at("lolcats", "stage 1"), lol2 = at("lolcats", "stage 2"), w16 = at("window=16 stage2=off", "stage 1");
    json keep = at("keep_softmax=5", "stage 1");
    for (auto& row : rows) {
        EXPECT_GT(row["student_ppl"].get<double>(), 0.0) << row.dump();
        EXPECT_EQ(row["teacher_ppl"], lol1["teacher_ppl"]) << "every variant is judged on the same held-out rows";
    }
    EXPECT_EQ(w16["tokens"], lol1["tokens"]);  // the same stage-1 budget
    EXPECT_GT(lol2["trained_parameters"].get<int64_t>(), lol1["trained_parameters"].get<int64_t>());  // + LoRA
    EXPECT_LT(keep["trained_parameters"].get<int64_t>(), lol1["trained_parameters"].get<int64_t>());
    EXPECT_EQ(keep["layers"].size(), 5u);
    // Constant memory when every layer is hybrid; a softmax layer's KV cache grows by K and V per token.
    EXPECT_EQ(lol1["state_bytes_per_token"].get<int64_t>(), 0);
    EXPECT_EQ(keep["state_bytes_per_token"].get<int64_t>(), 2 * 288 * 4);  // stories15M: kv dim 288, fp32
    EXPECT_LT(w16["state_bytes"].get<int64_t>(), lol1["state_bytes"].get<int64_t>());
    // At 64 tokens a tk window of 64 covers every query (two blocks): flagged; one of 16 does not.
    EXPECT_TRUE(lol1["window_covers_sequence"].get<bool>());
    EXPECT_FALSE(w16["window_covers_sequence"].get<bool>());
    // Each row is kept with its evaluation in the workspace (the studio's run comparison reads it).
    Workspace ws = Workspace::open(d.file("ws"));
    int64_t kept = 0;
    for (auto& run : ws.runs()) {
        if (run.kind != RunKind::Eval) continue;
        json doc = parse_json(*ws.run_results(run.id), "eval results");
        ASSERT_TRUE(doc.contains("ablation")) << doc.dump();
        const json& row = at(doc["ablation"]["variant"], doc["ablation"]["stage"]);
        EXPECT_EQ(doc["ablation"]["state_bytes"], row["state_bytes"]);
        EXPECT_EQ(doc["ablation"]["trained_parameters"], row["trained_parameters"]);
        ++kept;
    }
    EXPECT_EQ(kept, 5);
}

TEST(Cli, LinearizeKeepSoftmaxNamesABadLayer) {
    lincat::test::default_model_dir();
    lincat::test::TempDir d;
    Result r = lincat::test::run_command(std::string(LINCAT_BINARY_DIR) + "/lincat linearize --workspace " +
                                         d.file("ws") + " --keep-softmax 4,9 2>&1");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("--keep-softmax: keep_softmax layer 9 not in [0, 6)"), std::string::npos) << r.out;
}

// A gated run (--gate decay) is a recorded option: it trains, decodes through its gated state,
// and export to LoLCATs' layout, which has no gate, is refused by file and field.
TEST(Cli, GatedRunTrainsGeneratesAndRefusesTheLolcatsLayout) {
    lincat::test::default_model_dir();
    lincat::test::TempDir d;
    std::string ws = d.file("ws");
    Result r = run("distill --workspace " + ws +
                   " --steps 2 --window 16 --gate gla --seq-len 64 --teacher-sequences 8 "
                   "--batch-size 2 --eval-every 2 --checkpoint-every 2");
    ASSERT_EQ(r.code, 0) << r.out;
    r = run("generate --workspace " + ws + " --run 1 --max-new-tokens 40 --greedy --prompt \"Once upon a time\"");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("linearized"), std::string::npos) << r.out;
    r = run("export --workspace " + ws + " --run 1 --format lolcats --out " + d.file("lolcats"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("linearization.json: field 'gate' is 'gla'"), std::string::npos) << r.out;
    EXPECT_FALSE(std::filesystem::exists(d.file("lolcats")));
}

TEST(Cli, FinetuneEvalGenerateAndExportThroughTheWorkspace) {
    lincat::test::default_model_dir();
    lincat::test::TempDir d;
    std::string ws = d.file("ws");
    std::string small = " --seq-len 64 --teacher-sequences 16 --batch-size 2 --eval-every 2 --checkpoint-every 2";
    Result r = run("distill --workspace " + ws + " --steps 2 --window 16" + small);
    ASSERT_EQ(r.code, 0) << r.out;
    r = run("finetune --workspace " + ws +
            " --run 1 --steps 2 --lora-rank 4 --batch-size 2 --eval-every 2 "
            "--checkpoint-every 2");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("stage 2"), std::string::npos) << r.out;
    Result e =
        lincat::test::run_command(std::string(LINCAT_BINARY_DIR) + "/lincat eval --workspace " + ws +
                                  " --run 2 --max-rows 2 --json --output " + d.file("eval.json") + " 2>/dev/null");
    ASSERT_EQ(e.code, 0) << e.out;
    json doc = parse_json(e.out, "eval --json");
    EXPECT_EQ(doc["layer_mse"].size(), 5u);  // stage 1 handed one of the 6 layers back to softmax
    EXPECT_EQ(parse_json(lincat::read_file(d.file("eval.json")), "eval.json")["kl"], doc["kl"]);
    r = run("generate --workspace " + ws + " --run 2 --max-new-tokens 8 --prompt \"Once upon a time\"");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("linearized"), std::string::npos) << r.out;
    r = run("generate --run 2 --max-new-tokens 8");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("--workspace"), std::string::npos) << r.out;
    r = run("export --workspace " + ws + " --run 2 --out " + d.file("exported"));
    ASSERT_EQ(r.code, 0) << r.out;
    r = run("generate --model " + d.file("exported") + " --checkpoint " + d.file("exported") +
            "/linearization --max-new-tokens 8");
    EXPECT_EQ(r.code, 0) << r.out;
    r = run("finetune --workspace " + ws + " --run 99");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("no run 99"), std::string::npos) << r.out;
}

// position-error on a run: where the window ends, figures per layer and position, a cache in
// the workspace that a damaged file cannot fool, an eval run standing for the run it evaluated,
// and distill --keep-softmax (those layers are not measured: they are softmax).
TEST(Cli, PositionErrorOfARunIsCachedAndNamesWhatItCannotDo) {
    lincat::test::default_model_dir();
    lincat::test::TempDir d;
    const std::string ws = d.file("ws");
    const std::string small = " --seq-len 64 --teacher-sequences 16 --batch-size 2 --eval-every 2 --checkpoint-every 2";
    Result r = run("distill --workspace " + ws + " --steps 2 --window 16" + small);  // run 1
    ASSERT_EQ(r.code, 0) << r.out;
    auto json_of = [&](const std::string& args) {
        Result j = lincat::test::run_command(std::string(LINCAT_BINARY_DIR) + "/lincat position-error --json " + args +
                                             " 2>/dev/null");
        EXPECT_EQ(j.code, 0) << j.out;
        return parse_json(j.out, "position-error --json");
    };
    json doc = json_of("--workspace " + ws + " --run 1 --rows 2");
    EXPECT_EQ(doc["layers"].size(), 5u);  // stage 1 handed one of the 6 layers back to softmax
    EXPECT_EQ(doc["window_edge"], 32);    // tk 16, start-aligned blocks
    EXPECT_EQ(doc["mse"][0].size(), 64u);
    EXPECT_EQ(doc["head_mse"][4].size(), 6u);
    EXPECT_GT(doc["beyond_mse"].get<double>(), 1e3 * doc["inside_mse"].get<double>());
    const std::string cache = ws + "/analysis/position-error-run-1-rows-2.json";
    ASSERT_TRUE(std::filesystem::exists(cache));
    r = run("position-error --workspace " + ws + " --run 1 --rows 2");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("(cached"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("the linear part starts at position 32"), std::string::npos) << r.out;
    write_file_atomic(cache, "{\"layers\": [0]}");  // damaged: recomputed, not believed
    r = run("position-error --workspace " + ws + " --run 1 --rows 2");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("recomputing"), std::string::npos) << r.out;
    EXPECT_EQ(parse_json(read_file(cache), cache)["mse"].size(), 5u);

    r = run("eval --workspace " + ws + " --run 1 --max-rows 1");  // run 2
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(json_of("--workspace " + ws + " --run 2 --rows 2")["run"], 1);  // the run it evaluated

    r = run("distill --workspace " + ws + " --steps 1 --window 16 --keep-softmax 4,5" + small);  // run 3
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(json_of("--workspace " + ws + " --run 3 --rows 1")["layers"], json({0, 1, 2, 3}));

    r = run("distill --workspace " + ws + " --steps 1 --keep-softmax 4 --layers 1" + small);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("not both"), std::string::npos) << r.out;
    // Text files instead of a run: fresh feature maps on the user's rows (tk 64 by default).
    std::string story;
    for (int i = 0; i < 40; ++i) story += "Once upon a time, there was a little girl named Lily. She loved to play. ";
    write_file_atomic(d.file("story.txt"), story);
    json text = json_of("--data " + d.file("story.txt") + " --seq-len 200 --rows 2");
    EXPECT_EQ(text["rows"], 2);
    EXPECT_EQ(text["window_edge"], 128);
    r = run("position-error --data " + d.file("story.txt") + " --seq-len 100000");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("position-error: the text files hold"), std::string::npos) << r.out;
    r = run("position-error");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("--data"), std::string::npos) << r.out;
    r = run("position-error --workspace " + ws + " --run 99");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("99"), std::string::npos) << r.out;
}

// Llama 3 and Qwen 3 (tiny random models in the real layout, ctest fixture tiny_models):
// linearize end to end (stage 1, stage 2, evaluation), then generate from the linearized run.
TEST(Cli, LinearizeAndGenerateOnTinyLlama3AndQwen3) {
    // Llama 3 runs both stages; Qwen 3 skips stage 2 (--stage2 off) and ends on stage 1.
    for (const char* family : {"llama3", "qwen3"}) {
        const bool stage2 = std::string(family) == "llama3";
        std::string dir = std::string(LINCAT_BINARY_DIR) + "/tiny-models/" + family;
        ASSERT_TRUE(std::filesystem::exists(dir + "/config.json")) << dir << " missing (ctest fixture tiny_models)";
        lincat::test::TempDir d;
        std::string ws = d.file("ws");
        // 12 KB of the tokenizer corpus (many languages, code, special tokens in the text).
        std::string corpus = lincat::read_file(std::string(LINCAT_FIXTURES) + "/tokenizer_corpus.txt");
        std::string data = d.file("data.txt");
        lincat::write_file_atomic(data, corpus.substr(0, corpus.find("\n=====\n", 12000)));
        Result r = lincat::test::run_command(std::string(LINCAT_BINARY_DIR) + "/lincat linearize --model " + dir +
                                             " --workspace " + ws + " --data " + data +
                                             " --seq-len 64 --window 16 --stage1-steps 3 --stage2-steps 2 --json" +
                                             (stage2 ? " --stage2 on" : " --stage2 off") + " --events " +
                                             d.file("events.jsonl") + " 2>" + d.file("log"));
        ASSERT_EQ(r.code, 0) << family << ": " << lincat::read_file(d.file("log"));
        json doc = parse_json(r.out, "linearize --json");
        // The JSON-lines events beside the human lines: each stage's run, every step, the
        // evaluations, and the final result (the same document --json printed).
        std::map<std::string, int> count;
        json last_progress, result;
        std::istringstream events(lincat::read_file(d.file("events.jsonl")));
        for (std::string line; std::getline(events, line);) {
            json e = parse_json(line, "events.jsonl");
            ASSERT_TRUE(e["time"].is_number()) << line;
            ++count[e["event"].get<std::string>()];
            if (e["event"] == "progress") last_progress = e;
            if (e["event"] == "result") result = e;
        }
        // Stage 1 and its evaluation, then stage 2 and its evaluation.
        EXPECT_EQ(count["run"], stage2 ? 4 : 2) << family;
        EXPECT_EQ(count["progress"], stage2 ? 3 + 2 : 3) << family;  // one per optimizer step
        EXPECT_GE(count["evaluation"], stage2 ? 2 : 1) << family;
        EXPECT_EQ(count["result"], 1) << family;
        EXPECT_EQ(last_progress["done"], last_progress["total"]);
        EXPECT_EQ(result["stage1_run"], doc["stage1_run"]);
        EXPECT_GT(doc["tokens"].get<int64_t>(), 0) << family;
        EXPECT_TRUE(std::isfinite(doc["student_ppl"].get<double>())) << family << ": " << r.out;
        {  // stage 1 has its own Eval run (the studio's run tree shows its figures)
            Workspace w = Workspace::open(ws);
            auto own = w.run_results(doc["stage1_eval_run"].get<int64_t>());
            ASSERT_TRUE(own) << family;
            json s1 = parse_json(*own, "stage-1 evaluation");
            EXPECT_EQ(s1["config"]["source_run"], doc["stage1_run"]) << family;
            EXPECT_DOUBLE_EQ(s1["student_ppl"].get<double>(), doc["stage1_ppl"].get<double>()) << family;
            // Both evaluations score the teacher on the same rows the same way.
            EXPECT_DOUBLE_EQ(s1["teacher_ppl"].get<double>(), doc["teacher_ppl"].get<double>()) << family;
        }
        if (!stage2) {
            EXPECT_FALSE(doc.contains("stage2_run")) << family;
            EXPECT_NE(doc["stage2_skipped"].get<std::string>().find("--stage2 off"), std::string::npos);
            EXPECT_DOUBLE_EQ(doc["student_ppl"].get<double>(), doc["stage1_ppl"].get<double>());
            continue;
        }
        EXPECT_EQ(result["stage2_run"], doc["stage2_run"]);
        const int64_t run_id = doc["stage2_run"];
        r = run("generate --model " + dir + " --workspace " + ws + " --run " + std::to_string(run_id) +
                " --max-new-tokens 8 --greedy --json --prompt \"Hello, world\"");
        ASSERT_EQ(r.code, 0) << family << ": " << r.out;
        json g = parse_json(r.out.substr(r.out.find('{')), "generate --json");
        EXPECT_TRUE(g["linearized"].get<bool>()) << family;
        EXPECT_GT(g["tokens"].get<int64_t>(), 0) << family;
    }
}
