// dfptrain train: train a network on a real dataset in FP32, DFP16 or any precision policy, with
// the test accuracy after every epoch.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "cli/commands.hpp"
#include "data/classification.hpp"
#include "models/lenet.hpp"
#include "nn/loss.hpp"
#include "precision/policy.hpp"
#include "train/schedule.hpp"
#include "train/train_step.hpp"

namespace dfp::cli {
namespace {

struct TrainOptions {
    std::string model = "lenet5";
    std::string data = data::kFashionMnistDir;
    std::string precision = "dfp16";
    int epochs = 1;
    int batch = 64;
    double lr = 0.05;
    std::string schedule = "cosine";
    int warmup = 0;
    float momentum = 0.9f;
    float weight_decay = 5e-4f;
    bool nesterov = false;
    std::uint64_t seed = 1;
    std::int64_t train_limit = 0;
    std::int64_t test_limit = 0;
    int threads = 0;
    int log_every = 100;
    std::string json_path;
};

struct Eval {
    double loss;
    double accuracy;
};

Eval evaluate(nn::Net& net, const data::ImageDataset& d, int batch) {
    std::vector<float> images;
    std::vector<int> labels;
    std::vector<std::int64_t> idx;
    double loss_sum = 0;
    std::int64_t correct = 0;
    nn::Tensor diff;
    for (std::int64_t start = 0; start < d.size(); start += batch) {
        const std::int64_t b = std::min<std::int64_t>(batch, d.size() - start);
        idx.resize(static_cast<std::size_t>(b));
        for (std::int64_t i = 0; i < b; ++i) idx[i] = start + i;
        data::gather_batch(d, idx, images, labels);
        nn::Tensor x({static_cast<std::size_t>(b), static_cast<std::size_t>(d.height), static_cast<std::size_t>(d.width),
                      static_cast<std::size_t>(d.channels)});
        x.data = images;
        const nn::Tensor& logits = net.forward(x, {nn::Mode::eval, 0});
        loss_sum += static_cast<double>(nn::softmax_cross_entropy(logits, labels, diff)) * static_cast<double>(b);
        correct += nn::count_correct(logits, labels);
    }
    return {loss_sum / static_cast<double>(d.size()), static_cast<double>(correct) / static_cast<double>(d.size())};
}

train::LrSchedule make_schedule(const TrainOptions& o, std::int64_t total_iterations) {
    train::LrSchedule base = [&] {
        if (o.schedule == "constant") return train::constant_lr(o.lr);
        if (o.schedule == "cosine") return train::cosine_lr(o.lr, total_iterations);
        if (o.schedule == "step") return train::step_lr(o.lr, std::max<std::int64_t>(1, total_iterations / 3), 0.1);
        throw Error("--schedule: expected constant, cosine or step, got '" + o.schedule + "'");
    }();
    return o.warmup > 0 ? train::linear_warmup(o.warmup, 0.1, base) : base;
}

void run_train(const TrainOptions& o) {
    if (o.model != "lenet5") throw Error("--model: unknown model '" + o.model + "' (available: lenet5)");
    if (o.epochs < 1) throw Error("--epochs must be >= 1");
    if (o.batch < 1) throw Error("--batch must be >= 1");
    if (!(o.lr > 0)) throw Error("--lr must be > 0");
    const precision::Policy policy = precision::Policy::parse(o.precision);
    if (o.threads > 0) omp_set_num_threads(o.threads);

    data::TrainTest d = data::read_fashion_mnist(o.data);
    if (o.train_limit > 0) data::truncate(d.train, o.train_limit);
    if (o.test_limit > 0) data::truncate(d.test, o.test_limit);
    data::standardize(d);

    nn::Net net = models::lenet5({d.train.height, d.train.width, d.train.channels, d.train.classes});
    net.apply_precision(policy);
    train::Sgd sgd(net.params(), {o.momentum, o.weight_decay, o.nesterov});
    const std::int64_t iters_per_epoch = (d.train.size() + o.batch - 1) / o.batch;
    const train::LrSchedule lr = make_schedule(o, iters_per_epoch * o.epochs);

    std::printf("dfptrain train: %s on %s (%lld train, %lld test images), %d epoch(s), batch %d, %d thread(s)\n",
                o.model.c_str(), o.data.c_str(), static_cast<long long>(d.train.size()),
                static_cast<long long>(d.test.size()), o.epochs, o.batch, omp_get_max_threads());
    std::printf("precision: %s\n", policy.describe().c_str());
    std::string layers = net.precision_summary();
    while (!layers.empty() && layers.back() == '\n') layers.pop_back();
    for (char& ch : layers) ch = ch == '\n' ? ',' : ch;
    std::printf("layers: %s\n", layers.c_str());

    nlohmann::json epochs = nlohmann::json::array();
    std::vector<float> images;
    std::vector<int> labels;
    std::int64_t iteration = 0;
    for (int epoch = 0; epoch < o.epochs; ++epoch) {
        const auto order = data::epoch_order(d.train.size(), o.seed, epoch);
        const auto t0 = std::chrono::steady_clock::now();
        double loss_sum = 0;
        std::int64_t correct = 0, seen = 0;
        for (std::int64_t start = 0; start < d.train.size(); start += o.batch, ++iteration) {
            const std::int64_t b = std::min<std::int64_t>(o.batch, d.train.size() - start);
            data::gather_batch(d.train, std::span(order).subspan(start, b), images, labels);
            nn::Tensor x({static_cast<std::size_t>(b), static_cast<std::size_t>(d.train.height),
                          static_cast<std::size_t>(d.train.width), static_cast<std::size_t>(d.train.channels)});
            x.data = images;
            const auto s = train::train_step(net, sgd, x, labels, static_cast<float>(lr(iteration)), iteration);
            loss_sum += static_cast<double>(s.loss) * static_cast<double>(b);
            correct += s.correct;
            seen += b;
            if (o.log_every > 0 && (iteration + 1) % o.log_every == 0)
                std::printf("  iteration %lld: loss %.4f, lr %.4g\n", static_cast<long long>(iteration + 1), s.loss,
                            lr(iteration));
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const Eval test = evaluate(net, d.test, o.batch);
        const double train_loss = loss_sum / static_cast<double>(seen);
        const double train_acc = static_cast<double>(correct) / static_cast<double>(seen);
        std::printf("epoch %d/%d: train loss %.4f, train accuracy %.2f%%, test loss %.4f, test accuracy %.2f%%, "
                    "%.1f s (%.0f images/s)\n",
                    epoch + 1, o.epochs, train_loss, 100 * train_acc, test.loss, 100 * test.accuracy, seconds,
                    static_cast<double>(seen) / seconds);
        std::fflush(stdout);
        epochs.push_back({{"epoch", epoch + 1},
                          {"train_loss", train_loss},
                          {"train_accuracy", train_acc},
                          {"test_loss", test.loss},
                          {"test_accuracy", test.accuracy},
                          {"seconds", seconds},
                          {"images_per_second", static_cast<double>(seen) / seconds}});
    }
    if (!o.json_path.empty()) {
        std::ofstream out(o.json_path);
        out << nlohmann::json{{"model", o.model}, {"precision", policy.describe()}, {"epochs", epochs}}.dump(2) << "\n";
        if (!out) throw Error("cannot write '" + o.json_path + "'");
    }
}

}  // namespace

void add_train_command(CLI::App& app) {
    auto o = std::make_shared<TrainOptions>();
    CLI::App* cmd = app.add_subcommand("train", "Train a network on Fashion-MNIST in FP32, DFP16 or a mixed policy");
    cmd->add_option("--model", o->model, "Network (lenet5)");
    cmd->add_option("--data", o->data, "Folder with the Fashion-MNIST IDX files");
    cmd->add_option("--precision", o->precision,
                    "fp32, dfp16 (the paper: first and last layer FP32), or a spec such as "
                    "'dfp16,first=dfp16,gradients.rounding=stochastic' (see precision/policy.hpp)");
    cmd->add_option("--epochs", o->epochs, "Passes over the training set");
    cmd->add_option("--batch", o->batch, "Images per iteration");
    cmd->add_option("--lr", o->lr, "Peak learning rate");
    cmd->add_option("--schedule", o->schedule, "Learning-rate schedule: constant, cosine or step (x0.1 every third)");
    cmd->add_option("--warmup", o->warmup, "Iterations of linear warm-up from 0.1 lr");
    cmd->add_option("--momentum", o->momentum, "SGD momentum");
    cmd->add_option("--weight-decay", o->weight_decay, "L2 weight decay");
    cmd->add_flag("--nesterov", o->nesterov, "Nesterov momentum");
    cmd->add_option("--seed", o->seed, "Seed of the data order (weights are seeded by their names)");
    cmd->add_option("--train-limit", o->train_limit, "Use only the first N training images (0: all)");
    cmd->add_option("--test-limit", o->test_limit, "Use only the first N test images (0: all)");
    cmd->add_option("--threads", o->threads, "OpenMP threads (0: all cores)");
    cmd->add_option("--log-every", o->log_every, "Print the loss every N iterations (0: never)");
    cmd->add_option("--json", o->json_path, "Write the per-epoch metrics as JSON to this file");
    cmd->callback([o] { run_train(*o); });
}

}  // namespace dfp::cli
