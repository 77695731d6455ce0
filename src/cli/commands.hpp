// The subcommands of dfptrain. Each adds itself to the app; main() runs whichever was named.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "models/image_input.hpp"

namespace dfp::cli {

void add_inspect_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_bench_command(CLI::App& app);

// Writes `value` as indented JSON to `path` (a --json option); throws dfp::Error naming the path.
void write_json_file(const std::string& path, const nlohmann::json& value);
// "HxWxC" (an --input option) -> the input of a model with `classes` classes; throws dfp::Error
// naming --input unless it has that form with positive sizes. In inspect.cpp.
models::ImageInput parse_image_input(const std::string& spec, std::int64_t classes);

}  // namespace dfp::cli
