// Classification data (order, batches, standardisation, bad files) and the LeNet-5 model.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include <unistd.h>

#include "base/error.hpp"
#include "data/classification.hpp"
#include "models/lenet.hpp"

namespace dfp {
namespace {

TEST(Data, EpochOrderIsAPermutationFixedBySeedAndEpoch) {
    const auto a = data::epoch_order(1001, 7, 0);
    auto sorted = a;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::int64_t> iota(1001);
    std::iota(iota.begin(), iota.end(), 0);
    EXPECT_EQ(sorted, iota);
    EXPECT_EQ(a, data::epoch_order(1001, 7, 0));
    EXPECT_NE(a, data::epoch_order(1001, 7, 1));
    EXPECT_NE(a, data::epoch_order(1001, 8, 0));
    EXPECT_NE(a, iota);
}

TEST(Data, StandardizeUsesTrainingStatisticsForBothSets) {
    data::TrainTest d;
    d.train = {2, 1, 1, 2, {1, 3, 5, 7}, {0, 1, 0, 1}};  // two 2x1 images: mean 4, std sqrt(5)
    d.test = {2, 1, 1, 2, {4, 9}, {1}};
    data::standardize(d);
    EXPECT_NEAR(d.train.images[0], -3 / std::sqrt(5.0), 1e-6);
    EXPECT_NEAR(d.test.images[0], 0.0, 1e-6);
    EXPECT_NEAR(d.test.images[1], 5 / std::sqrt(5.0), 1e-6);
    data::TrainTest flat;
    flat.train = {1, 1, 1, 2, {2, 2}, {0, 1}};
    EXPECT_THROW(data::standardize(flat), Error);
}

TEST(Data, GatherBatchCopiesTheChosenSamples) {
    const data::ImageDataset d{1, 2, 1, 3, {0, 1, 10, 11, 20, 21}, {0, 1, 2}};
    std::vector<float> images;
    std::vector<int> labels;
    const std::vector<std::int64_t> idx{2, 0};
    data::gather_batch(d, idx, images, labels);
    EXPECT_EQ(images, (std::vector<float>{20, 21, 0, 1}));
    EXPECT_EQ(labels, (std::vector<int>{2, 0}));
}

TEST(Data, MissingDatasetNamesTheFirstMissingFile) {
    try {
        data::read_idx_folder("no-such-dir");
        FAIL();
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("train-images-idx3-ubyte.gz"), std::string::npos) << msg;
    }
    EXPECT_THROW(data::read_dataset("cifar:somewhere"), Error);
    EXPECT_THROW(data::read_dataset("idx:"), Error);
}

TEST(Data, LabelsMustMatchImagesAndClasses) {
    const auto dir = std::filesystem::temp_directory_path() / ("dfp_cls_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto write = [](const std::filesystem::path& p, std::vector<unsigned char> bytes) {
        gzFile f = gzopen(p.c_str(), "wb");
        gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
        gzclose(f);
    };
    write(dir / "img", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 5, 6});  // 2 images 1x1
    write(dir / "lab3", {0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 1});                      // 3 labels
    write(dir / "lab_bad", {0, 0, 8, 1, 0, 0, 0, 2, 0, 10});                     // label 10 of 10 classes
    write(dir / "lab_ok", {0, 0, 8, 1, 0, 0, 0, 2, 9, 0});
    EXPECT_THROW(data::read_idx_classification((dir / "img").string(), (dir / "lab3").string(), 10), Error);
    EXPECT_THROW(data::read_idx_classification((dir / "img").string(), (dir / "lab_bad").string(), 10), Error);
    const auto d = data::read_idx_classification((dir / "img").string(), (dir / "lab_ok").string(), 10);
    EXPECT_EQ(d.labels, (std::vector<int>{9, 0}));
    EXPECT_EQ(d.images, (std::vector<float>{5, 6}));
    std::filesystem::remove_all(dir);
}

std::size_t parameter_count(nn::Net& net) {
    std::size_t n = 0;
    for (const nn::Param* p : net.params()) n += p->value.size();
    return n;
}

TEST(Models, LeNet5HasThePublishedParameterCount) {
    // conv1 6*(25+1) + conv2 16*(150+1) + fc1 400*120+120 + fc2 120*84+84 + fc3 84*10+10
    nn::Net net = models::lenet5({28, 28, 1, 10});
    EXPECT_EQ(parameter_count(net), 156u + 2416u + 48120u + 10164u + 850u);
    nn::Tensor x({3, 28, 28, 1});
    EXPECT_EQ(net.forward(x, {nn::Mode::eval, 0}).shape, (Shape{3, 10}));
    nn::Net colour = models::lenet5({32, 32, 3, 100});
    nn::Tensor y({2, 32, 32, 3});
    EXPECT_EQ(colour.forward(y, {nn::Mode::eval, 0}).shape, (Shape{2, 100}));
    EXPECT_THROW(models::lenet5({8, 8, 1, 10}), Error);
}

}  // namespace
}  // namespace dfp
