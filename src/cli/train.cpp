// dfptrain train: train a network on a real dataset in FP32, DFP16 or any precision policy, with
// the test accuracy after every epoch, checkpoints and exact resumption.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/isa.hpp"
#include "cli/commands.hpp"
#include "data/classification.hpp"
#include "data/prefetch.hpp"
#include "dist/communicator.hpp"
#include "dist/data_parallel.hpp"
#include "dist/grad_exchange.hpp"
#include "integer/boundary.hpp"
#include "models/registry.hpp"
#include "nn/loss.hpp"
#include "precision/policy.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"
#include "train/memory.hpp"
#include "train/schedule.hpp"
#include "train/train_step.hpp"

namespace dfp::cli {
namespace {

// The integer layers' speed comes from AVX512-VNNI (vpdpwssd, vpdpbusd); elsewhere they fall back
// to AVX2 or scalar kernels, which train the same numbers but slower than oneDNN's FP32. Said
// once at the start, so that a slow run on such a CPU is not taken for a fault.
void note_integer_isa() {
    const Isa isa = active_isa();
    if (isa >= Isa::avx512_vnni) return;
    if (cpu_isa() >= Isa::avx512_vnni)
        std::printf("note: integer kernels on %s as DFP_ISA asks: slower than on AVX512-VNNI\n",
                    isa_name(isa));
    else
        std::printf(
            "note: integer kernels on %s: this CPU has no AVX512-VNNI, so the integer layers run "
            "slower than FP32 here (same arithmetic, no VNNI speed-up)\n",
            isa_name(isa));
}

struct TrainOptions {
    std::string model = "lenet5";
    std::string data = "fashion-mnist";
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
    std::string metrics_path;
    std::string checkpoint_dir;
    bool resume = false;
    int stop_after_epoch = 0;
    data::AugmentOptions augment;
    bool no_prefetch = false;  // changes when batches are made, never what they hold
    // Data-parallel runs (mpirun -np N); a plain process ignores these.
    std::string grad_exchange = "fp32";  // exact by default; dfp16 halves the bytes
    double mpi_timeout = 600;
    int check_weights_every = 100;
    bool sync_bn = false;
    // --precision int8 only (NITI): mu per equal share of the run, the 16-bit weight accumulator.
    std::string mu = "4,3,2";
    bool int8_weight_accumulator = false;

    // What must be the same for a resumed run to continue the saved one. `ranks` > 1 only under
    // mpirun: a single process keeps the config (and checkpoints) it always had.
    nlohmann::json run_config(int ranks) const {
        nlohmann::json config = {{"model", model},
                                 {"data", data},
                                 {"precision", precision},
                                 {"epochs", epochs},
                                 {"batch", batch},
                                 {"lr", lr},
                                 {"schedule", schedule},
                                 {"warmup", warmup},
                                 {"momentum", momentum},
                                 {"weight_decay", weight_decay},
                                 {"nesterov", nesterov},
                                 {"seed", seed},
                                 {"train_limit", train_limit},
                                 {"test_limit", test_limit}};
        // Only when on, so that checkpoints of runs without augmentation keep their config.
        if (augment.crop_pad > 0) config["augment_crop"] = augment.crop_pad;
        if (augment.flip) config["augment_flip"] = true;
        if (ranks > 1) {
            config["ranks"] = ranks;
            config["grad_exchange"] = grad_exchange;
            if (sync_bn) config["sync_bn"] = true;
        }
        return config;
    }
};

constexpr const char* kCheckpointName = "last.ckpt";

train::LrSchedule make_schedule(const TrainOptions& o, std::int64_t total_iterations) {
    train::LrSchedule base = [&] {
        if (o.schedule == "constant") return train::constant_lr(o.lr);
        if (o.schedule == "cosine") return train::cosine_lr(o.lr, total_iterations);
        if (o.schedule == "step")
            return train::step_lr(o.lr, std::max<std::int64_t>(1, total_iterations / 3), 0.1);
        throw Error("--schedule: expected constant, cosine or step, got '" + o.schedule + "'");
    }();
    return o.warmup > 0 ? train::linear_warmup(o.warmup, 0.1, base) : base;
}

void check_options(const TrainOptions& o) {
    // Checked here, before the data are read; models::build would say the same later.
    try {
        models::check_name(o.model);
    } catch (const Error& e) {
        throw Error(std::string("--model: ") + e.what());
    }
    if (o.epochs < 1) throw Error("--epochs must be >= 1, got " + std::to_string(o.epochs));
    if (o.batch < 1) throw Error("--batch must be >= 1, got " + std::to_string(o.batch));
    if (!(o.lr > 0)) throw Error("--lr must be > 0");
    if (o.warmup < 0 || o.threads < 0 || o.log_every < 0 || o.train_limit < 0 || o.test_limit < 0)
        throw Error(
            "--warmup, --threads, --log-every, --train-limit and --test-limit must be >= 0");
    if (o.augment.crop_pad < 0)
        throw Error("--augment-crop must be >= 0, got " + std::to_string(o.augment.crop_pad));
    if (o.resume && o.checkpoint_dir.empty()) throw Error("--resume needs --checkpoint-dir");
    if (o.stop_after_epoch < 0) throw Error("--stop-after-epoch must be >= 0");
    if (o.stop_after_epoch > 0 && o.checkpoint_dir.empty())
        throw Error("--stop-after-epoch needs --checkpoint-dir (else the work would be lost)");
    dist::parse_grad_exchange(o.grad_exchange);
    if (!(o.mpi_timeout > 0)) throw Error("--mpi-timeout must be > 0 seconds");
    if (o.check_weights_every < 0) throw Error("--check-weights-every must be >= 0");
}

// Creates the folder and proves it writable now, not after the first epoch's work.
void prepare_checkpoint_dir(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    const std::string probe = (std::filesystem::path(dir) / ".write-test").string();
    std::ofstream out(probe);
    if (ec || !out) throw Error("--checkpoint-dir '" + dir + "' cannot be created or written");
    out.close();
    std::filesystem::remove(probe, ec);
}

// Appends one JSON line to the metrics file (if any) and flushes it, so a crash loses nothing.
class MetricsFile {
  public:
    explicit MetricsFile(const std::string& path, bool append) {
        if (path.empty()) return;
        out_.open(path, append ? std::ios::app : std::ios::trunc);
        if (!out_) throw Error("--metrics: cannot write '" + path + "'");
    }
    void write(const nlohmann::json& record) {
        if (!out_.is_open()) return;
        out_ << record.dump() << "\n";
        out_.flush();
    }

  private:
    std::ofstream out_;
};

// On a terminal, one line redrawn in place with the epoch's progress, ETA, running loss and
// accuracy and images/s; elsewhere (logs, CI) nothing: the plain iteration lines stand instead.
// Not under mpirun, which gives the ranks a terminal even when its own output goes to a file.
class ProgressBar {
  public:
    explicit ProgressBar(bool allowed) : enabled_(allowed && ::isatty(STDOUT_FILENO) != 0) {}
    bool enabled() const { return enabled_; }
    // At most ten redraws a second.
    bool due(double now) {
        if (!enabled_ || now - last_ < 0.1) return false;
        last_ = now;
        return true;
    }
    void draw(std::int64_t epoch, std::int64_t epochs, std::int64_t done, std::int64_t total,
              double loss, double accuracy, double images_per_s) {
        constexpr int kWidth = 30;
        const double frac = static_cast<double>(done) / static_cast<double>(total);
        const int filled = static_cast<int>(frac * kWidth);
        const double eta = images_per_s > 0 ? static_cast<double>(total - done) / images_per_s : 0;
        std::printf(
            "\repoch %lld/%lld [%.*s%*s] %3.0f%% loss %.4f acc %.2f%% %.0f img/s ETA %.0f s   ",
            static_cast<long long>(epoch), static_cast<long long>(epochs), filled,
            "==============================", kWidth - filled, "", 100 * frac, loss, 100 * accuracy,
            images_per_s, eta);
        std::fflush(stdout);
    }
    void clear() {
        if (!enabled_) return;
        std::printf("\r%*s\r", 110, "");
        last_ = 0;
    }

  private:
    bool enabled_;
    double last_ = 0;
};

data::TrainTest load_data(const TrainOptions& o) {
    data::TrainTest d = data::read_dataset(o.data);
    if (o.train_limit > 0) data::truncate(d.train, o.train_limit);
    if (o.test_limit > 0) data::truncate(d.test, o.test_limit);
    data::standardize(d);
    return d;
}

void print_epoch(std::int64_t epoch, int epochs, double train_loss, double train_top1,
                 const train::Evaluation& test, double seconds, std::int64_t seen) {
    std::printf(
        "epoch %lld/%d: train loss %.4f, train accuracy %.2f%%, test loss %.4f, test accuracy "
        "%.2f%% "
        "(top-5 %.2f%%), %.1f s (%.0f images/s)\n",
        static_cast<long long>(epoch), epochs, train_loss, 100 * train_top1, test.loss,
        100 * test.top1, 100 * test.top5, seconds, static_cast<double>(seen) / seconds);
    std::fflush(stdout);
}

// --mu "4,3,2": each value rules an equal share of the iterations, in order.
std::vector<int> parse_mu(const std::string& spec) {
    std::vector<int> out;
    std::size_t start = 0;
    while (start <= spec.size()) {
        const std::size_t end = std::min(spec.find(',', start), spec.size());
        const std::string item = spec.substr(start, end - start);
        std::size_t used = 0;
        int mu = 0;
        try {
            mu = std::stoi(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != item.size() || mu < integer::kMinMu || mu > integer::kMaxMu)
            throw Error("--mu: expected comma-separated integers " +
                        std::to_string(integer::kMinMu) + ".." + std::to_string(integer::kMaxMu) +
                        ", got '" + spec + "'");
        out.push_back(mu);
        start = end + 1;
    }
    return out;
}

// NITI's integer-only training (integer/): int8 weights, activations and gradients, no FP32
// master weights, so none of the SGD options apply; the update's mu is the learning rate.
void run_train_int8(const TrainOptions& o) {
    const std::vector<std::string> integer_models = models::integer_names();
    std::string list;
    for (const std::string& n : integer_models) list += (list.empty() ? "" : ", ") + n;
    if (std::find(integer_models.begin(), integer_models.end(), o.model) == integer_models.end())
        throw Error("--precision int8: model '" + o.model +
                    "' cannot train integer-only (it has batch-norm, biases or other layers "
                    "without an int8 version); integer models: " +
                    list);
    if (!o.checkpoint_dir.empty() || o.resume || o.stop_after_epoch > 0)
        throw Error(
            "--precision int8: checkpoints (--checkpoint-dir, --resume, --stop-after-epoch) are "
            "not supported by the integer engine yet");
    const std::vector<int> mu = parse_mu(o.mu);
    if (o.threads > 0) omp_set_num_threads(o.threads);
    const data::TrainTest d = load_data(o);
    nn::Net fp32 =
        models::build(o.model, {d.train.height, d.train.width, d.train.channels, d.train.classes});
    integer::IntNet net = integer::from_net(fp32, o.model);
    const std::int64_t iters_per_epoch = (d.train.size() + o.batch - 1) / o.batch;
    const std::int64_t total = iters_per_epoch * o.epochs;
    MetricsFile metrics(o.metrics_path, false);

    std::printf(
        "dfptrain train: %s on %s (%lld train, %lld test images), %d epoch(s), batch %d, %d "
        "thread(s)\n",
        o.model.c_str(), o.data.c_str(), static_cast<long long>(d.train.size()),
        static_cast<long long>(d.test.size()), o.epochs, o.batch, omp_get_max_threads());
    std::printf("precision: int8 (NITI integer-only: int8 tensors, mu %s, %s weights)\n",
                o.mu.c_str(), o.int8_weight_accumulator ? "16-bit accumulated" : "int8");
    std::string layers;
    for (const auto& layer : net.layers())
        layers += (layers.empty() ? "" : ",") + layer->name() + " int8";
    std::printf("layers: %s\n", layers.c_str());
    note_integer_isa();

    const auto start = std::chrono::steady_clock::now();
    const auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    std::vector<int> labels;
    nn::Tensor images;
    integer::Int8Tensor images_q;
    std::int64_t iteration = 0;
    for (std::int64_t epoch = 0; epoch < o.epochs; ++epoch) {
        data::BatchPrefetcher batches(d.train, data::epoch_order(d.train.size(), o.seed, epoch),
                                      o.batch, o.augment, o.seed, epoch, !o.no_prefetch);
        const double epoch_start = elapsed();
        double loss_sum = 0;
        std::int64_t correct = 0, seen = 0;
        for (std::int64_t first = 0; first < d.train.size(); first += o.batch, ++iteration) {
            const std::int64_t b = std::min<std::int64_t>(o.batch, d.train.size() - first);
            batches.next(images.data, labels);
            images.shape = {static_cast<std::size_t>(b), static_cast<std::size_t>(d.train.height),
                            static_cast<std::size_t>(d.train.width),
                            static_cast<std::size_t>(d.train.channels)};
            integer::quantize_images(images, images_q);
            const integer::UpdateRule rule{
                mu[static_cast<std::size_t>(iteration * std::int64_t(mu.size()) / total)],
                o.int8_weight_accumulator};
            const std::int64_t hits = net.train_step(images_q, labels, rule, o.seed, iteration);
            const double loss = integer::mean_loss(net.output(), labels);
            loss_sum += loss * static_cast<double>(b);
            correct += hits;
            seen += b;
            if (o.log_every > 0 && (iteration + 1) % o.log_every == 0) {
                const double ips = static_cast<double>(seen) / (elapsed() - epoch_start);
                std::printf("  iteration %lld: loss %.4f, mu %d, %.0f images/s\n",
                            static_cast<long long>(iteration + 1), loss, rule.mu, ips);
                metrics.write({{"epoch", epoch + 1},
                               {"iter", iteration + 1},
                               {"loss", loss},
                               {"train_top1", static_cast<double>(hits) / static_cast<double>(b)},
                               {"mu", rule.mu},
                               {"images_per_s", ips},
                               {"elapsed_s", elapsed()}});
            }
        }
        const double seconds = elapsed() - epoch_start;
        const train::Evaluation test = integer::evaluate(net, d.test, o.batch);
        const double train_loss = loss_sum / static_cast<double>(seen);
        const double train_top1 = static_cast<double>(correct) / static_cast<double>(seen);
        print_epoch(epoch + 1, o.epochs, train_loss, train_top1, test, seconds, seen);
        metrics.write({{"epoch", epoch + 1},
                       {"iter", iteration},
                       {"loss", train_loss},
                       {"train_top1", train_top1},
                       {"test_top1", test.top1},
                       {"test_top5", test.top5},
                       {"images_per_s", static_cast<double>(seen) / seconds},
                       {"elapsed_s", elapsed()}});
    }
}

void run_train(const TrainOptions& o) {
    check_options(o);
    // Under mpirun: one rank of synchronous data-parallel SGD; --batch is the global batch.
    const std::unique_ptr<dist::Communicator> comm =
        dist::Communicator::join_if_launched(o.mpi_timeout);
    if (o.precision == "int8") {
        if (comm) throw Error("--precision int8 trains in one process: run it without mpirun");
        return run_train_int8(o);
    }
    const int ranks = comm ? comm->size() : 1, rank = comm ? comm->rank() : 0;
    const bool lead = rank == 0;  // alone prints, writes metrics and checkpoints
    if (!lead && !std::freopen("/dev/null", "w", stdout))
        throw Error("rank " + std::to_string(rank) + ": cannot silence stdout");
    if (o.batch % ranks != 0)
        throw Error("--batch " + std::to_string(o.batch) +
                    " (the global batch) must be a multiple of the " + std::to_string(ranks) +
                    " ranks");
    const int local_batch = o.batch / ranks;
    const precision::Policy policy = precision::Policy::parse(o.precision);
    if (!o.checkpoint_dir.empty() && lead) prepare_checkpoint_dir(o.checkpoint_dir);
    if (o.threads > 0) omp_set_num_threads(o.threads);
    // Ranks on one machine share its cores: by default (no --threads, no OMP_NUM_THREADS) each
    // takes its part, never all of them.
    else if (comm && !std::getenv("OMP_NUM_THREADS"))
        omp_set_num_threads(std::max(1, omp_get_num_procs() / comm->local_size()));
    const data::TrainTest d = load_data(o);

    nn::Net net =
        models::build(o.model, {d.train.height, d.train.width, d.train.channels, d.train.classes});
    net.apply_precision(policy);
    train::check_batch_fits(net, {d.train.height, d.train.width, d.train.channels, d.train.classes},
                            local_batch, std::min<std::int64_t>(local_batch, d.train.size()),
                            train::available_memory());
    train::Sgd sgd(net.params(), {o.momentum, o.weight_decay, o.nesterov});
    std::unique_ptr<dist::GradientExchange> exchange;
    if (ranks > 1)
        exchange = std::make_unique<dist::GradientExchange>(
            *comm, net, dist::parse_grad_exchange(o.grad_exchange));
    if (exchange && o.sync_bn) {
        dist::check_batches_for_sync_bn(d.train.size(), o.batch, ranks);
        dist::synchronise_batch_norm(*comm, net, *exchange);
    }
    const std::int64_t iters_per_epoch = (d.train.size() + o.batch - 1) / o.batch;
    const train::LrSchedule lr = make_schedule(o, iters_per_epoch * o.epochs);

    const std::string checkpoint =
        o.checkpoint_dir.empty()
            ? ""
            : (std::filesystem::path(o.checkpoint_dir) / kCheckpointName).string();
    train::RunState state{0, 0, o.run_config(ranks)};
    if (o.resume) {
        const train::RunState saved = train::load_checkpoint(checkpoint, net, sgd);
        const int saved_ranks = saved.config.value("ranks", 1);
        if (saved_ranks != ranks)
            throw Error("--resume: the checkpoint's run had " + std::to_string(saved_ranks) +
                        " rank(s), this one has " + std::to_string(ranks) +
                        " (resume with the same mpirun -np)");
        for (const auto& [key, value] : state.config.items())
            if (!saved.config.contains(key) || saved.config[key] != value)
                throw Error("--resume: option '" + key + "' is " + value.dump() +
                            " but the checkpoint's run used " +
                            (saved.config.contains(key) ? saved.config[key].dump() : "nothing"));
        // Options present only when on (augmentation) must not be dropped on resume either.
        for (const auto& [key, value] : saved.config.items())
            if (!state.config.contains(key))
                throw Error("--resume: the checkpoint's run used option '" + key +
                            "' = " + value.dump() + ", this one does not");
        state = saved;
    }
    MetricsFile metrics(lead ? o.metrics_path : "", o.resume);

    std::printf(
        "dfptrain train: %s on %s (%lld train, %lld test images), %d epoch(s), batch %d, %d "
        "thread(s)\n",
        o.model.c_str(), o.data.c_str(), static_cast<long long>(d.train.size()),
        static_cast<long long>(d.test.size()), o.epochs, o.batch, omp_get_max_threads());
    if (exchange)
        std::printf(
            "data-parallel: %d ranks, global batch %d (%d per rank), gradient exchange %s, batch "
            "norm %s\n",
            ranks, o.batch, local_batch, o.grad_exchange.c_str(),
            o.sync_bn ? "synchronised" : "per rank");
    std::printf("precision: %s\n", policy.describe().c_str());
    std::string layers = net.precision_summary();
    while (!layers.empty() && layers.back() == '\n') layers.pop_back();
    for (char& ch : layers) ch = ch == '\n' ? ',' : ch;
    std::printf("layers: %s\n", layers.c_str());
    if (layers.find("dfp") != std::string::npos) note_integer_isa();
    if (o.resume)
        std::printf("resumed from '%s' after epoch %lld\n", checkpoint.c_str(),
                    static_cast<long long>(state.epochs_done));

    const auto start = std::chrono::steady_clock::now();
    const auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    std::vector<int> labels;
    nn::Tensor images;
    ProgressBar progress(!comm);
    for (std::int64_t epoch = state.epochs_done; epoch < o.epochs; ++epoch) {
        // Every rank draws the same global order and trains on its share of each global batch.
        std::vector<std::int64_t> order = data::epoch_order(d.train.size(), o.seed, epoch);
        if (ranks > 1) order = dist::shard_order(order, o.batch, ranks, rank);
        data::BatchPrefetcher batches(d.train, std::move(order), local_batch, o.augment, o.seed,
                                      epoch, !o.no_prefetch);
        const double epoch_start = elapsed();
        double loss_sum = 0;
        std::int64_t correct = 0, seen = 0;  // this rank's samples
        for (std::int64_t first = 0; first < d.train.size(); first += o.batch, ++state.iteration) {
            const std::int64_t global_b = std::min<std::int64_t>(o.batch, d.train.size() - first);
            const std::int64_t b = dist::shard_size(global_b, ranks, rank);
            const float rate = static_cast<float>(lr(state.iteration));
            train::StepStats s{0, 0};
            if (exchange) exchange->begin_step(b, global_b);
            if (b > 0) {
                batches.next(images.data, labels);  // this rank's share of the global batch
                images.shape = {static_cast<std::size_t>(b),
                                static_cast<std::size_t>(d.train.height),
                                static_cast<std::size_t>(d.train.width),
                                static_cast<std::size_t>(d.train.channels)};
                s = train::train_step(net, sgd, images, labels, rate, state.iteration,
                                      exchange.get());
            } else {
                train::train_step_without_samples(net, sgd, rate, state.iteration, *exchange);
            }
            loss_sum += static_cast<double>(s.loss) * static_cast<double>(b);
            correct += s.correct;
            seen += b;
            if (exchange && o.check_weights_every > 0 &&
                (state.iteration + 1) % o.check_weights_every == 0)
                dist::check_same_weights(*comm, net.params(), state.iteration);
            // Images of all ranks per second: every rank has done its share of the same batches.
            const double ips = static_cast<double>(first + global_b) / (elapsed() - epoch_start);
            if (progress.due(elapsed()))
                progress.draw(epoch + 1, o.epochs, first + global_b, d.train.size(),
                              loss_sum / static_cast<double>(seen),
                              static_cast<double>(correct) / static_cast<double>(seen), ips);
            if (o.log_every > 0 && (state.iteration + 1) % o.log_every == 0) {
                double step_loss = s.loss;
                double step_top1 = static_cast<double>(s.correct) / static_cast<double>(b);
                std::string sent;
                if (exchange) {  // over the global batch; the bytes are rank 0's
                    double sums[3] = {step_loss * static_cast<double>(b),
                                      static_cast<double>(s.correct), static_cast<double>(b)};
                    comm->allreduce_wait(0, sums, 3, MPI_DOUBLE, MPI_SUM, "iteration statistics");
                    step_loss = sums[0] / sums[2];
                    step_top1 = sums[1] / sums[2];
                    sent = ", " + std::to_string(exchange->bytes_sent()) + " bytes sent";
                }
                if (!progress.enabled())
                    std::printf("  iteration %lld: loss %.4f, lr %.4g, %.0f images/s%s\n",
                                static_cast<long long>(state.iteration + 1), step_loss, rate, ips,
                                sent.c_str());
                nlohmann::json record = {{"epoch", epoch + 1},
                                         {"iter", state.iteration + 1},
                                         {"loss", step_loss},
                                         {"train_top1", step_top1},
                                         {"lr", rate},
                                         {"images_per_s", ips},
                                         {"elapsed_s", elapsed()}};
                if (exchange) record["bytes_sent"] = exchange->bytes_sent();
                metrics.write(record);
            }
        }
        progress.clear();
        if (exchange) {
            double sums[3] = {loss_sum, static_cast<double>(correct), static_cast<double>(seen)};
            comm->allreduce_wait(0, sums, 3, MPI_DOUBLE, MPI_SUM, "epoch statistics");
            loss_sum = sums[0];
            correct = static_cast<std::int64_t>(sums[1]);
            seen = static_cast<std::int64_t>(sums[2]);
            dist::check_same_weights(*comm, net.params(), state.iteration - 1);
        }
        const double seconds = elapsed() - epoch_start;
        // Rank 0's network (its own batch-norm statistics) is the one evaluated and saved; the
        // other ranks wait for it in the next exchange.
        const train::Evaluation test =
            lead ? train::evaluate(net, d.test, local_batch) : train::Evaluation{};
        const double train_loss = loss_sum / static_cast<double>(seen);
        const double train_top1 = static_cast<double>(correct) / static_cast<double>(seen);
        print_epoch(epoch + 1, o.epochs, train_loss, train_top1, test, seconds, seen);
        metrics.write({{"epoch", epoch + 1},
                       {"iter", state.iteration},
                       {"loss", train_loss},
                       {"train_top1", train_top1},
                       {"test_top1", test.top1},
                       {"test_top5", test.top5},
                       {"lr", lr(state.iteration - 1)},
                       {"images_per_s", static_cast<double>(seen) / seconds},
                       {"elapsed_s", elapsed()}});
        state.epochs_done = epoch + 1;
        if (!checkpoint.empty() && lead) train::save_checkpoint(checkpoint, net, sgd, state);
        if (o.stop_after_epoch > 0 && state.epochs_done == o.stop_after_epoch &&
            state.epochs_done < o.epochs) {
            std::printf("stopped after epoch %d as asked; continue with --resume\n",
                        o.stop_after_epoch);
            break;
        }
    }
}

}  // namespace

void add_train_command(CLI::App& app) {
    auto o = std::make_shared<TrainOptions>();
    CLI::App* cmd = app.add_subcommand(
        "train", "Train a network on Fashion-MNIST in FP32, DFP16 or a mixed policy");
    cmd->add_option("--model", o->model,
                    "Network, e.g. lenet5, resnet20, resnet50 (an unknown name lists them all; "
                    "dfptrain inspect "
                    "--model NAME shows the layers)");
    cmd->add_option("--data", o->data,
                    "fashion-mnist (Debian's dataset-fashion-mnist), idx:DIR, cifar:DIR, "
                    "folder:DIR[:SIZE] (JPEGs in DIR/train/CLASS/, DIR/test/CLASS/) or "
                    "synthetic:CxHxW:CLASSES");
    cmd->add_option("--precision", o->precision,
                    "fp32, dfp16 (the paper: first and last layer FP32), a spec such as "
                    "'dfp16,first=dfp16,gradients.rounding=stochastic' (see README), or int8 "
                    "(NITI's integer-only training; models niti_lenet, vgg_small)");
    cmd->add_option("--epochs", o->epochs, "Passes over the training set");
    cmd->add_option("--batch", o->batch,
                    "Images per iteration (under mpirun -np N: the global batch, a multiple of N)");
    cmd->add_option("--lr", o->lr, "Peak learning rate");
    cmd->add_option("--schedule", o->schedule,
                    "Learning-rate schedule: constant, cosine or step (x0.1 every third)");
    cmd->add_option("--warmup", o->warmup, "Iterations of linear warm-up from 0.1 lr");
    cmd->add_option("--momentum", o->momentum, "SGD momentum");
    cmd->add_option("--weight-decay", o->weight_decay, "L2 weight decay");
    cmd->add_flag("--nesterov", o->nesterov, "Nesterov momentum");
    cmd->add_option("--seed", o->seed,
                    "Seed of the data order (weights are seeded by their names)");
    cmd->add_option("--train-limit", o->train_limit,
                    "Use only the first N training images (0: all)");
    cmd->add_option("--test-limit", o->test_limit, "Use only the first N test images (0: all)");
    cmd->add_option(
        "--threads", o->threads,
        "OpenMP threads (0: all cores; under mpirun, the cores / ranks on the machine)");
    cmd->add_option("--log-every", o->log_every,
                    "Print (and --metrics) every N iterations (0: never)");
    cmd->add_option("--metrics", o->metrics_path, "Append JSON lines of metrics to this file");
    cmd->add_option("--checkpoint-dir", o->checkpoint_dir,
                    "Write a checkpoint here after every epoch");
    cmd->add_flag("--resume", o->resume, "Continue the run saved in --checkpoint-dir");
    cmd->add_option(
        "--stop-after-epoch", o->stop_after_epoch,
        "Stop this process after that epoch (checkpoint saved); --resume continues the run");
    cmd->add_option("--augment-crop", o->augment.crop_pad,
                    "Random crop of training images padded with PAD zeros per side (0: off; "
                    "4 for CIFAR)");
    cmd->add_flag("--augment-flip", o->augment.flip, "Random horizontal flip of training images");
    cmd->add_option("--mu", o->mu,
                    "int8 only: NITI's learning rate, the bit length of the largest weight step; "
                    "comma-separated values rule equal shares of the run (--lr, --schedule, "
                    "--warmup, --momentum, --weight-decay and --nesterov do not apply to int8)");
    cmd->add_flag("--int8-weight-accumulator", o->int8_weight_accumulator,
                  "int8 only: keep 8 more fraction bits per weight (NITI's 16-bit accumulator)");
    cmd->add_flag("--no-prefetch", o->no_prefetch,
                  "Prepare batches in the training thread (same results; for comparisons)");
    cmd->add_option("--grad-exchange", o->grad_exchange,
                    "Under mpirun: gradients exchanged as fp32 (default) or dfp16 (one shared "
                    "exponent per tensor, half the bytes)");
    cmd->add_option("--mpi-timeout", o->mpi_timeout,
                    "Under mpirun: seconds to wait for the other ranks before stopping with an "
                    "error (a rank died or hangs)");
    cmd->add_flag("--sync-bn", o->sync_bn,
                  "Under mpirun: batch norm with the statistics of the global batch (default: "
                  "each rank's own)");
    cmd->add_option("--check-weights-every", o->check_weights_every,
                    "Under mpirun: compare a CRC of the weights across ranks every N iterations "
                    "and at every epoch's end (0: only at epoch ends)");
    cmd->callback([o] { run_train(*o); });
}

}  // namespace dfp::cli
