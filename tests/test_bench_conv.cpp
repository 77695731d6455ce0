// The harness of `dfptrain bench conv` on tiny layers, one repetition: every record is filled and
// finite, and each timed implementation computed the convolution it claims, pass by pass. No
// timing assertions.
//
// Bounds, against oneDNN FP32 on the same data (normal src and diff_dst, He-uniform weights):
// - DFP16: tests/test_nn_dfp16.cpp derives <= 1.9e-4 for such data at input shift 0 and 4.9e-4 at
//   shift 1 (one exponent per tensor, 16-bit mantissas). We allow kDfp16Bound = 1e-3, ten times
//   below what 8-bit quantization or a wrong pass gives (> 1e-2), and ask for more than
//   kQuantizedFloor: an error of 0 would mean the DFP16 column ran in FP32.
// - bf16: 8 significant bits round each operand with a relative rms error of about 2^-7 / sqrt(12)
//   / 1.5 = 1.5e-3 (the 1.5: the mean mantissa), a product of two by sqrt(2) times that, and the
//   bf16 dst and diff_src round once more: about 3e-3. We allow kBf16Bound = 1e-2, and ask for more
//   than kQuantizedFloor too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/isa.hpp"
#include "bench/conv_bench.hpp"

namespace dfp::bench {
namespace {

constexpr double kDfp16Bound = 1e-3, kBf16Bound = 1e-2, kQuantizedFloor = 1e-6;

std::vector<ConvLayerShape> tiny_layers() {
    return {{"tiny_3x3", 2, 8, 8, 16, 32, 3, 1, 1}, {"tiny_1x1", 2, 8, 8, 32, 16, 1, 1, 0}};
}

TEST(BenchConv, RecordsAreFilledAndEachImplementationComputesTheConvolution) {
    ConvBenchConfig config;
    config.layers = tiny_layers();
    config.threads = {1};
    config.repetitions = 1;
    config.min_sample_s = 0;
    const std::vector<ConvBenchRecord> records = run_conv_bench(config);
    ASSERT_EQ(records.size(), config.layers.size() * 3);
    std::printf("%s", conv_table_header().c_str());
    for (std::size_t i = 0; i < records.size(); ++i) {
        const ConvBenchRecord& r = records[i];
        std::printf("%s", conv_table_row(r).c_str());
        EXPECT_EQ(r.layer.name, config.layers[i / 3].name);
        EXPECT_EQ(r.threads, 1);
        EXPECT_GT(r.gflop, 0);
        EXPECT_FALSE(r.onednn_bf16_impls.empty());
        // oneDNN has bf16 convolutions only with AVX-512: elsewhere the bf16 column is empty and
        // says why, and every other column is filled.
        const bool bf16 = r.onednn_bf16_impls.rfind("unavailable", 0) != 0;
        if (cpu_isa() >= Isa::avx512)
            EXPECT_TRUE(bf16) << r.onednn_bf16_impls;
        else
            std::printf("bf16: %s\n", r.onednn_bf16_impls.c_str());
        std::vector<double> times{r.dfp16_ms, r.onednn_fp32_ms};
        EXPECT_EQ(r.onednn_bf16_ms.has_value(), bf16);
        if (bf16) times.push_back(*r.onednn_bf16_ms);
        EXPECT_EQ(r.onednn_s8_ms.has_value(), r.pass == ConvPass::fprop);
        // BPROP's time is a difference of two samples: finite and filled, but not necessarily
        // positive on a layer this small; the other times are samples themselves.
        for (double ms : times) {
            EXPECT_TRUE(std::isfinite(ms)) << conv_pass_name(r.pass);
            if (r.pass == ConvPass::bprop)
                EXPECT_NE(ms, 0.0);
            else
                EXPECT_GT(ms, 0.0);
        }
        EXPECT_TRUE(std::isfinite(r.speedup_vs_onednn_fp32()));
        EXPECT_GT(r.dfp16_rel_error, kQuantizedFloor) << conv_pass_name(r.pass);
        EXPECT_LT(r.dfp16_rel_error, kDfp16Bound) << conv_pass_name(r.pass);
        if (!bf16) continue;
        EXPECT_GT(r.onednn_bf16_rel_error, kQuantizedFloor) << conv_pass_name(r.pass);
        EXPECT_LT(r.onednn_bf16_rel_error, kBf16Bound) << conv_pass_name(r.pass);
    }
    EXPECT_EQ(records[0].pass, ConvPass::fprop);
    EXPECT_EQ(records[1].pass, ConvPass::bprop);
    EXPECT_EQ(records[2].pass, ConvPass::wtgrad);

    // The JSON keys are a public interface.
    const nlohmann::json json = conv_bench_json(records, config.repetitions);
    ASSERT_EQ(json.size(), records.size());
    for (const char* key : {"layer", "pass", "threads", "dfp16_ms", "onednn_fp32_ms",
                            "onednn_bf16_ms", "speedup_vs_onednn_fp32"})
        EXPECT_TRUE(json[0].contains(key)) << key;
    EXPECT_EQ(json[0]["onednn_bf16_ms"].is_null(), !records[0].onednn_bf16_ms);
    EXPECT_TRUE(json[1]["onednn_s8_ms"].is_null());  // FPROP only
    EXPECT_EQ(json[1]["pass"], "bprop");
    EXPECT_EQ(json[2]["layer"], "tiny_3x3");
}

TEST(BenchConv, UnknownLayerNamesTheOption) {
    try {
        select_conv_layers({"res2_3x3", "res9_7x7"});
        FAIL() << "no error";
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("--layers"), std::string::npos) << what;
        EXPECT_NE(what.find("res9_7x7"), std::string::npos) << what;
    }
    EXPECT_EQ(select_conv_layers({"res4_3x3", "res2_3x3"}).front().name, "res4_3x3");
}

TEST(BenchConv, ShapesParseWithDefaultsAndBadOnesNameTheOption) {
    const ConvLayerShape l = parse_conv_shape("32,28,28,16,32,5");
    EXPECT_EQ(std::vector<std::int64_t>({l.n, l.h, l.w, l.c, l.k, l.kernel, l.stride, l.pad}),
              std::vector<std::int64_t>({32, 28, 28, 16, 32, 5, 1, 2}));
    EXPECT_EQ(l.name, "16to32_5x5s1_28x28_n32");
    const ConvLayerShape s = parse_conv_shape("2,9,7,5,6,3,2,0");
    EXPECT_EQ(s.stride, 2);
    EXPECT_EQ(s.pad, 0);
    for (const char* bad :
         {"", "32,28,28,16,32", "32,28,28,16,32,5,1,2,9", "32,28,28,16,0,5", "32,28,28,16,32,5,0",
          "32,28,28,16,32,5,1,-1", "32,28x,28,16,32,5", "32,,28,16,32,5", "2,3,3,4,4,7,1,0"}) {
        try {
            parse_conv_shape(bad);
            ADD_FAILURE() << "no error for '" << bad << "'";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("--shape"), std::string::npos) << e.what();
        }
    }
}

TEST(BenchConv, Fp32PrecisionIsRefused) {
    ConvBenchConfig config;
    config.layers = {tiny_layers().front()};
    config.precision = "fp32";
    EXPECT_THROW(run_conv_bench(config), Error);
}

}  // namespace
}  // namespace dfp::bench
