// dfptrain eval: the test loss and accuracy of a checkpoint, on the data and in the precision it
// was trained with unless told otherwise.
#include <omp.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "base/error.hpp"
#include "cli/commands.hpp"
#include "data/classification.hpp"
#include "models/registry.hpp"
#include "precision/policy.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"

namespace dfp::cli {
namespace {

struct EvalOptions {
    std::string checkpoint;
    std::string data;       // empty: the checkpoint's
    std::string precision;  // empty: the checkpoint's
    int batch = 256;
    int threads = 0;
    std::string json_path;
};

// The checkpoint's value of `key`, or `fallback` when the run did not record it.
template <class T>
T saved(const nlohmann::json& config, const char* key, T fallback) {
    return config.contains(key) ? config[key].get<T>() : fallback;
}

void run_eval(const EvalOptions& o) {
    if (o.batch < 1) throw Error("--batch must be >= 1, got " + std::to_string(o.batch));
    if (o.threads < 0) throw Error("--threads must be >= 0");
    if (o.threads > 0) omp_set_num_threads(o.threads);
    const train::RunState state = train::read_checkpoint_state(o.checkpoint);
    const nlohmann::json& config = state.config;
    if (!config.contains("model"))
        throw Error("checkpoint '" + o.checkpoint + "' does not name its model");
    const std::string model = config["model"].get<std::string>();
    const std::string data_spec =
        o.data.empty() ? saved<std::string>(config, "data", "fashion-mnist") : o.data;
    const std::string spec =
        o.precision.empty() ? saved<std::string>(config, "precision", "fp32") : o.precision;
    const precision::Policy policy = precision::Policy::parse(spec);

    data::TrainTest d = data::read_dataset(data_spec);
    // The training subset fixes the standardisation the network was trained with.
    if (const auto limit = saved<std::int64_t>(config, "train_limit", 0); limit > 0)
        data::truncate(d.train, limit);
    data::standardize(d);

    nn::Net net =
        models::build(model, {d.test.height, d.test.width, d.test.channels, d.test.classes});
    net.apply_precision(policy);
    train::Sgd sgd(net.params(), {});  // holds the momentum buffers the checkpoint also carries
    train::load_checkpoint(o.checkpoint, net, sgd);
    const train::Evaluation e = train::evaluate(net, d.test, o.batch);
    std::printf(
        "%s after epoch %lld on %s (%lld test images), precision %s: test loss %.4f, test accuracy "
        "%.2f%% "
        "(top-5 %.2f%%)\n",
        model.c_str(), static_cast<long long>(state.epochs_done), data_spec.c_str(),
        static_cast<long long>(d.test.size()), spec.c_str(), e.loss, 100 * e.top1, 100 * e.top5);
    if (!o.json_path.empty()) {
        write_json_file(o.json_path, {{"model", model},      {"epoch", state.epochs_done},
                                      {"precision", spec},   {"test_loss", e.loss},
                                      {"test_top1", e.top1}, {"test_top5", e.top5}});
    }
}

}  // namespace

void add_eval_command(CLI::App& app) {
    auto o = std::make_shared<EvalOptions>();
    CLI::App* cmd = app.add_subcommand("eval", "Test loss and accuracy of a checkpoint");
    cmd->add_option("checkpoint", o->checkpoint,
                    "A checkpoint written by dfptrain train (DIR/last.ckpt)")
        ->required();
    cmd->add_option("--data", o->data,
                    "Data spec (default: the one the checkpoint was trained on)");
    cmd->add_option("--precision", o->precision, "Precision policy (default: the checkpoint's)");
    cmd->add_option("--batch", o->batch, "Images per forward pass");
    cmd->add_option("--threads", o->threads, "OpenMP threads (0: all cores)");
    cmd->add_option("--json", o->json_path, "Also write the result as JSON to this file");
    cmd->callback([o] { run_eval(*o); });
}

}  // namespace dfp::cli
