// Classification data (order, batches, standardisation, bad files) and the LeNet-5 model.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <span>

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
    UninitAlignedVector<float> images;
    std::vector<int> labels;
    const std::vector<std::int64_t> idx{2, 0};
    data::gather_batch(d, idx, images, labels);
    EXPECT_EQ(images, (UninitAlignedVector<float>{20, 21, 0, 1}));
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
    const auto dir =
        std::filesystem::temp_directory_path() / ("dfp_cls_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto write = [](const std::filesystem::path& p, std::vector<unsigned char> bytes) {
        gzFile f = gzopen(p.c_str(), "wb");
        gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
        gzclose(f);
    };
    write(dir / "img", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 5, 6});  // 2 images 1x1
    write(dir / "lab3", {0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 1});                      // 3 labels
    write(dir / "lab_bad", {0, 0, 8, 1, 0, 0, 0, 2, 0, 10});  // label 10 of 10 classes
    write(dir / "lab_ok", {0, 0, 8, 1, 0, 0, 0, 2, 9, 0});
    EXPECT_THROW(data::read_idx_classification((dir / "img").string(), (dir / "lab3").string(), 10),
                 Error);
    EXPECT_THROW(
        data::read_idx_classification((dir / "img").string(), (dir / "lab_bad").string(), 10),
        Error);
    const auto d =
        data::read_idx_classification((dir / "img").string(), (dir / "lab_ok").string(), 10);
    EXPECT_EQ(d.labels, (std::vector<int>{9, 0}));
    EXPECT_EQ(d.images, (std::vector<float>{5, 6}));
    std::filesystem::remove_all(dir);
}

// Writes a CIFAR-10 folder of `per_file` records per file; pixel (c, i) of record r is
// (r + 7 c + i) % 256 and its label r % 10.
void write_cifar10(const std::filesystem::path& dir, int per_file) {
    std::filesystem::create_directories(dir);
    for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                             "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
        std::ofstream out(dir / name, std::ios::binary);
        for (int r = 0; r < per_file; ++r) {
            out.put(static_cast<char>(r % 10));
            for (int c = 0; c < 3; ++c)
                for (int i = 0; i < 1024; ++i) out.put(static_cast<char>((r + 7 * c + i) % 256));
        }
    }
}

TEST(Data, CifarRecordsBecomeNhwcImages) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("dfp_cifar_" + std::to_string(::getpid()));
    write_cifar10(dir, 3);
    const data::TrainTest d = data::read_dataset("cifar:" + dir.string());
    EXPECT_EQ(d.train.size(), 15);
    EXPECT_EQ(d.test.size(), 3);
    EXPECT_EQ(d.train.classes, 10);
    EXPECT_EQ(d.train.labels[4], 1);  // second file, record 1
    // record 2, pixel i = 5 (row 0, column 5), channel 1 (G): (2 + 7 + 5) % 256
    EXPECT_EQ(d.test.images[2 * 3072 + 5 * 3 + 1], 14.0f);
    // A truncated file is a named error.
    std::filesystem::resize_file(dir / "data_batch_3.bin", 3 * 3073 - 10);
    try {
        data::read_cifar_folder(dir.string());
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("data_batch_3.bin"), std::string::npos) << e.what();
    }
    std::filesystem::remove_all(dir);
    EXPECT_THROW(data::read_cifar_folder(dir.string()), Error);
}

TEST(Data, SyntheticDataIsReproducibleAndShapedAsAsked) {
    const data::TrainTest a = data::read_dataset("synthetic:3x5x7:4");
    EXPECT_EQ(a.train.channels, 3);
    EXPECT_EQ(a.train.height, 5);
    EXPECT_EQ(a.train.width, 7);
    EXPECT_EQ(a.train.classes, 4);
    EXPECT_EQ(a.train.images.size(), static_cast<std::size_t>(a.train.size() * 105));
    EXPECT_EQ(a.train.images, data::read_dataset("synthetic:3x5x7:4").train.images);
    for (int label = 0; label < 4; ++label)
        EXPECT_NE(std::find(a.train.labels.begin(), a.train.labels.end(), label),
                  a.train.labels.end());
    for (const char* bad : {"synthetic:3x5:4", "synthetic:3x5x7", "synthetic:0x5x7:4",
                            "synthetic:3x5x7:1", "synthetic:3x5x7:4x"})
        EXPECT_THROW(data::read_dataset(bad), Error) << bad;
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
