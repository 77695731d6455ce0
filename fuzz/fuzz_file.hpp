// The parsers read files: each fuzz input is written to a file of this process's own first.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

inline std::string fuzz_path(const std::string& name) {
    return "/tmp/dfp_fuzz_" + std::to_string(::getpid()) + "_" + name;
}

inline std::string fuzz_file(const std::string& name, const std::uint8_t* data, std::size_t size) {
    const std::string path = fuzz_path(name);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) std::abort();
    if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
    return path;
}
