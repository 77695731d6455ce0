#include <gtest/gtest.h>

#include "base/error.hpp"
#include "base/isa.hpp"

namespace dfp {

TEST(Isa, ActiveNeverExceedsCpu) {
    EXPECT_LE(active_isa(), cpu_isa());
}

TEST(Isa, ParseRoundTripsEveryName) {
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::avx512_vnni})
        EXPECT_EQ(parse_isa(isa_name(isa), "test"), isa);
}

TEST(Isa, ParseRejectsUnknownNameAndNamesTheSource) {
    try {
        parse_isa("avx1024", "DFP_ISA");
        FAIL() << "no error for an unknown ISA";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("DFP_ISA"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("avx1024"), std::string::npos);
    }
}

}  // namespace dfp
