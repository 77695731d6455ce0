// Image folders: JPEG decoding, resize and crop, class mapping, bad input.
#include <gtest/gtest.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "data/classification.hpp"
#include "data/image_folder.hpp"
#include "data/jpeg.hpp"

namespace dfp {
namespace {

namespace fs = std::filesystem;

// Encodes `pixels` (height, width, 1 or 3 channels) as a JPEG at top quality.
std::vector<std::uint8_t> encode_jpeg(int width, int height,
                                      const std::vector<std::uint8_t>& pixels, bool grey = false) {
    tjhandle tj = tjInitCompress();
    unsigned char* out = nullptr;
    unsigned long size = 0;
    constexpr int kQuality = 100;
    const int rc = tjCompress2(tj, pixels.data(), width, 0, height, grey ? TJPF_GRAY : TJPF_RGB,
                               &out, &size, grey ? TJSAMP_GRAY : TJSAMP_444, kQuality, 0);
    EXPECT_EQ(rc, 0) << tjGetErrorStr2(tj);
    std::vector<std::uint8_t> bytes(out, out + size);
    tjFree(out);
    tjDestroy(tj);
    return bytes;
}

void write_file(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
}

// A solid-colour JPEG: JPEG keeps flat colours to within a step or two.
void write_solid(const fs::path& path, int width, int height, std::uint8_t r, std::uint8_t g,
                 std::uint8_t b) {
    std::vector<std::uint8_t> px;
    for (int i = 0; i < width * height; ++i) px.insert(px.end(), {r, g, b});
    write_file(path, encode_jpeg(width, height, px));
}

class TempDir {
  public:
    TempDir()
        : path_(fs::temp_directory_path() / ("dfp_folder_test_" + std::to_string(::getpid()) + "_" +
                                             std::to_string(count_++))) {
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~TempDir() { fs::remove_all(path_); }
    const fs::path& path() const { return path_; }

  private:
    static inline int count_ = 0;
    fs::path path_;
};

// The error message of read_image_folder(dir, 8, 8), or "" when it succeeds.
std::string folder_error(const fs::path& dir) {
    try {
        data::read_image_folder(dir.string(), 8, 8);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// A valid tree: train/{a,b}, test/{a}.
void write_valid_tree(const fs::path& root) {
    write_solid(root / "train/a/1.jpg", 10, 10, 200, 0, 0);
    write_solid(root / "train/b/1.jpg", 10, 10, 0, 200, 0);
    write_solid(root / "test/a/1.jpg", 10, 10, 200, 0, 0);
}

TEST(ImageFolder, ClassesAreSortedFolderNamesAndTestUsesTrainsMapping) {
    const TempDir tmp;
    const fs::path& root = tmp.path();
    // Classes by colour; sizes differ (landscape, portrait, square) and become 16 x 16.
    write_solid(root / "train/cat/x.jpg", 40, 30, 250, 10, 10);
    write_solid(root / "train/cat/y.jpg", 30, 50, 250, 10, 10);
    write_solid(root / "train/ant/z.jpg", 20, 20, 10, 250, 10);
    write_solid(root / "train/bird/w.jpg", 64, 17, 10, 10, 250);
    write_solid(root / "val/cat/1.jpg", 16, 16, 250, 10, 10);
    write_solid(root / "val/ant/2.jpg", 33, 33, 10, 250, 10);
    write_file(root / "train/cat/.hidden", {'x'});  // skipped, like .DS_Store

    const data::TrainTest d = data::read_dataset("folder:" + root.string() + ":16");
    for (const data::ImageDataset* s : {&d.train, &d.test}) {
        EXPECT_EQ(s->classes, 3);
        EXPECT_EQ(s->height, 16);
        EXPECT_EQ(s->width, 16);
        EXPECT_EQ(s->channels, 3);
        EXPECT_EQ(s->images.size(), static_cast<std::size_t>(s->size() * 16 * 16 * 3));
    }
    // ant = 0, bird = 1, cat = 2; round-robin: first image of each class, then the second.
    EXPECT_EQ(d.train.labels, (std::vector<int>{0, 1, 2, 2}));
    EXPECT_EQ(d.test.labels, (std::vector<int>{0, 2}));
    const auto dominant = [](const data::ImageDataset& s, std::int64_t i) {
        const float* px = &s.images[i * s.image_numel()];
        for (std::int64_t j = 0; j < s.image_numel(); ++j)
            EXPECT_NEAR(px[j], px[j % 3], 4.0f) << "image " << i << " is not flat";
        return static_cast<int>(std::max_element(px, px + 3) - px);
    };
    const int colour_of_label[] = {1, 2, 0};  // ant green, bird blue, cat red
    for (std::int64_t i = 0; i < d.train.size(); ++i)
        EXPECT_EQ(dominant(d.train, i), colour_of_label[d.train.labels[i]]) << "train " << i;
    for (std::int64_t i = 0; i < d.test.size(); ++i)
        EXPECT_EQ(dominant(d.test, i), colour_of_label[d.test.labels[i]]) << "test " << i;
}

TEST(ImageFolder, DefaultIsShorterSide256CentreCrop224) {
    const TempDir tmp;
    write_valid_tree(tmp.path());
    const data::TrainTest d = data::read_dataset("folder:" + tmp.path().string());
    EXPECT_EQ(d.train.height, data::kFolderCrop);
    EXPECT_EQ(d.train.width, data::kFolderCrop);
    EXPECT_EQ(d.test.size(), 1);
    EXPECT_NEAR(d.test.images[0], 200.0f, 3.0f);
}

TEST(ImageFolder, GreyJpegsBecomeThreeEqualChannels) {
    const TempDir tmp;
    std::vector<std::uint8_t> grey(12 * 12);
    for (std::size_t i = 0; i < grey.size(); ++i) grey[i] = static_cast<std::uint8_t>(i * 7 % 256);
    write_file(tmp.path() / "train/a/g.jpg", encode_jpeg(12, 12, grey, true));
    write_solid(tmp.path() / "train/b/c.jpg", 12, 12, 1, 2, 3);
    write_file(tmp.path() / "test/a/g.jpg", encode_jpeg(12, 12, grey, true));
    const data::TrainTest d = data::read_image_folder(tmp.path().string(), 12, 12);
    ASSERT_EQ(d.test.size(), 1);
    float spread = 0;
    for (std::int64_t p = 0; p < 12 * 12; ++p) {
        const float* px = &d.test.images[p * 3];
        EXPECT_EQ(px[0], px[1]);
        EXPECT_EQ(px[0], px[2]);
        spread = std::max(spread, px[0] - d.test.images[0]);
    }
    EXPECT_GT(spread, 100.0f);  // the picture survived, not a flat grey
}

TEST(ImageFolder, ResizeKeepsAspectAndCropsTheCentre) {
    // Columns 0, 10, 20, ...: a horizontal ramp, the same in all rows and channels.
    const auto ramp = [](int width, int height) {
        data::RgbImage img{height, width, {}};
        for (int y = 0; y < height; ++y)
            for (int x = 0; x < width; ++x)
                for (int c = 0; c < 3; ++c) img.pixels.push_back(static_cast<std::uint8_t>(10 * x));
        return img;
    };
    std::vector<float> dst(4 * 4 * 3);
    // 8 x 4 at shorter side 4: no scaling; the centre 4 columns are 2..5.
    data::resize_center_crop(ramp(8, 4), 4, 4, dst.data());
    for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 4; ++x) EXPECT_NEAR(dst[(y * 4 + x) * 3], 10.0f * (x + 2), 1e-4);
    // 8 x 8 to 4 x 4: each output is the triangle-weighted mean around its centre; in the
    // interior a linear ramp stays linear (output x covers source columns 2x, 2x+1: 10*(2x+0.5)).
    data::resize_center_crop(ramp(8, 8), 4, 4, dst.data());
    for (int x = 1; x < 3; ++x) EXPECT_NEAR(dst[x * 3], 10.0f * (2 * x + 0.5f), 1e-3);
    // 16 x 8 to shorter side 4 (8 x 4), crop 2 x 2: source columns 6..9 averaged in pairs.
    std::vector<float> small(2 * 2 * 3);
    data::resize_center_crop(ramp(16, 8), 4, 2, small.data());
    EXPECT_NEAR(small[0], 65.0f, 1e-3);
    EXPECT_NEAR(small[3], 85.0f, 1e-3);
    // Enlarging a flat image keeps it flat.
    data::RgbImage flat{3, 5, std::vector<std::uint8_t>(3 * 5 * 3, 77)};
    std::vector<float> big(9 * 9 * 3);
    data::resize_center_crop(flat, 9, 9, big.data());
    for (float v : big) EXPECT_NEAR(v, 77.0f, 1e-3);
    EXPECT_THROW(data::resize_center_crop(flat, 4, 5, big.data()), Error);
}

TEST(ImageFolder, BadInputIsAnErrorNamingTheFolderOrFile) {
    struct Case {
        const char* what;
        void (*make)(const fs::path& root);
        const char* named;  // path relative to the root that the message must name
        const char* cause;
    };
    const Case cases[] = {
        {"missing folder", [](const fs::path&) {}, "nope", "folder not found"},
        {"no train folder", [](const fs::path& r) { fs::create_directories(r / "test/a"); },
         "train", "folder not found"},
        {"no test or val folder",
         [](const fs::path& r) { write_solid(r / "train/a/1.jpg", 8, 8, 1, 1, 1); }, "test", "nor"},
        {"no classes",
         [](const fs::path& r) {
             fs::create_directories(r / "train");
             write_solid(r / "test/a/1.jpg", 8, 8, 1, 1, 1);
         },
         "train", "no class folders"},
        {"class without images",
         [](const fs::path& r) {
             write_valid_tree(r);
             fs::create_directories(r / "train/c");
         },
         "train/c", "without images"},
        {"file among class folders",
         [](const fs::path& r) {
             write_valid_tree(r);
             write_solid(r / "train/loose.jpg", 8, 8, 1, 1, 1);
         },
         "train/loose.jpg", "expected only class folders"},
        {"unknown test class",
         [](const fs::path& r) {
             write_valid_tree(r);
             write_solid(r / "test/zebra/1.jpg", 8, 8, 1, 1, 1);
         },
         "test/zebra", "has no folder in"},
        {"not a JPEG",
         [](const fs::path& r) {
             write_valid_tree(r);
             write_file(r / "train/b/notes.txt", {'h', 'e', 'l', 'l', 'o'});
         },
         "train/b/notes.txt", "not a JPEG"},
        {"empty file",
         [](const fs::path& r) {
             write_valid_tree(r);
             write_file(r / "test/a/0.jpg", {});
         },
         "test/a/0.jpg", "not a JPEG"},
        {"corrupt header",
         [](const fs::path& r) {
             write_valid_tree(r);
             write_file(r / "train/a/2.jpg", {0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3, 4, 5, 6, 7, 8});
         },
         "train/a/2.jpg", "corrupt JPEG header"},
        {"corrupt data",
         [](const fs::path& r) {
             write_valid_tree(r);
             std::vector<std::uint8_t> px;
             for (int i = 0; i < 64 * 64 * 3; ++i) px.push_back(static_cast<std::uint8_t>(i * 31));
             std::vector<std::uint8_t> jpeg = encode_jpeg(64, 64, px);
             // A marker in the middle of the entropy-coded data: the scan is damaged.
             for (std::size_t k = jpeg.size() / 2; k < jpeg.size() / 2 + 8; k += 2) {
                 jpeg[k] = 0xFF;
                 jpeg[k + 1] = 0xC4;
             }
             write_file(r / "train/a/bad.jpg", jpeg);
         },
         "train/a/bad.jpg", "corrupt"},
        {"truncated",
         [](const fs::path& r) {
             write_valid_tree(r);
             std::vector<std::uint8_t> px;
             for (int i = 0; i < 64 * 64 * 3; ++i) px.push_back(static_cast<std::uint8_t>(i * 31));
             std::vector<std::uint8_t> jpeg = encode_jpeg(64, 64, px);
             jpeg.resize(jpeg.size() / 2);
             write_file(r / "train/b/cut.jpg", jpeg);
         },
         "train/b/cut.jpg", "truncated"},
    };
    for (const Case& c : cases) {
        const TempDir tmp;
        c.make(tmp.path());
        const fs::path dir =
            std::string(c.what) == "missing folder" ? tmp.path() / "nope" : tmp.path();
        const std::string msg = folder_error(dir);
        const std::string named = (tmp.path() / c.named).string();
        const bool ok =
            msg.find(named) != std::string::npos && msg.find(c.cause) != std::string::npos;
        std::printf("image folder %-26s %s: %s\n", c.what, ok ? "PASS" : "FAIL", msg.c_str());
        EXPECT_TRUE(ok) << c.what << ": expected '" << named << "' and '" << c.cause << "' in '"
                        << msg << "'";
    }
}

TEST(ImageFolder, SizeSpecIsChecked) {
    EXPECT_THROW(data::read_dataset("folder:/tmp:0"), Error);
    EXPECT_THROW(data::read_dataset("folder:/tmp:99999"), Error);
    try {
        data::read_dataset("folder:/no/such/dir:32");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'/no/such/dir'"), std::string::npos) << e.what();
    }
}

TEST(ImageFolder, HugeClaimedSizeIsRefusedBeforeDecoding) {
    // A valid 8 x 8 JPEG whose frame header claims 65000 x 65000 pixels (libjpeg's own limit
    // is 65500 per side).
    std::vector<std::uint8_t> jpeg = encode_jpeg(8, 8, std::vector<std::uint8_t>(8 * 8 * 3, 9));
    for (std::size_t i = 0; i + 8 < jpeg.size(); ++i)
        if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) {  // SOF0: FF C0, length, precision, H, W
            for (std::size_t k : {5, 7}) {
                jpeg[i + k] = 0xFD;  // 65000 = 0xFDE8, big-endian
                jpeg[i + k + 1] = 0xE8;
            }
            break;
        }
    try {
        data::decode_jpeg(jpeg.data(), jpeg.size(), "huge.jpg");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'huge.jpg': 65000 x 65000"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace dfp
