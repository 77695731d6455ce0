#include "train/checkpoint_file.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "base/error.hpp"

namespace dfp::train {
namespace {

constexpr char kMagic[8] = {'D', 'F', 'P', 'C', 'K', 'P', 'T', '\0'};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kFixed = sizeof kMagic + sizeof(std::uint32_t) + sizeof(std::uint64_t);

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

std::uint32_t crc32_of(const unsigned char* data, std::size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        const auto chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
        crc = crc32(crc, data, chunk);
        data += chunk;
        n -= chunk;
    }
    return static_cast<std::uint32_t>(crc);
}

std::vector<unsigned char> encode_checkpoint(
    const RunState& state,
    const std::vector<std::pair<std::string, const std::vector<float>*>>& tensors) {
    nlohmann::json names = nlohmann::json::array();
    for (const auto& [name, values] : tensors) names.push_back({name, values->size()});
    const std::string header = nlohmann::json{
        {"config", state.config},
        {"epochs_done", state.epochs_done},
        {"iteration", state.iteration},
        {"tensors", names}}.dump();
    std::vector<unsigned char> bytes(kMagic, kMagic + sizeof kMagic);
    append(bytes, kVersion);
    append(bytes, static_cast<std::uint64_t>(header.size()));
    bytes.insert(bytes.end(), header.begin(), header.end());
    for (const auto& [name, values] : tensors) {
        const auto* p = reinterpret_cast<const unsigned char*>(values->data());
        bytes.insert(bytes.end(), p, p + values->size() * sizeof(float));
    }
    append(bytes, crc32_of(bytes.data(), bytes.size()));
    return bytes;
}

void write_file_atomically(const std::string& path, const std::vector<unsigned char>& bytes) {
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

CheckpointFile parse_checkpoint(std::vector<unsigned char> bytes_in, const std::string& path) {
    CheckpointFile f;
    f.bytes = std::move(bytes_in);
    const auto fail = [&](const std::string& what) -> Error {
        return Error("checkpoint '" + path + "': " + what);
    };
    const auto& bytes = f.bytes;
    if (bytes.size() < kFixed + sizeof(std::uint32_t) ||
        std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
        throw fail("not a dfptrain checkpoint (too short or wrong magic)");
    const std::size_t data_end = bytes.size() - sizeof(std::uint32_t);
    if (crc32_of(bytes.data(), data_end) != read_at<std::uint32_t>(bytes, data_end))
        throw fail("checksum mismatch: the file is corrupt or truncated");
    const auto version = read_at<std::uint32_t>(bytes, sizeof kMagic);
    if (version != kVersion)
        throw fail("version " + std::to_string(version) + ", this build reads version " +
                   std::to_string(kVersion));
    const auto header_bytes = read_at<std::uint64_t>(bytes, sizeof kMagic + sizeof(std::uint32_t));
    if (header_bytes > data_end - kFixed) throw fail("header longer than the file");
    // Every number of the header is a non-negative integer; anything else (a float, a negative,
    // a value beyond int64) is a corrupt header, not something to convert.
    const auto count = [&](const nlohmann::json& v, const char* what) -> std::uint64_t {
        if (!v.is_number_unsigned() ||
            v.get<std::uint64_t>() >
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            throw fail(std::string("header field '") + what + "' is not a non-negative integer");
        return v.get<std::uint64_t>();
    };
    try {
        const auto header = nlohmann::json::parse(
            bytes.begin() + kFixed,
            bytes.begin() + kFixed + static_cast<std::ptrdiff_t>(header_bytes));
        for (const auto& t : header.at("tensors"))
            f.tensors.emplace_back(t.at(0).get<std::string>(), count(t.at(1), "tensors"));
        f.state = {static_cast<std::int64_t>(count(header.at("epochs_done"), "epochs_done")),
                   static_cast<std::int64_t>(count(header.at("iteration"), "iteration")),
                   header.at("config")};
    } catch (const nlohmann::json::exception& e) {
        throw fail(std::string("unreadable header: ") + e.what());
    }
    f.data_offset = kFixed + header_bytes;
    const std::size_t room = (data_end - f.data_offset) / sizeof(float);  // values that fit
    std::size_t values = 0;
    for (const auto& [name, count] : f.tensors) {
        if (count > room - values) throw fail("size does not match its tensor list");
        values += count;
    }
    if (f.data_offset + values * sizeof(float) != data_end)
        throw fail("size does not match its tensor list");
    return f;
}

CheckpointFile read_checkpoint_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("checkpoint '" + path + "': cannot open: " + std::strerror(errno));
    return parse_checkpoint({std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()},
                            path);
}

}  // namespace dfp::train
