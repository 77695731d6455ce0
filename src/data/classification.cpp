#include "data/classification.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "base/error.hpp"
#include "data/idx.hpp"

namespace dfp::data {

ImageDataset read_idx_classification(const std::string& images_path, const std::string& labels_path,
                                     std::int64_t classes) {
    Array images = read_idx(images_path);
    const Array labels = read_idx(labels_path);
    if (images.shape.size() != 3)
        throw Error("'" + images_path + "': expected images of shape (N, H, W), got " + shape_string(images.shape));
    if (labels.shape.size() != 1 || labels.shape[0] != images.shape[0])
        throw Error("'" + labels_path + "': expected " + std::to_string(images.shape[0]) +
                    " labels to match '" + images_path + "', got shape " + shape_string(labels.shape));
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
            throw Error("'" + labels_path + "': label " + std::to_string(v) + " of sample " + std::to_string(i) +
                        " is outside 0.." + std::to_string(classes - 1));
        d.labels.push_back(static_cast<int>(v));
    }
    return d;
}

TrainTest read_idx_folder(const std::string& dir, std::int64_t classes) {
    const char* names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"};
    std::vector<std::string> paths;
    for (const char* name : names) {
        const std::filesystem::path plain = std::filesystem::path(dir) / name;
        const std::filesystem::path gz = std::filesystem::path(dir) / (std::string(name) + ".gz");
        if (std::filesystem::exists(gz)) paths.push_back(gz.string());
        else if (std::filesystem::exists(plain)) paths.push_back(plain.string());
        else
            throw Error("'" + gz.string() + "' not found (nor without .gz)" +
                        (dir == kFashionMnistDir ? std::string(": Fashion-MNIST comes from Debian's dataset-fashion-mnist "
                                                               "(apt-get install dataset-fashion-mnist, or run scripts/setup.sh)")
                                                 : std::string()));
    }
    TrainTest d;
    d.train = read_idx_classification(paths[0], paths[1], classes);
    d.test = read_idx_classification(paths[2], paths[3], classes);
    return d;
}

TrainTest read_dataset(const std::string& spec) {
    if (spec == "fashion-mnist") return read_idx_folder(kFashionMnistDir);
    if (spec.rfind("idx:", 0) == 0 && spec.size() > 4) return read_idx_folder(spec.substr(4));
    throw Error("--data: unknown data spec '" + spec + "' (expected fashion-mnist or idx:DIR)");
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
        if (!(var > 0)) throw Error("standardize: channel " + std::to_string(k) + " of the training images is constant");
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

void gather_batch(const ImageDataset& data, std::span<const std::int64_t> indices, std::vector<float>& images,
                  std::vector<int>& labels) {
    const std::int64_t numel = data.image_numel();
    images.resize(indices.size() * static_cast<std::size_t>(numel));
    labels.resize(indices.size());
    for (std::size_t b = 0; b < indices.size(); ++b) {
        std::memcpy(&images[b * numel], &data.images[indices[b] * numel], numel * sizeof(float));
        labels[b] = data.labels[indices[b]];
    }
}

}  // namespace dfp::data
