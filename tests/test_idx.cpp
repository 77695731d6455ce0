// The IDX and raw float32 readers on files written here: plain and gzip, every element type,
// and the ways a file can be wrong.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "data/idx.hpp"

namespace dfp::data {
namespace {

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() /
            ("dfp_test_" + std::to_string(::getpid()) + "_" + name))
        .string();
}

void write_file(const std::string& path, const std::vector<unsigned char>& bytes, bool gzip) {
    if (gzip) {
        gzFile f = gzopen(path.c_str(), "wb");
        ASSERT_NE(f, nullptr);
        ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
                  static_cast<int>(bytes.size()));
        gzclose(f);
    } else {
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
}

std::vector<unsigned char> idx_header(unsigned char type, std::vector<std::uint32_t> dims) {
    std::vector<unsigned char> h{0, 0, type, static_cast<unsigned char>(dims.size())};
    for (std::uint32_t d : dims)
        for (int s = 24; s >= 0; s -= 8) h.push_back(static_cast<unsigned char>(d >> s));
    return h;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(Idx, ReadsUnsignedBytesPlainAndGzip) {
    auto bytes = idx_header(0x08, {2, 3});
    for (unsigned char v : {0, 1, 2, 253, 254, 255}) bytes.push_back(v);
    for (bool gz : {false, true}) {
        const std::string path = temp_path(gz ? "u8.idx.gz" : "u8.idx");
        write_file(path, bytes, gz);
        const Array a = read_idx(path);
        EXPECT_EQ(a.shape, (Shape{2, 3}));
        EXPECT_EQ(a.element_type, "u8");
        EXPECT_EQ(a.values, (std::vector<float>{0, 1, 2, 253, 254, 255}));
        std::filesystem::remove(path);
    }
}

TEST(Idx, ReadsBigEndianSignedAndFloatTypes) {
    auto s16 = idx_header(0x0b, {2});
    for (unsigned char b : {0xff, 0xfe, 0x01, 0x00}) s16.push_back(b);  // -2, 256
    auto f32 = idx_header(0x0d, {1});
    for (unsigned char b : {0xc0, 0x49, 0x0f, 0xdb}) f32.push_back(b);  // -3.14159274
    auto s8 = idx_header(0x09, {1});
    s8.push_back(0x80);  // -128
    const std::string path = temp_path("typed.idx");
    write_file(path, s16, false);
    EXPECT_EQ(read_idx(path).values, (std::vector<float>{-2, 256}));
    write_file(path, f32, false);
    EXPECT_EQ(read_idx(path).values, (std::vector<float>{-3.14159274f}));
    write_file(path, s8, false);
    EXPECT_EQ(read_idx(path).values, (std::vector<float>{-128}));
    std::filesystem::remove(path);
}

TEST(Idx, BadFilesAreErrorsNamingTheFile) {
    const std::string path = temp_path("bad.idx");
    write_file(path, {1, 2, 8, 1, 0, 0, 0, 1, 5}, false);
    EXPECT_NE(error_of([&] { read_idx(path); }).find("not an IDX file"), std::string::npos);
    write_file(path, {0, 0, 0x42, 1, 0, 0, 0, 1, 5}, false);
    EXPECT_NE(error_of([&] { read_idx(path); }).find("unknown IDX element type 0x42"),
              std::string::npos);
    auto truncated = idx_header(0x08, {10});
    truncated.push_back(1);
    write_file(path, truncated, true);
    EXPECT_NE(error_of([&] { read_idx(path); }).find("ends early"), std::string::npos);
    // A header that claims far more data than the file holds (here 2^32 - 1 squared bytes) is
    // "ends early", without trying to allocate what it claims (found by fuzz/fuzz_idx).
    auto lying = idx_header(0x08, {0xffffffffu, 0xffffffffu});
    lying.push_back(7);
    write_file(path, lying, true);
    EXPECT_NE(error_of([&] { read_idx(path); }).find("ends early"), std::string::npos);
    auto trailing = idx_header(0x08, {1});
    trailing.push_back(1);
    trailing.push_back(2);
    write_file(path, trailing, false);
    EXPECT_NE(error_of([&] { read_idx(path); }).find("after the last element"), std::string::npos);
    EXPECT_NE(error_of([&] { read_idx(path); }).find(path), std::string::npos);
    std::filesystem::remove(path);
    EXPECT_NE(error_of([&] { read_idx(path); }).find("cannot open"), std::string::npos);
}

TEST(RawF32, ReadsWithAndWithoutShape) {
    const std::string path = temp_path("x.f32");
    const std::vector<float> v{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    const Array flat = read_raw_f32(path, {});
    EXPECT_EQ(flat.shape, (Shape{6}));
    EXPECT_EQ(flat.values, v);
    EXPECT_EQ(read_raw_f32(path, {2, 3}).shape, (Shape{2, 3}));
    EXPECT_NE(error_of([&] { read_raw_f32(path, {4, 2}); }).find("ends early"), std::string::npos);
    EXPECT_NE(error_of([&] { read_raw_f32(path, {5}); }).find("after the last element"),
              std::string::npos);
    std::ofstream(path, std::ios::binary | std::ios::trunc).close();  // empty: zero values
    EXPECT_EQ(read_raw_f32(path, {}).shape, (Shape{0}));
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    std::ofstream(path, std::ios::binary | std::ios::app).put('x');
    EXPECT_NE(error_of([&] { read_raw_f32(path, {}); }).find("not a multiple of 4"),
              std::string::npos);
    std::filesystem::remove(path);
}

}  // namespace
}  // namespace dfp::data
