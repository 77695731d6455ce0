#include "base/aligned.hpp"

#include <sys/mman.h>

namespace dfp {

namespace {

bool huge(std::size_t bytes) {
    return bytes >= kHugePage;
}

// The one alignment rule, shared by allocation and release.
std::align_val_t alignment(std::size_t bytes) {
    return std::align_val_t{huge(bytes) ? kHugePage : kCacheLine};
}

}  // namespace

void* allocate_aligned(std::size_t bytes) {
    if (!huge(bytes)) return ::operator new(bytes, alignment(bytes));
    const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = ::operator new(rounded, alignment(bytes));
    // Advice only: where the kernel has no huge pages to give, 4 KiB pages back the buffer.
    madvise(p, rounded, MADV_HUGEPAGE);
    return p;
}

void free_aligned(void* p, std::size_t bytes) noexcept {
    ::operator delete(p, alignment(bytes));
}

}  // namespace dfp
