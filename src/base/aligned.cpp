#include "base/aligned.hpp"

#include <sys/mman.h>

namespace dfp {

namespace {

std::size_t huge_rounded(std::size_t bytes) {
    return (bytes + kHugePage - 1) / kHugePage * kHugePage;
}

}  // namespace

void* allocate_aligned(std::size_t bytes) {
    if (bytes < kHugePage) return ::operator new (bytes, std::align_val_t{kCacheLine});
    const std::size_t rounded = huge_rounded(bytes);
    void* p = ::operator new (rounded, std::align_val_t{kHugePage});
    // Advice only: where the kernel has no huge pages to give, 4 KiB pages back the buffer.
    madvise(p, rounded, MADV_HUGEPAGE);
    return p;
}

void free_aligned(void* p, std::size_t bytes) noexcept {
    if (bytes < kHugePage)
        ::operator delete (p, std::align_val_t{kCacheLine});
    else
        ::operator delete (p, std::align_val_t{kHugePage});
}

}  // namespace dfp
