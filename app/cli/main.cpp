// lincat: the headless front of Lincat. The one place that turns an exception into a message.
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <map>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "util/events.h"
#include "util/progress.h"
#include "util/threads.h"

using namespace lincat::cli;

static void usage() {
    std::fprintf(
        stderr,
        "usage: lincat COMMAND [options]   (lincat COMMAND --help for its options)\n"
        "commands:\n"
        "  import-llama2c  convert a llama2.c model.bin + tokenizer.bin to a Hugging Face folder\n"
        "  generate        generate text from a prompt (prints tokens/s)\n"
        "  ppl             perplexity of a model over a text file\n"
        "  models          list the models in the cache\n"
        "  linearize       stage 1 + stage 2 + eval in one command (the main job)\n"
        "  distill         stage 1: attention transfer into hybrid layers (recorded in a workspace)\n"
        "  finetune        stage 2: LoRA finetune of a linearized model\n"
        "  ablate          linearization variants at the same tokens, one table (ppl, top-1, KL, MSE, state)\n"
        "  eval            teacher vs linearized: perplexity, top-1, KL, layer MSE, multiple choice\n"
        "  export          write a checkpoint as a merged Hugging Face folder, LoLCATs files or a PEFT adapter\n"
        "  import-lolcats  a LoLCATs checkpoint (distill.pt, finetune.pt, YAML) into workspace runs\n"
        "  plan            k-block planner: disk, GPU memory and time of block-wise stage 1\n"
        "  dump-states     block-wise: save the hidden state entering each block of k layers\n"
        "  stitch          block-wise: merge the trained blocks into one stage-1 run\n"
        "  slurm           block-wise: write sbatch scripts (dump, block array, stitch) from a plan\n"
        "  attention-map   teacher vs student attention weights of a prompt, layer and head (JSON)\n"
        "  position-error  where the hybrid loses: output MSE by query position and head\n"
        "  resume          continue an unfinished run of any kind from where it stopped\n"
        "  bench           benchmarks (bench attention, batched, decode, kernels, linear, load, sample, train)\n"
        "global option: --events fd:N|PATH  JSON-lines job events (progress, evaluations, result)\n");
}

int main(int argc, char** argv) {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    const std::map<std::string, std::function<int(const Argv&)>> commands = {
        {"import-llama2c", cmd_import_llama2c},
        {"generate", cmd_generate},
        {"ppl", cmd_ppl},
        {"models", cmd_models},
        {"linearize", cmd_linearize},
        {"distill", cmd_distill},
        {"finetune", cmd_finetune},
        {"eval", cmd_eval},
        {"ablate", cmd_ablate},
        {"export", cmd_export},
        {"import-lolcats", cmd_import_lolcats},
        {"plan", cmd_plan},
        {"dump-states", cmd_dump_states},
        {"stitch", cmd_stitch},
        {"slurm", cmd_slurm},
        {"attention-map", cmd_attention_map},
        {"position-error", cmd_position_error},
        {"resume", cmd_resume},
        {"bench", cmd_bench},
    };
    auto it = commands.find(argv[1]);
    if (it == commands.end()) {
        std::fprintf(stderr, "lincat: unknown command '%s'\n", argv[1]);
        usage();
        return 2;
    }
    // --events is global: taken out before the command parses its own options.
    Argv rest;
    std::string events;
    for (int i = 2; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--events") && i + 1 < argc)
            events = argv[++i];
        else
            rest.push_back(argv[i]);
    }
    try {
        if (!events.empty()) lincat::open_event_sink(events);
        lincat::init_torch_threads();
        lincat::set_progress_sink(print_core_progress);
        install_cancel_handler();
        return it->second(rest);
    } catch (const HelpRequested& h) {
        std::fputs(h.what(), stdout);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lincat %s: error: %s\n", argv[1], e.what());
        lincat::emit_event("error", {{"command", argv[1]}, {"message", e.what()}});
        return 1;
    }
}
