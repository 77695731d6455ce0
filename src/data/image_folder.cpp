#include "data/image_folder.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <new>
#include <vector>

#include "base/error.hpp"
#include "data/jpeg.hpp"

namespace dfp::data {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kChannels = 3;

bool hidden(const fs::path& p) {
    return p.filename().string().starts_with('.');
}

// The visible entries of folder `dir`, sorted by name so that the result never depends on the
// file system's order.
std::vector<fs::path> sorted_entries(const fs::path& dir) {
    std::error_code ec;
    std::vector<fs::path> entries;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (!hidden(it->path())) entries.push_back(it->path());
    if (ec) throw Error("'" + dir.string() + "': cannot list the folder: " + ec.message());
    std::sort(entries.begin(), entries.end());
    return entries;
}

struct Split {
    std::vector<std::string> class_names;      // sorted
    std::vector<std::vector<fs::path>> files;  // per class, sorted
};

// The class folders of `dir` (train/ or test/) and the files in each.
Split list_split(const fs::path& dir) {
    Split s;
    for (const fs::path& cls : sorted_entries(dir)) {
        if (!fs::is_directory(cls))
            throw Error("'" + cls.string() + "': expected only class folders in '" + dir.string() +
                        "' (one folder of JPEG files per class)");
        std::vector<fs::path> files = sorted_entries(cls);
        for (const fs::path& f : files)
            if (fs::is_directory(f))
                throw Error("'" + f.string() + "': a folder inside class folder '" + cls.string() +
                            "' (expected only JPEG files)");
        if (files.empty()) throw Error("'" + cls.string() + "': class folder without images");
        s.class_names.push_back(cls.filename().string());
        s.files.push_back(std::move(files));
    }
    if (s.class_names.empty())
        throw Error("'" + dir.string() + "': no class folders (expected " + dir.string() +
                    "/CLASS/*.jpg)");
    return s;
}

// Files and labels in round-robin order over the classes: the first file of every class, then
// the second, and so on (classes with fewer files drop out).
void round_robin(const Split& s, const std::vector<int>& labels_of_class,
                 std::vector<fs::path>& files, std::vector<int>& labels) {
    std::size_t longest = 0;
    for (const auto& f : s.files) longest = std::max(longest, f.size());
    for (std::size_t i = 0; i < longest; ++i)
        for (std::size_t c = 0; c < s.files.size(); ++c)
            if (i < s.files[c].size()) {
                files.push_back(s.files[c][i]);
                labels.push_back(labels_of_class[c]);
            }
}

double physical_memory_bytes() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0;
}

// Decodes `files` into d.images. Errors cannot leave an OpenMP loop, so each image's error is
// kept and the first in file order is thrown afterwards (the same one at any thread count).
void decode_all(const std::vector<fs::path>& files, std::int64_t resize, ImageDataset& d) {
    const std::int64_t n = static_cast<std::int64_t>(files.size()), numel = d.image_numel();
    d.images.resize(static_cast<std::size_t>(n * numel));
    std::vector<std::string> errors(files.size());
#pragma omp parallel for schedule(dynamic, 4)
    for (std::int64_t i = 0; i < n; ++i) {
        try {
            resize_center_crop(read_jpeg(files[i].string()), resize, d.height,
                               &d.images[i * numel]);
        } catch (const Error& e) {
            errors[i] = e.what();
        } catch (const std::bad_alloc&) {
            errors[i] = "'" + files[i].string() + "': out of memory while decoding";
        } catch (const std::exception& e) {
            errors[i] = "'" + files[i].string() + "': " + e.what();
        }
    }
    for (const std::string& e : errors)
        if (!e.empty()) throw Error(e);
}

}  // namespace

TrainTest read_image_folder(const std::string& dir, std::int64_t resize, std::int64_t crop) {
    if (crop < 1 || crop > resize)
        throw Error("folder:" + dir + ": need 1 <= crop <= resize, got crop " +
                    std::to_string(crop) + ", resize " + std::to_string(resize));
    const fs::path root(dir);
    const char* layout = " (folder:DIR expects DIR/train/CLASS/*.jpg and DIR/test/CLASS/*.jpg)";
    if (!fs::is_directory(root)) throw Error("'" + dir + "': folder not found" + layout);
    const fs::path train_dir = root / "train";
    if (!fs::is_directory(train_dir))
        throw Error("'" + train_dir.string() + "': folder not found" + layout);
    fs::path test_dir = root / "test";
    if (!fs::is_directory(test_dir)) test_dir = root / "val";
    if (!fs::is_directory(test_dir))
        throw Error("'" + (root / "test").string() + "': folder not found (nor '" +
                    test_dir.string() + "')" + layout);

    const Split train = list_split(train_dir), test = list_split(test_dir);
    std::map<std::string, int> class_index;
    std::vector<int> train_labels(train.class_names.size()), test_labels;
    for (std::size_t c = 0; c < train.class_names.size(); ++c) {
        class_index[train.class_names[c]] = static_cast<int>(c);
        train_labels[c] = static_cast<int>(c);
    }
    for (const std::string& name : test.class_names) {
        const auto it = class_index.find(name);
        if (it == class_index.end())
            throw Error("'" + (test_dir / name).string() + "': class '" + name +
                        "' has no folder in '" + train_dir.string() + "'");
        test_labels.push_back(it->second);
    }

    const auto classes = static_cast<std::int64_t>(train.class_names.size());
    TrainTest d{{crop, crop, kChannels, classes, {}, {}}, {crop, crop, kChannels, classes, {}, {}}};
    std::vector<fs::path> train_files, test_files;
    round_robin(train, train_labels, train_files, d.train.labels);
    round_robin(test, test_labels, test_files, d.test.labels);

    // Refuse a dataset that cannot fit before decoding for hours (ImageNet at 224 x 224 is
    // 770 GB as FP32); an estimate from the file count, not a promise that smaller ones fit.
    const double bytes = static_cast<double>(train_files.size() + test_files.size()) *
                         static_cast<double>(d.train.image_numel()) * sizeof(float);
    if (const double memory = physical_memory_bytes(); memory > 0 && bytes > memory) {
        char msg[160];
        std::snprintf(msg, sizeof msg,
                      " images of %lldx%lldx3 need %.1f GiB as FP32, more than this machine's "
                      "%.1f GiB of memory",
                      static_cast<long long>(crop), static_cast<long long>(crop), bytes / (1 << 30),
                      memory / (1 << 30));
        throw Error("folder:" + dir + ": " +
                    std::to_string(train_files.size() + test_files.size()) + msg);
    }
    decode_all(train_files, resize, d.train);
    decode_all(test_files, resize, d.test);
    return d;
}

}  // namespace dfp::data
