// Evaluation: multiple-choice scoring as lm-evaluation-harness does it, the eval JSON
// document, teacher-vs-student comparison, and the records an eval leaves in the workspace.
#include "eval/evaluate.h"
#include "model/fingerprint.h"

#include "attention/linearize.h"
#include "eval/compare.h"
#include "eval/multiple_choice.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "util/file.h"
#include "util/json.h"
#include "util/threads.h"

using namespace lincat;
using lincat::test::TempDir;

namespace {

const char* kTinyTask =
    R"({"context": "Once upon a time, there was a little", "choices": [" girl named Lily.", " tax quantum refrigerator."], "gold": 0}
{"context": "Tom and his mom went to the", "choices": [" epistemology", " park"], "gold": 1}
{"context": "The sun was", "choices": [" shining in the sky.", " seventeen purple equations."], "gold": 0}

{"context": "She was very ", "choices": ["happy.", "hexagonal."], "gold": 0}
)";

double sequence_logprob(LlamaModel& m, const std::vector<int32_t>& ids) {
    torch::NoGradGuard ng;
    auto x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).view({1, -1});
    auto logp = torch::log_softmax(m->forward(x), -1)[0];
    double s = 0;
    for (size_t i = 1; i < ids.size(); ++i) s += logp[int64_t(i) - 1][ids[i]].item<double>();
    return s;
}

}  // namespace

TEST(MultipleChoice, TeacherSolvesATinyHandMadeTask) {
    init_torch_threads();
    TempDir d;
    write_file_atomic(d.file("tiny_stories.jsonl"), kTinyTask);
    McTask task = load_mc_task(d.file("tiny_stories.jsonl"));
    EXPECT_EQ(task.name, "tiny_stories");
    ASSERT_EQ(task.items.size(), 4u);  // the blank line is skipped
    std::string dir = lincat::test::default_model_dir();
    LlamaModel m = load_llama(dir);
    Tokenizer tok = Tokenizer::load_dir(dir);
    McScore s = score_mc(m, tok, task);
    EXPECT_EQ(s.n, 4);
    EXPECT_DOUBLE_EQ(s.acc, 1.0);
    EXPECT_DOUBLE_EQ(s.acc_stderr, 0.0);

    // A choice's log-likelihood is log p(context + choice) - log p(context): the causal
    // model's chain rule, computed here from two whole-sequence forwards.
    const McItem& item = task.items[2];
    auto ll = choice_logliks(m, tok, item);
    for (size_t c = 0; c < item.choices.size(); ++c) {
        double expect = sequence_logprob(m, tok.encode(item.context + item.choices[c], true)) -
                        sequence_logprob(m, tok.encode(item.context, true));
        EXPECT_NEAR(ll[c], expect, 1e-3) << item.choices[c];
    }

    // Gold flipped on two items: acc 0.5, stderr sqrt(p(1-p)/(n-1)) as the harness reports it.
    task.items[0].gold = 1;
    task.items[1].gold = 0;
    s = score_mc(m, tok, task);
    EXPECT_DOUBLE_EQ(s.acc, 0.5);
    EXPECT_NEAR(s.acc_stderr, std::sqrt(0.25 / 3), 1e-12);
}

TEST(MultipleChoice, BadTaskFilesNameFileLineAndField) {
    TempDir d;
    auto check = [&](const std::string& text, std::initializer_list<std::string> needles) {
        write_file_atomic(d.file("t.jsonl"), text);
        lincat::test::expect_error([&] { load_mc_task(d.file("t.jsonl")); }, needles);
    };
    check("{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"gold\": 0}\n{oops\n", {"t.jsonl:2"});
    check("{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"gold\": 2}\n", {"t.jsonl:1", "'gold'"});
    check("{\"context\": \"a\", \"choices\": [\"b\"], \"gold\": 0}\n", {"'choices'"});
    check("{\"choices\": [\"b\", \"c\"], \"gold\": 0}\n", {"'context'"});
    check("\n\n", {"no tasks"});
    lincat::test::expect_error([&] { load_mc_task(d.file("absent.jsonl")); }, {"absent.jsonl"});
}

TEST(Eval, DocumentHasTheSchemaAndIsRecorded) {
    init_torch_threads();
    TempDir d;
    std::string dir = lincat::test::default_model_dir();
    // An untrained linearization (window 8): a real, imperfect student.
    LlamaModel m = load_llama(dir);
    LinearizeOptions o;
    o.window.size = 8;
    torch::manual_seed(0);
    linearize(m, o);
    save_linear_checkpoint(d.file("ckpt"), m, o, model_fingerprint(dir));
    write_file_atomic(d.file("tiny_stories.jsonl"), kTinyTask);
    write_file_atomic(d.file("story.txt"),
                      "Once upon a time, there was a little boy named Tim. Tim liked to play with his red ball in "
                      "the park. One day, the ball rolled into the pond. Tim was sad. His friend Sue came and "
                      "helped him get the ball back. Tim said thank you, and they played together all day.\n");
    Workspace ws = Workspace::open(d.file("ws"));
    EvalConfig c;
    c.checkpoint = d.file("ckpt");
    c.text_files = {d.file("story.txt")};
    c.data.seq_len = 32;
    c.tasks = {d.file("tiny_stories.jsonl")};
    json doc = json::parse(evaluate_checkpoint(ws, dir, c));

    for (const char* key : {"teacher_ppl", "student_ppl", "top1_agreement", "kl"})
        ASSERT_TRUE(doc.contains(key) && doc[key].is_number()) << key;
    EXPECT_GT(doc["teacher_ppl"].get<double>(), 1.0);
    EXPECT_GT(doc["student_ppl"].get<double>(), doc["teacher_ppl"].get<double>());  // untrained: worse
    EXPECT_GE(doc["top1_agreement"].get<double>(), 0.0);
    EXPECT_LE(doc["top1_agreement"].get<double>(), 1.0);
    EXPECT_GT(doc["kl"].get<double>(), 0.0);
    ASSERT_TRUE(doc["layer_mse"].is_array());
    ASSERT_EQ(doc["layer_mse"].size(), 6u);
    for (auto& v : doc["layer_mse"]) EXPECT_GT(v.get<double>(), 0.0);
    // lm-evaluation-harness layout.
    auto& r = doc["results"]["tiny_stories"];
    for (const char* key : {"acc,none", "acc_stderr,none", "acc_norm,none", "acc_norm_stderr,none"})
        ASSERT_TRUE(r.contains(key) && r[key].is_number()) << key;
    EXPECT_EQ(doc["teacher_results"]["tiny_stories"]["acc,none"].get<double>(), 1.0);
    EXPECT_EQ(doc["n-samples"]["tiny_stories"]["effective"].get<int64_t>(), 4);

    RunRecord run = ws.run(doc["run"].get<int64_t>());
    EXPECT_EQ(run.kind, RunKind::Eval);
    EXPECT_EQ(run.status, RunStatus::Completed);
    ASSERT_TRUE(ws.run_results(run.id).has_value());
    EXPECT_EQ(json::parse(*ws.run_results(run.id))["student_ppl"], doc["student_ppl"]);
    ASSERT_EQ(ws.steps(run.id, "eval").size(), 1u);
    EXPECT_EQ(ws.steps(run.id, "eval")[0].layer_mse.size(), 6u);

    // A teacher compared with itself: identical in every figure.
    LlamaModel t1 = load_llama(dir), t2 = load_llama(dir);
    auto rows = torch::randint(3, 32000, {2, 24}, torch::kLong);
    ModelComparison same = compare_models(t1, t2, rows);
    EXPECT_DOUBLE_EQ(same.teacher_ppl, same.student_ppl);
    EXPECT_DOUBLE_EQ(same.top1_agreement, 1.0);
    EXPECT_NEAR(same.kl, 0.0, 1e-6);
    EXPECT_TRUE(same.layer_mse.empty());  // no hybrid layers

    // A missing task file is refused before a run is recorded.
    const size_t runs = ws.runs().size();
    c.tasks = {d.file("nope.jsonl")};
    lincat::test::expect_error([&] { evaluate_checkpoint(ws, dir, c); }, {"nope.jsonl"});
    EXPECT_EQ(ws.runs().size(), runs);
}
