#include "train/checkpoint.hpp"

#include <cstring>
#include <vector>

#include "base/error.hpp"

namespace dfp::train {
namespace {

struct NamedValues {
    std::string name;
    std::vector<float>* values;
};

// Every tensor a checkpoint holds, in file order.
std::vector<NamedValues> tensors(nn::Net& net, Sgd& sgd) {
    std::vector<NamedValues> out;
    const auto& params = sgd.params();
    for (std::size_t i = 0; i < params.size(); ++i) {
        out.push_back({params[i]->name, &params[i]->value});
        out.push_back({params[i]->name + ".velocity", &sgd.velocity(i)});
    }
    for (const nn::NamedBuffer& b : net.buffers()) out.push_back({b.name, b.values});
    return out;
}

}  // namespace

void save_checkpoint(const std::string& path, nn::Net& net, Sgd& sgd, const RunState& state) {
    std::vector<std::pair<std::string, const std::vector<float>*>> list;
    for (const NamedValues& t : tensors(net, sgd)) list.emplace_back(t.name, t.values);
    write_file_atomically(path, encode_checkpoint(state, list));
}

RunState read_checkpoint_state(const std::string& path) {
    return read_checkpoint_file(path).state;
}

RunState load_checkpoint(const std::string& path, nn::Net& net, Sgd& sgd) {
    const CheckpointFile f = read_checkpoint_file(path);
    const auto fail = [&](const std::string& what) -> Error {
        return Error("checkpoint '" + path + "': " + what);
    };
    const auto& saved = f.tensors;
    // Check everything before changing anything.
    const auto list = tensors(net, sgd);
    if (saved.size() != list.size())
        throw fail("holds " + std::to_string(saved.size()) + " tensors, the network has " +
                   std::to_string(list.size()) + " (another model?)");
    for (std::size_t i = 0; i < list.size(); ++i) {
        const auto& [name, count] = saved[i];
        if (name != list[i].name || count != list[i].values->size())
            throw fail("tensor " + std::to_string(i) + " is '" + name + "' (" +
                       std::to_string(count) + " values), the network has '" + list[i].name +
                       "' (" + std::to_string(list[i].values->size()) + ")");
    }
    std::size_t offset = f.data_offset;
    for (const auto& t : list) {
        std::memcpy(t.values->data(), f.bytes.data() + offset, t.values->size() * sizeof(float));
        offset += t.values->size() * sizeof(float);
    }
    return f.state;
}

}  // namespace dfp::train
