#include <gtest/gtest.h>

#include "base/error.hpp"
#include "precision/policy.hpp"

namespace dfp::precision {
namespace {

TEST(Precision, PaperDefaultKeepsFirstAndLastLayerInFp32) {
    const Policy p = Policy::dfp16();
    EXPECT_EQ(p.for_layer("conv1", 0, 54).compute, Compute::fp32);
    EXPECT_EQ(p.for_layer("res2a.conv1", 1, 54).compute, Compute::dfp16);
    EXPECT_EQ(p.for_layer("fc", 53, 54).compute, Compute::fp32);
    const LayerPrecision lp = p.for_layer("res2a.conv1", 1, 54);
    for (const TensorFormat* t : {&lp.weights, &lp.activations, &lp.gradients}) {
        EXPECT_EQ(t->format.bits, 16);
        EXPECT_EQ(t->format.granularity, Granularity::tensor);
        EXPECT_EQ(t->quantize.rounding, Rounding::nearest_even);
        EXPECT_EQ(t->quantize.shift, kDfp16Shift);
    }
    // DFP8 keeps its full 7-bit magnitudes: its int8 chains are long without headroom.
    const LayerPrecision lp8 = Policy::dfp8().for_layer("res2a.conv1", 1, 54);
    for (const TensorFormat* t : {&lp8.weights, &lp8.activations, &lp8.gradients}) {
        EXPECT_EQ(t->format.bits, 8);
        EXPECT_EQ(t->quantize.shift, 0);
    }
    EXPECT_EQ(Policy::fp32().for_layer("res2a.conv1", 1, 54).compute, Compute::fp32);
}

TEST(Precision, SpecOverridesInOrderAndSetsTensorClasses) {
    const Policy p = Policy::parse(
        "dfp16,res3*=fp32,res3b.conv2=dfp16,last=dfp16,gradients.rounding=stochastic,"
        "weights.granularity=axis,weights.axis=0,all.shift=1");
    EXPECT_EQ(p.for_layer("res3a.conv1", 5, 10).compute, Compute::fp32);
    EXPECT_EQ(p.for_layer("res3b.conv2", 6, 10).compute, Compute::dfp16);  // the later item wins
    EXPECT_EQ(p.for_layer("fc", 9, 10).compute, Compute::dfp16);
    EXPECT_EQ(p.for_layer("conv1", 0, 10).compute, Compute::fp32);
    const LayerPrecision lp = p.for_layer("x", 3, 10);
    EXPECT_EQ(lp.gradients.quantize.rounding, Rounding::stochastic);
    EXPECT_EQ(lp.activations.quantize.rounding, Rounding::nearest_even);
    EXPECT_EQ(lp.weights.format.granularity, Granularity::axis);
    EXPECT_EQ(lp.activations.quantize.shift, 1);
    EXPECT_EQ(Policy::parse("fp32,conv*=dfp16").for_layer("conv4", 2, 5).compute, Compute::dfp16);
}

TEST(Precision, BadSpecsAreErrorsNamingTheItem) {
    for (const char* bad : {"", "fp16", "dfp16,conv1", "dfp16,conv1=int8", "dfp16,weights.bits=17",
                            "dfp16,weights.colour=red", "dfp16,gradients.rounding=up",
                            "dfp16,all.shift=x", "dfp16,weights.bits=8,weights.shift=7"}) {
        EXPECT_THROW(Policy::parse(bad), Error) << bad;
    }
    try {
        Policy::parse("dfp16,gradients.rounding=up");
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("gradients.rounding=up"), std::string::npos)
            << e.what();
    }
}

TEST(Precision, GlobMatch) {
    EXPECT_TRUE(glob_match("res*", "res2a.conv1"));
    EXPECT_TRUE(glob_match("*conv1", "res2a.conv1"));
    EXPECT_TRUE(glob_match("res*.conv*", "res2a.conv1"));
    EXPECT_TRUE(glob_match("*", ""));
    EXPECT_FALSE(glob_match("res*", "conv1"));
    EXPECT_FALSE(glob_match("conv", "conv1"));
    EXPECT_FALSE(glob_match("*a*b", "aaab.c"));
}

}  // namespace
}  // namespace dfp::precision
