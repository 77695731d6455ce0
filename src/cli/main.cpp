// dfptrain: train CNNs with Dynamic Fixed Point integer arithmetic.
#include <exception>
#include <fstream>
#include <iostream>
#include <new>

#include "base/error.hpp"
#include "cli/commands.hpp"

namespace {
// Exit status: 0 done, 2 bad input (files, options, data, memory; one line names the cause),
// 3 a bug in dfptrain.
constexpr int kBadInput = 2;
constexpr int kInternalError = 3;
}  // namespace

namespace dfp::cli {

void write_json_file(const std::string& path, const nlohmann::json& value) {
    std::ofstream out(path);
    out << value.dump(2) << "\n";
    if (!out) throw Error("--json: cannot write '" + path + "'");
}

}  // namespace dfp::cli

int main(int argc, char** argv) {
    CLI::App app{"dfptrain: CNN training with Dynamic Fixed Point (INT16/INT8) integer arithmetic"};
    app.require_subcommand(1);
    dfp::cli::add_inspect_command(app);
    dfp::cli::add_train_command(app);
    dfp::cli::add_eval_command(app);
    dfp::cli::add_bench_command(app);
    try {
        app.parse(argc, argv);  // runs the chosen subcommand's callback
    } catch (const CLI::ParseError& e) {
        // --help and --version are "errors" that exit 0; a bad option line is bad input, named
        // in one error line like every other.
        if (e.get_exit_code() == 0) return app.exit(e);
        std::cerr << "dfptrain: error: " << e.what() << " (dfptrain --help lists the options)\n";
        return kBadInput;
    } catch (const dfp::Error& e) {
        std::cerr << "dfptrain: error: " << e.what() << "\n";
        return kBadInput;
    } catch (const std::bad_alloc&) {
        std::cerr << "dfptrain: error: out of memory (try a smaller --batch)\n";
        return kBadInput;
    } catch (const std::exception& e) {
        std::cerr << "dfptrain: internal error: " << e.what() << "\n";
        return kInternalError;
    }
    return 0;
}
