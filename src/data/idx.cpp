#include "data/idx.hpp"

#include <zlib.h>

#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "base/error.hpp"

namespace dfp::data {
namespace {

struct GzCloser {
    void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

GzFile open_or_throw(const std::string& path) {
    GzFile f(gzopen(path.c_str(), "rb"));
    if (!f) throw Error("cannot open '" + path + "': " + std::strerror(errno));
    gzbuffer(f.get(), 1 << 20);
    return f;
}

// Reads exactly n bytes or throws naming the file and what was being read.
void read_or_throw(gzFile f, void* dst, std::size_t n, const std::string& path, const char* what) {
    auto* p = static_cast<unsigned char*>(dst);
    while (n > 0) {
        const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n, 1u << 30));
        const int got = gzread(f, p, chunk);
        if (got < 0) {
            int code = 0;
            throw Error("'" + path + "': read error in " + what + ": " + gzerror(f, &code));
        }
        if (got == 0) throw Error("'" + path + "': file ends early, in " + what);
        p += got;
        n -= static_cast<std::size_t>(got);
    }
}

// Reads exactly n bytes, in chunks, so that a header claiming more data than the file holds
// fails with "ends early" after allocating about what the file has, never the claimed size.
std::vector<unsigned char> read_exactly(gzFile f, std::size_t n, const std::string& path,
                                        const std::string& what) {
    constexpr std::size_t kChunk = std::size_t{1} << 26;
    std::vector<unsigned char> out;
    while (out.size() < n) {
        const std::size_t done = out.size(), step = std::min(kChunk, n - done);
        out.resize(done + step);
        read_or_throw(f, out.data() + done, step, path, what.c_str());
    }
    return out;
}

void expect_end(gzFile f, const std::string& path) {
    unsigned char extra;
    if (gzread(f, &extra, 1) != 0)
        throw Error("'" + path + "': unexpected data after the last element");
}

struct IdxType {
    std::uint8_t code;
    const char* name;
    std::size_t size;
};
constexpr IdxType kIdxTypes[] = {{0x08, "u8", 1},  {0x09, "s8", 1},  {0x0b, "s16", 2},
                                 {0x0c, "s32", 4}, {0x0d, "f32", 4}, {0x0e, "f64", 8}};

template <class T>
T load_big_endian(const unsigned char* p) {
    using U = std::conditional_t<
        sizeof(T) == 1, std::uint8_t,
        std::conditional_t<sizeof(T) == 2, std::uint16_t,
                           std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>>;
    U u = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) u = static_cast<U>((u << 8) | p[i]);
    return std::bit_cast<T>(u);
}

template <class T>
void convert(const std::vector<unsigned char>& raw, std::vector<float>& out) {
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<float>(load_big_endian<T>(&raw[i * sizeof(T)]));
}

std::size_t checked_numel(const Shape& shape, std::size_t element_size, const std::string& path) {
    std::size_t n = 1;
    for (std::size_t d : shape) {
        if (d != 0 && n > std::numeric_limits<std::size_t>::max() / element_size / d)
            throw Error("'" + path + "': dimensions " + shape_string(shape) + " are too large");
        n *= d;
    }
    return n;
}

}  // namespace

Array read_idx(const std::string& path) {
    GzFile f = open_or_throw(path);
    unsigned char magic[4];
    read_or_throw(f.get(), magic, 4, path, "the IDX header");
    if (magic[0] != 0 || magic[1] != 0)
        throw Error("'" + path + "': not an IDX file (the first two bytes must be zero)");
    const IdxType* type = nullptr;
    for (const IdxType& t : kIdxTypes)
        if (t.code == magic[2]) type = &t;
    if (type == nullptr) {
        char code[8];
        std::snprintf(code, sizeof code, "0x%02x", magic[2]);
        throw Error("'" + path + "': unknown IDX element type " + code);
    }
    const int rank = magic[3];
    if (rank == 0) throw Error("'" + path + "': IDX rank is 0");

    Array a;
    a.element_type = type->name;
    for (int d = 0; d < rank; ++d) {
        unsigned char dim[4];
        read_or_throw(f.get(), dim, 4, path, "the IDX dimensions");
        a.shape.push_back(load_big_endian<std::uint32_t>(dim));
    }
    const std::size_t n = checked_numel(a.shape, type->size, path);
    const std::vector<unsigned char> raw =
        read_exactly(f.get(), n * type->size, path, "the data of shape " + shape_string(a.shape));
    expect_end(f.get(), path);

    a.values.resize(n);
    switch (type->code) {
        case 0x08:
            convert<std::uint8_t>(raw, a.values);
            break;
        case 0x09:
            convert<std::int8_t>(raw, a.values);
            break;
        case 0x0b:
            convert<std::int16_t>(raw, a.values);
            break;
        case 0x0c:
            convert<std::int32_t>(raw, a.values);
            break;
        case 0x0d:
            convert<float>(raw, a.values);
            break;
        case 0x0e:
            convert<double>(raw, a.values);
            break;
    }
    return a;
}

Array read_raw_f32(const std::string& path, const Shape& shape) {
    GzFile f = open_or_throw(path);
    Array a;
    a.element_type = "f32";
    std::vector<float> values;
    if (shape.empty()) {
        // Length unknown: read to the end in chunks.
        std::vector<unsigned char> bytes;
        unsigned char buf[1 << 16];
        int got;
        while ((got = gzread(f.get(), buf, sizeof buf)) > 0)
            bytes.insert(bytes.end(), buf, buf + got);
        if (got < 0) throw Error("'" + path + "': read error");
        if (bytes.size() % sizeof(float) != 0)
            throw Error("'" + path + "': size " + std::to_string(bytes.size()) +
                        " bytes is not a multiple of 4 (float32)");
        a.values.resize(bytes.size() / sizeof(float));
        if (!bytes.empty()) std::memcpy(a.values.data(), bytes.data(), bytes.size());
        a.shape = {a.values.size()};
    } else {
        a.shape = shape;
        const std::size_t n = checked_numel(shape, sizeof(float), path);
        const std::vector<unsigned char> bytes = read_exactly(
            f.get(), n * sizeof(float), path, "float32 data of shape " + shape_string(shape));
        expect_end(f.get(), path);
        a.values.resize(n);
        if (n > 0) std::memcpy(a.values.data(), bytes.data(), bytes.size());
    }
    return a;
}

}  // namespace dfp::data
