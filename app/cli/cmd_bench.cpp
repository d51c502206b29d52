// lincat bench: benchmarks that print tables of ratios measured in one run.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "util/error.h"

namespace lincat::cli {

int cmd_bench(const Argv& argv) {
    if (argv.empty()) fail("bench: name a benchmark: attention");
    fail("bench: unknown benchmark '", argv[0], "'");
}

}  // namespace lincat::cli
