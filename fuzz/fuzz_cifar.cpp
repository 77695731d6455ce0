// read_cifar_folder on any bytes (every CIFAR-10 file of the folder holds the input).
#include <filesystem>

#include "base/error.hpp"
#include "data/classification.hpp"
#include "fuzz_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::filesystem::path dir = fuzz_path("cifar");
    std::filesystem::create_directories(dir);
    for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                             "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
        const std::string path = fuzz_file(name, data, size);
        std::filesystem::rename(path, dir / name);
    }
    try {
        const dfp::data::TrainTest d = dfp::data::read_cifar_folder(dir.string());
        if (d.train.images.size() !=
            static_cast<std::size_t>(d.train.size() * d.train.image_numel()))
            std::abort();
    } catch (const dfp::Error&) {
    }
    std::filesystem::remove_all(dir);
    return 0;
}
