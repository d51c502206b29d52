// One function per `lincat` command; each takes the arguments after the command name.
#pragma once

#include <string>
#include <vector>

namespace lincat::cli {

using Argv = std::vector<std::string>;

int cmd_import_llama2c(const Argv& argv);
int cmd_generate(const Argv& argv);
int cmd_ppl(const Argv& argv);
int cmd_models(const Argv& argv);
int cmd_bench(const Argv& argv);
int bench_decode(const Argv& argv);   // `lincat bench decode`
int bench_kernels(const Argv& argv);  // `lincat bench kernels` (CUDA)
int bench_load(const Argv& argv);     // `lincat bench load`: peak RSS of loading a model
int bench_train(const Argv& argv);    // `lincat bench train`: stage-1 / stage-2 step speed
int bench_sample(const Argv& argv);   // `lincat bench sample`: teacher sampling time
int bench_linear(const Argv& argv);   // `lincat bench linear`: linear layers at a few rows
int bench_batched(const Argv& argv);  // `lincat bench batched`: a stage-1 step's batched products
double sgemm_gflops();                // fp32 2048^3 matmul, best of 4: the rate the benches compare to
int cmd_distill(const Argv& argv);
int cmd_plan(const Argv& argv);
int cmd_finetune(const Argv& argv);
int cmd_linearize(const Argv& argv);
int cmd_eval(const Argv& argv);
int cmd_export(const Argv& argv);
int cmd_import_lolcats(const Argv& argv);
int cmd_ablate(const Argv& argv);
int cmd_dump_states(const Argv& argv);
int cmd_stitch(const Argv& argv);
int cmd_slurm(const Argv& argv);
int cmd_attention_map(const Argv& argv);
int cmd_position_error(const Argv& argv);
int cmd_resume(const Argv& argv);

}  // namespace lincat::cli
