// The subcommands of dfptrain. Each adds itself to the app; main() runs whichever was named.
#pragma once

#include <CLI/CLI.hpp>

namespace dfp::cli {

void add_inspect_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_bench_command(CLI::App& app);

}  // namespace dfp::cli
