#include "models/registry.hpp"

#include <algorithm>
#include <functional>
#include <utility>

#include "base/error.hpp"
#include "models/alexnet.hpp"
#include "models/googlenet.hpp"
#include "models/lenet.hpp"
#include "models/niti.hpp"
#include "models/resnet.hpp"
#include "models/vgg.hpp"

namespace dfp::models {
namespace {

using Builder = std::function<nn::Net(const ImageInput&)>;

const std::vector<std::pair<std::string, Builder>>& registry() {
    static const std::vector<std::pair<std::string, Builder>> models = {
        {"lenet5", lenet5},
        {"resnet20", [](const ImageInput& in) { return resnet_cifar(20, in); }},
        {"resnet32", [](const ImageInput& in) { return resnet_cifar(32, in); }},
        {"resnet56", [](const ImageInput& in) { return resnet_cifar(56, in); }},
        {"resnet18", resnet18},
        {"resnet50", resnet50},
        {"vgg16", [](const ImageInput& in) { return vgg16(in, false); }},
        {"vgg16_bn", [](const ImageInput& in) { return vgg16(in, true); }},
        {"alexnet", alexnet},
        {"googlenet", googlenet},
        {"niti_lenet", niti_lenet},
        {"vgg_small", vgg_small},
    };
    return models;
}

}  // namespace

std::vector<std::string> names() {
    std::vector<std::string> out;
    for (const auto& [name, builder] : registry()) out.push_back(name);
    return out;
}

std::vector<std::string> integer_names() { return {"niti_lenet", "vgg_small"}; }

void check_name(const std::string& name) {
    const std::vector<std::string> known = names();
    if (std::find(known.begin(), known.end(), name) != known.end()) return;
    std::string list;
    for (const std::string& n : known) {
        if (!list.empty()) list += ", ";
        list += n;
    }
    throw Error("unknown model '" + name + "' (available: " + list + ")");
}

nn::Net build(const std::string& name, const ImageInput& input) {
    check_name(name);
    for (const auto& [model, builder] : registry())
        if (model == name) return builder(input);
    return {};  // unreachable: check_name knows the same names
}

ImageInput natural_input(const std::string& name) {
    constexpr std::int64_t kImageNetSide = 224, kImageNetClasses = 1000, kCifarSide = 32;
    if (name == "lenet5" || name == "niti_lenet") return {};  // defaults: Fashion-MNIST
    if (name == "resnet20" || name == "resnet32" || name == "resnet56" || name == "vgg_small")
        return {kCifarSide, kCifarSide, 3, 10};
    check_name(name);
    return {kImageNetSide, kImageNetSide, 3, kImageNetClasses};
}

}  // namespace dfp::models
