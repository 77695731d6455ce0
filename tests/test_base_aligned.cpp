#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "base/aligned.hpp"

namespace dfp {

TEST(Aligned, SmallBuffersAlignToLinesLargeOnesToHugePages) {
    for (std::size_t bytes : {std::size_t{1}, std::size_t{63}, std::size_t{4096}, kHugePage - 1,
                              kHugePage, kHugePage + 1, 3 * kHugePage + 5}) {
        auto* p = static_cast<unsigned char*>(allocate_aligned(bytes));
        ASSERT_NE(p, nullptr);
        const auto address = reinterpret_cast<std::uintptr_t>(p);
        EXPECT_EQ(address % (bytes < kHugePage ? kCacheLine : kHugePage), 0u) << bytes;
        // Every byte asked for is usable.
        std::memset(p, 0xab, bytes);
        EXPECT_EQ(p[bytes - 1], 0xab);
        free_aligned(p, bytes);
    }
}

TEST(Aligned, VectorsKeepTheirValuesAcrossTheHugePageThreshold) {
    AlignedVector<float> v(100);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = float(i);
    v.resize(kHugePage / sizeof(float) + 7, -1.0f);  // grows past the threshold: moved
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.data()) % kHugePage, 0u);
    for (std::size_t i = 0; i < 100; ++i) ASSERT_EQ(v[i], float(i));
    EXPECT_EQ(v.back(), -1.0f);
    v.resize(10);
    v.shrink_to_fit();  // back below it
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.data()) % kCacheLine, 0u);
    for (std::size_t i = 0; i < 10; ++i) ASSERT_EQ(v[i], float(i));
}

}  // namespace dfp
