#include "train/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "base/error.hpp"

namespace dfp::train {
namespace {

constexpr char kMagic[8] = {'D', 'F', 'P', 'C', 'K', 'P', 'T', '\0'};
constexpr std::uint32_t kVersion = 1;

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

template <class T>
void append(std::vector<unsigned char>& out, const T& v) {
    const auto* p = reinterpret_cast<const unsigned char*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
}

template <class T>
T read_at(const std::vector<unsigned char>& in, std::size_t offset) {
    T v;
    std::memcpy(&v, in.data() + offset, sizeof(T));
    return v;
}

std::uint32_t crc_of(const unsigned char* data, std::size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        const auto chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
        crc = crc32(crc, data, chunk);
        data += chunk;
        n -= chunk;
    }
    return static_cast<std::uint32_t>(crc);
}

[[noreturn]] void fail_io(const std::string& what, const std::string& path) {
    throw Error("checkpoint '" + path + "': " + what + ": " + std::strerror(errno));
}

void fsync_path(const std::string& path, int flags) {
    const int fd = ::open(path.c_str(), flags);
    if (fd < 0) fail_io("cannot open for fsync", path);
    const int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) fail_io("fsync failed", path);
}

}  // namespace

void save_checkpoint(const std::string& path, nn::Net& net, Sgd& sgd, const RunState& state) {
    const auto list = tensors(net, sgd);
    nlohmann::json names = nlohmann::json::array();
    for (const auto& t : list) names.push_back({t.name, t.values->size()});
    const std::string header = nlohmann::json{
        {"config", state.config},
        {"epochs_done", state.epochs_done},
        {"iteration", state.iteration},
        {"tensors", names}}.dump();

    std::vector<unsigned char> bytes(kMagic, kMagic + sizeof kMagic);
    append(bytes, kVersion);
    append(bytes, static_cast<std::uint64_t>(header.size()));
    bytes.insert(bytes.end(), header.begin(), header.end());
    for (const auto& t : list) {
        const auto* p = reinterpret_cast<const unsigned char*>(t.values->data());
        bytes.insert(bytes.end(), p, p + t.values->size() * sizeof(float));
    }
    append(bytes, crc_of(bytes.data(), bytes.size()));

    const std::filesystem::path target(path);
    const std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : ".";
    const std::string tmp = path + ".tmp";
    {
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) fail_io("cannot create a temporary file in '" + dir.string() + "'", tmp);
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                ::close(fd);
                ::unlink(tmp.c_str());
                fail_io("write failed", tmp);
            }
            done += static_cast<std::size_t>(n);
        }
        if (::fsync(fd) != 0 || ::close(fd) != 0) {
            ::unlink(tmp.c_str());
            fail_io("fsync failed", tmp);
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        ::unlink(tmp.c_str());
        fail_io("rename failed", path);
    }
    fsync_path(dir.string(), O_RDONLY | O_DIRECTORY);
}

namespace {

// A checkpoint file read and checked (magic, checksum, version, header), tensors not yet copied.
struct CheckpointFile {
    std::vector<unsigned char> bytes;
    RunState state;
    std::vector<std::pair<std::string, std::size_t>>
        tensors;                  // [name, element count], in file order
    std::size_t data_offset = 0;  // where the first tensor's values start
    std::size_t data_end = 0;     // where the checksum starts
};

CheckpointFile read_checkpoint_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("checkpoint '" + path + "': cannot open: " + std::strerror(errno));
    CheckpointFile f;
    f.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    const auto fail = [&](const std::string& what) -> Error {
        return Error("checkpoint '" + path + "': " + what);
    };
    const auto& bytes = f.bytes;

    constexpr std::size_t kFixed = sizeof kMagic + sizeof(std::uint32_t) + sizeof(std::uint64_t);
    if (bytes.size() < kFixed + sizeof(std::uint32_t) ||
        std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
        throw fail("not a dfptrain checkpoint (too short or wrong magic)");
    f.data_end = bytes.size() - sizeof(std::uint32_t);
    if (crc_of(bytes.data(), f.data_end) != read_at<std::uint32_t>(bytes, f.data_end))
        throw fail("checksum mismatch: the file is corrupt or truncated");
    const auto version = read_at<std::uint32_t>(bytes, sizeof kMagic);
    if (version != kVersion)
        throw fail("version " + std::to_string(version) + ", this build reads version " +
                   std::to_string(kVersion));
    const auto header_bytes = read_at<std::uint64_t>(bytes, sizeof kMagic + sizeof(std::uint32_t));
    if (header_bytes > f.data_end - kFixed) throw fail("header longer than the file");
    try {
        const auto header = nlohmann::json::parse(
            bytes.begin() + kFixed,
            bytes.begin() + kFixed + static_cast<std::ptrdiff_t>(header_bytes));
        for (const auto& t : header.at("tensors"))
            f.tensors.emplace_back(t.at(0).get<std::string>(), t.at(1).get<std::size_t>());
        f.state = {header.at("epochs_done").get<std::int64_t>(),
                   header.at("iteration").get<std::int64_t>(), header.at("config")};
    } catch (const nlohmann::json::exception& e) {
        throw fail(std::string("unreadable header: ") + e.what());
    }
    f.data_offset = kFixed + header_bytes;
    std::size_t values = 0;
    for (const auto& [name, count] : f.tensors) {
        if (count > (f.data_end - f.data_offset) / sizeof(float) - values)
            throw fail("size does not match its tensor list");
        values += count;
    }
    if (f.data_offset + values * sizeof(float) != f.data_end)
        throw fail("size does not match its tensor list");
    return f;
}

}  // namespace

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
