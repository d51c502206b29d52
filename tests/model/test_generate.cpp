// Generation: batched rows match single-row decoding; the linearized model's decode state
// does not grow with the number of generated tokens, the softmax KV cache does.
#include "model/generate.h"

#include "attention/linearize.h"
#include "test_util.h"
#include "util/threads.h"

using namespace lincat;

TEST(Generate, BatchedGreedyRowsEqualSingleRowAndStateScalesWithRows) {
    init_torch_threads();
    std::string dir = lincat::test::default_model_dir();
    for (bool linear : {false, true}) {
        LlamaModel m = load_llama(dir);
        if (linear) {
            LinearizeOptions o;
            o.window.size = 8;
            torch::manual_seed(0);
            linearize(m, o);
        }
        GenerateOptions g;
        g.max_new_tokens = 40;
        g.stop_at_eos = false;
        std::vector<int32_t> prompt = {1, 9038, 2501, 263, 931};
        GenerateResult one = generate(m, prompt, g);
        g.batch = 3;
        GenerateResult three = generate(m, prompt, g);
        ASSERT_EQ(three.rows.size(), 3u);
        for (auto& row : three.rows) EXPECT_EQ(row, one.tokens) << (linear ? "linearized" : "softmax");
        // Per-row tensors scale with rows; the ring buffer's shared position index does not.
        EXPECT_NEAR(double(three.state_bytes) / double(one.state_bytes), 3.0, 0.01);

        // Sampled rows differ from each other (same prompt, one generator).
        g.temperature = 1.0;
        GenerateResult sampled = generate(m, prompt, g);
        EXPECT_NE(sampled.rows[0], sampled.rows[1]);

        // Twice the tokens: the KV cache grows, the hybrid state (past its window) does not.
        g.temperature = 0, g.batch = 1, g.max_new_tokens = 80;
        GenerateResult longer = generate(m, prompt, g);
        if (linear)
            EXPECT_EQ(longer.state_bytes, one.state_bytes);
        else
            EXPECT_GT(longer.state_bytes, one.state_bytes * 3 / 2);
    }
}
