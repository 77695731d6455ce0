// The subcommands of dfptrain. Each adds itself to the app; main() runs whichever was named.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace dfp::cli {

void add_inspect_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_bench_command(CLI::App& app);

// Writes `value` as indented JSON to `path` (a --json option); throws dfp::Error naming the path.
void write_json_file(const std::string& path, const nlohmann::json& value);

}  // namespace dfp::cli
