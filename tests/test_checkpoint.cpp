// Checkpoints: exact round trip of weights, momentum and BatchNorm statistics; every way a file
// can be wrong is a named error that leaves the network untouched; writes are atomic.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "base/error.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/norm.hpp"
#include "train/checkpoint.hpp"

namespace dfp::train {
namespace {

namespace fs = std::filesystem;

nn::Net small_net(std::int64_t classes = 3) {
    nn::Net net;
    int x = net.add<nn::Conv2d>({nn::Net::kInput}, "conv",
                                nn::Conv2dConfig{.in_channels = 1, .out_channels = 2, .kernel = 3});
    x = net.add<nn::BatchNorm2d>({x}, "bn", nn::BatchNormConfig{.channels = 2});
    net.add<nn::Linear>({x}, "fc",
                        nn::LinearConfig{.in_features = 2 * 2 * 2, .out_features = classes});
    return net;
}

// Gives every saved value a distinct number, so a mix-up of tensors shows.
void fill(nn::Net& net, Sgd& sgd, float base) {
    float v = base;
    for (std::size_t i = 0; i < sgd.params().size(); ++i) {
        for (float& w : sgd.params()[i]->value) w = v++;
        for (float& m : sgd.velocity(i)) m = -(v++);
    }
    for (const nn::NamedBuffer& b : net.buffers())
        for (float& s : *b.values) s = v++;
}

std::vector<float> snapshot(nn::Net& net, Sgd& sgd) {
    std::vector<float> all;
    for (std::size_t i = 0; i < sgd.params().size(); ++i) {
        all.insert(all.end(), sgd.params()[i]->value.begin(), sgd.params()[i]->value.end());
        all.insert(all.end(), sgd.velocity(i).begin(), sgd.velocity(i).end());
    }
    for (const nn::NamedBuffer& b : net.buffers())
        all.insert(all.end(), b.values->begin(), b.values->end());
    return all;
}

class Checkpoint : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("dfp_ckpt_" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        path_ = (dir_ / "last.ckpt").string();
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string error_loading(const std::string& path) {
        nn::Net net = small_net();
        Sgd sgd(net.params(), {});
        fill(net, sgd, 1000);
        const auto before = snapshot(net, sgd);
        try {
            load_checkpoint(path, net, sgd);
        } catch (const Error& e) {
            EXPECT_EQ(snapshot(net, sgd), before) << "a failed load changed the network";
            return e.what();
        }
        return "";
    }
    fs::path dir_;
    std::string path_;
};

TEST_F(Checkpoint, RoundTripIsExact) {
    nn::Net a = small_net();
    Sgd sa(a.params(), {});
    fill(a, sa, 1);
    save_checkpoint(path_, a, sa, {3, 77, {{"model", "small"}}});
    EXPECT_FALSE(fs::exists(path_ + ".tmp"));
    nn::Net b = small_net();
    Sgd sb(b.params(), {});
    const RunState s = load_checkpoint(path_, b, sb);
    EXPECT_EQ(s.epochs_done, 3);
    EXPECT_EQ(s.iteration, 77);
    EXPECT_EQ(s.config["model"], "small");
    EXPECT_EQ(snapshot(a, sa), snapshot(b, sb));
    EXPECT_FALSE(b.buffers().empty());  // BatchNorm's running statistics are part of it
}

TEST_F(Checkpoint, CorruptTruncatedAndForeignFilesAreNamedErrors) {
    nn::Net a = small_net();
    Sgd sa(a.params(), {});
    fill(a, sa, 1);
    save_checkpoint(path_, a, sa, {1, 1, {}});
    std::ifstream in(path_, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

    const std::string flipped = (dir_ / "flipped").string();
    std::string f = bytes;
    f[f.size() / 2] ^= 0x10;
    std::ofstream(flipped, std::ios::binary) << f;
    EXPECT_NE(error_loading(flipped).find("checksum"), std::string::npos);

    const std::string truncated = (dir_ / "truncated").string();
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() - 9);
    EXPECT_NE(error_loading(truncated).find("checksum"), std::string::npos);

    const std::string tiny = (dir_ / "tiny").string();
    std::ofstream(tiny, std::ios::binary) << "DFP";
    EXPECT_NE(error_loading(tiny).find("not a dfptrain checkpoint"), std::string::npos);

    EXPECT_NE(error_loading((dir_ / "missing").string()).find("cannot open"), std::string::npos);

    // A checkpoint of another network (different classifier width) does not load into this one.
    nn::Net other = small_net(5);
    Sgd so(other.params(), {});
    const std::string foreign = (dir_ / "foreign").string();
    save_checkpoint(foreign, other, so, {1, 1, {}});
    const std::string msg = error_loading(foreign);
    EXPECT_NE(msg.find("fc.weight"), std::string::npos) << msg;
}

// A header whose numbers are not non-negative integers is corrupt, even with a valid checksum
// (found by fuzz/fuzz_checkpoint: converting 9.2e22 to int64 was undefined behaviour).
TEST_F(Checkpoint, HeaderNumbersMustBeNonNegativeIntegers) {
    for (const char* epochs : {"9.2e22", "-1", "1.5", "\"1\""}) {
        const std::string header = std::string(R"({"config":{},"epochs_done":)") + epochs +
                                   R"(,"iteration":0,"tensors":[]})";
        std::vector<unsigned char> bytes{'D', 'F', 'P', 'C', 'K', 'P', 'T', '\0', 1, 0, 0, 0};
        const std::uint64_t n = header.size();
        bytes.insert(bytes.end(), reinterpret_cast<const unsigned char*>(&n),
                     reinterpret_cast<const unsigned char*>(&n) + sizeof n);
        bytes.insert(bytes.end(), header.begin(), header.end());
        const std::uint32_t crc = crc32_of(bytes.data(), bytes.size());
        bytes.insert(bytes.end(), reinterpret_cast<const unsigned char*>(&crc),
                     reinterpret_cast<const unsigned char*>(&crc) + sizeof crc);
        try {
            parse_checkpoint(bytes, "crafted");
            FAIL() << "accepted epochs_done " << epochs;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("epochs_done"), std::string::npos) << e.what();
        }
    }
}

TEST_F(Checkpoint, UnwritableFolderIsANamedErrorAndKeepsTheOldCheckpoint) {
    nn::Net a = small_net();
    Sgd sa(a.params(), {});
    EXPECT_THROW(save_checkpoint((dir_ / "no" / "such" / "dir" / "x.ckpt").string(), a, sa, {}),
                 Error);
    fill(a, sa, 1);
    save_checkpoint(path_, a, sa, {1, 1, {}});
    // The next save cannot create its temporary file (a folder stands in its way; this fails
    // even for root, unlike permissions): an error, and the old checkpoint is still whole.
    fs::create_directory(path_ + ".tmp");
    fill(a, sa, 500);
    EXPECT_THROW(save_checkpoint(path_, a, sa, {2, 2, {}}), Error);
    nn::Net b = small_net();
    Sgd sb(b.params(), {});
    EXPECT_EQ(load_checkpoint(path_, b, sb).epochs_done, 1);
}

}  // namespace
}  // namespace dfp::train
