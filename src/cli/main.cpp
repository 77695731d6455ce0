// dfptrain: train CNNs with Dynamic Fixed Point integer arithmetic.
#include <exception>
#include <iostream>

#include "base/error.hpp"
#include "cli/commands.hpp"

int main(int argc, char** argv) {
    CLI::App app{"dfptrain: CNN training with Dynamic Fixed Point (INT16/INT8) integer arithmetic"};
    app.require_subcommand(1);
    dfp::cli::add_inspect_command(app);
    dfp::cli::add_train_command(app);
    dfp::cli::add_bench_command(app);
    try {
        app.parse(argc, argv);  // runs the chosen subcommand's callback
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const dfp::Error& e) {
        std::cerr << "dfptrain: error: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "dfptrain: internal error: " << e.what() << "\n";
        return 2;
    }
    return 0;
}
