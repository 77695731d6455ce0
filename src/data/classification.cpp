#include "data/classification.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "base/error.hpp"
#include "data/idx.hpp"
#include "data/image_folder.hpp"
#include "format/rng.hpp"

namespace dfp::data {

ImageDataset read_idx_classification(const std::string& images_path, const std::string& labels_path,
                                     std::int64_t classes) {
    Array images = read_idx(images_path);
    const Array labels = read_idx(labels_path);
    if (images.shape.size() != 3)
        throw Error("'" + images_path + "': expected images of shape (N, H, W), got " +
                    shape_string(images.shape));
    if (labels.shape.size() != 1 || labels.shape[0] != images.shape[0])
        throw Error("'" + labels_path + "': expected " + std::to_string(images.shape[0]) +
                    " labels to match '" + images_path + "', got shape " +
                    shape_string(labels.shape));
    ImageDataset d;
    d.height = static_cast<std::int64_t>(images.shape[1]);
    d.width = static_cast<std::int64_t>(images.shape[2]);
    d.channels = 1;
    d.classes = classes;
    d.images = std::move(images.values);
    d.labels.reserve(labels.values.size());
    for (std::size_t i = 0; i < labels.values.size(); ++i) {
        const float v = labels.values[i];
        if (!(v >= 0 && v < static_cast<float>(classes)) || v != std::floor(v))
            throw Error("'" + labels_path + "': label " + std::to_string(v) + " of sample " +
                        std::to_string(i) + " is outside 0.." + std::to_string(classes - 1));
        d.labels.push_back(static_cast<int>(v));
    }
    return d;
}

TrainTest read_idx_folder(const std::string& dir, std::int64_t classes) {
    const char* names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    std::vector<std::string> paths;
    for (const char* name : names) {
        const std::filesystem::path plain = std::filesystem::path(dir) / name;
        const std::filesystem::path gz = std::filesystem::path(dir) / (std::string(name) + ".gz");
        if (std::filesystem::exists(gz))
            paths.push_back(gz.string());
        else if (std::filesystem::exists(plain))
            paths.push_back(plain.string());
        else
            throw Error(
                "'" + gz.string() + "' not found (nor without .gz)" +
                (dir == kFashionMnistDir
                     ? std::string(
                           ": Fashion-MNIST comes from Debian's dataset-fashion-mnist "
                           "(apt-get install dataset-fashion-mnist, or run scripts/setup.sh)")
                     : std::string()));
    }
    TrainTest d;
    d.train = read_idx_classification(paths[0], paths[1], classes);
    d.test = read_idx_classification(paths[2], paths[3], classes);
    return d;
}

TrainTest read_cifar_folder(const std::string& dir) {
    constexpr std::int64_t kSide = 32, kChannels = 3, kPixels = kSide * kSide * kChannels;
    const auto path = [&](const std::string& name) {
        return (std::filesystem::path(dir) / name).string();
    };
    const bool cifar100 = std::filesystem::exists(path("train.bin"));
    const std::int64_t label_bytes = cifar100 ? 2 : 1, classes = cifar100 ? 100 : 10;
    const auto read = [&](const std::vector<std::string>& names) {
        ImageDataset d{kSide, kSide, kChannels, classes, {}, {}};
        for (const std::string& name : names) {
            const std::string p = path(name);
            std::ifstream in(p, std::ios::binary);
            if (!in)
                throw Error(
                    "'" + p +
                    "' not found: cifar:DIR expects CIFAR-10 binary files (data_batch_1.bin ... "
                    "test_batch.bin) or CIFAR-100 (train.bin, test.bin)");
            const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                                   std::istreambuf_iterator<char>());
            const std::int64_t record = label_bytes + kPixels;
            if (bytes.empty() || bytes.size() % record != 0)
                throw Error("'" + p + "': " + std::to_string(bytes.size()) +
                            " bytes is not a whole number of " + std::to_string(record) +
                            "-byte CIFAR records (truncated?)");
            for (std::size_t r = 0; r < bytes.size(); r += record) {
                const int label = bytes[r + label_bytes - 1];
                if (label >= classes)
                    throw Error("'" + p + "': label " + std::to_string(label) + " of record " +
                                std::to_string(r / record) + " is outside 0.." +
                                std::to_string(classes - 1));
                d.labels.push_back(label);
                const unsigned char* planes = &bytes[r + label_bytes];  // (C, H, W)
                for (std::int64_t i = 0; i < kSide * kSide; ++i)
                    for (std::int64_t c = 0; c < kChannels; ++c)
                        d.images.push_back(static_cast<float>(planes[c * kSide * kSide + i]));
            }
        }
        return d;
    };
    if (cifar100) return {read({"train.bin"}), read({"test.bin"})};
    return {read({"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                  "data_batch_5.bin"}),
            read({"test_batch.bin"})};
}

TrainTest make_synthetic(std::int64_t channels, std::int64_t height, std::int64_t width,
                         std::int64_t classes, std::int64_t train, std::int64_t test) {
    if (channels < 1 || height < 1 || width < 1 || classes < 2 || train < 1 || test < 1)
        throw Error("synthetic data: need C, H, W >= 1, >= 2 classes and >= 1 sample");
    const std::int64_t numel = channels * height * width;
    // Uniform in [-1, 1) from the counter-based RNG: element `index` of stream `seed`.
    const auto uniform = [](std::uint64_t seed, std::uint64_t index) {
        return static_cast<float>(random_bits(seed, index) >> 8) * (2.0f / (1 << 24)) - 1.0f;
    };
    const auto make = [&](std::int64_t n, std::uint64_t noise_seed) {
        ImageDataset d{
            height, width, channels, classes, std::vector<float>(n * numel), std::vector<int>(n)};
        for (std::int64_t i = 0; i < n; ++i) {
            const int label = static_cast<int>(random_bits(noise_seed + 1, i) % classes);
            d.labels[i] = label;
            for (std::int64_t j = 0; j < numel; ++j)
                d.images[i * numel + j] =
                    uniform(0, label * numel + j) + 0.5f * uniform(noise_seed, i * numel + j);
        }
        return d;
    };
    return {make(train, 100), make(test, 200)};
}

TrainTest read_dataset(const std::string& spec) {
    const auto value = [&](const char* prefix) -> std::string {
        const std::string p(prefix);
        return spec.rfind(p, 0) == 0 && spec.size() > p.size() ? spec.substr(p.size()) : "";
    };
    if (spec == "fashion-mnist") return read_idx_folder(kFashionMnistDir);
    if (const std::string dir = value("idx:"); !dir.empty()) return read_idx_folder(dir);
    if (const std::string dir = value("cifar:"); !dir.empty()) return read_cifar_folder(dir);
    if (std::string dir = value("folder:"); !dir.empty()) {
        // folder:DIR[:SIZE]: a trailing ":digits" is the size (a folder name rarely is one).
        const std::size_t colon = dir.rfind(':');
        if (colon == std::string::npos || colon + 1 == dir.size() ||
            dir.find_first_not_of("0123456789", colon + 1) != std::string::npos)
            return read_image_folder(dir);
        constexpr long long kMaxSize = 4096;
        const long long size = std::atoll(dir.c_str() + colon + 1);
        if (size < 1 || size > kMaxSize || colon == 0)
            throw Error("--data: '" + spec + "' is not folder:DIR or folder:DIR:SIZE with SIZE " +
                        "1.." + std::to_string(kMaxSize));
        return read_image_folder(dir.substr(0, colon), size, size);
    }
    if (const std::string shape = value("synthetic:"); !shape.empty()) {
        long long c = 0, h = 0, w = 0, classes = 0;
        char end = 0;
        if (std::sscanf(shape.c_str(), "%lldx%lldx%lld:%lld%c", &c, &h, &w, &classes, &end) != 4)
            throw Error("--data: '" + spec +
                        "' is not synthetic:CxHxW:CLASSES (e.g. synthetic:3x32x32:10)");
        // Up to 4096 training samples, fewer for large images so they stay within 256 MiB.
        constexpr std::int64_t kMaxTrain = 4096, kMinTrain = 256,
                               kMaxFloats = std::int64_t{1} << 26;
        const std::int64_t train = std::clamp<std::int64_t>(
            kMaxFloats / std::max<long long>(1, c * h * w), kMinTrain, kMaxTrain);
        return make_synthetic(c, h, w, classes, train, train / 4);
    }
    throw Error("--data: unknown data spec '" + spec +
                "' (expected fashion-mnist, idx:DIR, cifar:DIR, folder:DIR[:SIZE] or "
                "synthetic:CxHxW:CLASSES)");
}

void standardize(TrainTest& data) {
    const std::int64_t c = data.train.channels;
    std::vector<double> sum(c, 0.0), sq(c, 0.0);
    const std::size_t n = data.train.images.size();
    for (std::size_t i = 0; i < n; ++i) {
        sum[i % c] += data.train.images[i];
        sq[i % c] += static_cast<double>(data.train.images[i]) * data.train.images[i];
    }
    std::vector<float> mean(c), inv_std(c);
    const double per_channel = static_cast<double>(n / c);
    for (std::int64_t k = 0; k < c; ++k) {
        const double m = sum[k] / per_channel, var = sq[k] / per_channel - m * m;
        if (!(var > 0))
            throw Error("standardize: channel " + std::to_string(k) +
                        " of the training images is constant");
        mean[k] = static_cast<float>(m);
        inv_std[k] = static_cast<float>(1.0 / std::sqrt(var));
    }
    for (ImageDataset* d : {&data.train, &data.test})
        for (std::size_t i = 0; i < d->images.size(); ++i)
            d->images[i] = (d->images[i] - mean[i % c]) * inv_std[i % c];
}

void truncate(ImageDataset& data, std::int64_t count) {
    if (count >= data.size()) return;
    data.labels.resize(static_cast<std::size_t>(count));
    data.images.resize(static_cast<std::size_t>(count * data.image_numel()));
}

std::vector<std::int64_t> epoch_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) order[i] = i;
    // Fisher-Yates with a generator seeded by (seed, epoch) only.
    std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                      static_cast<std::uint32_t>(epoch)};
    std::mt19937_64 rng(seq);
    for (std::int64_t i = n - 1; i > 0; --i) {
        std::uniform_int_distribution<std::int64_t> pick(0, i);
        std::swap(order[i], order[pick(rng)]);
    }
    return order;
}

void gather_batch(const ImageDataset& data, std::span<const std::int64_t> indices,
                  UninitAlignedVector<float>& images, std::vector<int>& labels) {
    const std::int64_t numel = data.image_numel();
    images.resize(indices.size() * static_cast<std::size_t>(numel));
    labels.resize(indices.size());
    for (std::size_t b = 0; b < indices.size(); ++b) {
        std::memcpy(&images[b * numel], &data.images[indices[b] * numel], numel * sizeof(float));
        labels[b] = data.labels[indices[b]];
    }
}

}  // namespace dfp::data
