#include "train/memory.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "base/error.hpp"
#include "models/summary.hpp"

namespace dfp::train {

std::int64_t training_bytes_per_image(nn::Net& net, const models::ImageInput& input) {
    std::int64_t values = input.height * input.width * input.channels;
    for (const models::LayerStats& layer : models::layer_stats(net, input))
        values += static_cast<std::int64_t>(shape_numel(layer.dst));
    return 2 * values * static_cast<std::int64_t>(sizeof(float));
}

std::optional<std::int64_t> available_memory() {
    std::ifstream meminfo("/proc/meminfo");
    std::string line;
    while (std::getline(meminfo, line)) {
        std::istringstream fields(line);
        std::string key;
        std::int64_t kib = 0;
        if (fields >> key >> kib && key == "MemAvailable:") return kib * 1024;
    }
    return std::nullopt;
}

void check_batch_fits(nn::Net& net, const models::ImageInput& input, std::int64_t batch,
                      std::int64_t images, std::optional<std::int64_t> available) {
    if (!available) return;
    const std::int64_t per_image = training_bytes_per_image(net, input);
    if (images <= *available / per_image) return;
    const auto gib = [](double bytes) {
        char text[32];
        std::snprintf(text, sizeof text, "%.1f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
        return std::string(text);
    };
    throw Error("--batch " + std::to_string(batch) + ": " + std::to_string(images) + " images of " +
                std::to_string(input.height) + "x" + std::to_string(input.width) + "x" +
                std::to_string(input.channels) + " need at least " +
                gib(double(per_image) * double(images)) +
                " for activations and gradients, more than the " + gib(double(*available)) +
                " of memory available (at most " + std::to_string(*available / per_image) +
                " images per batch)");
}

}  // namespace dfp::train
