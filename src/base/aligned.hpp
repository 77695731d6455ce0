// Storage aligned to a cache line: a 64-byte vector load or store at the start of a row then
// touches one line instead of two, and kernels can prefetch a tile row by its lines. Buffers of
// 2 MiB or more (activations, gradients, mantissas) are also given transparent huge pages.
#pragma once

#include <cstddef>
#include <new>
#include <span>
#include <vector>

namespace dfp {

inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::size_t kHugePage = std::size_t{2} << 20;

// `bytes` of storage aligned to a cache line; from kHugePage bytes on, aligned to and rounded up to
// huge pages, which the kernel is asked to back with transparent huge pages (Linux's madvise
// mode, Debian's default). Page faults are what it saves: on the 2-core VM one 4 KiB fault cost
// ~17 us, and ResNet-50's first training step at batch 32 (5 GiB first touched) took 23 s
// instead of 2; with huge pages it takes 6 s. Later steps run at the same speed within noise.
void* allocate_aligned(std::size_t bytes);
// Frees what allocate_aligned(bytes) returned.
void free_aligned(void* p, std::size_t bytes) noexcept;

// std::allocator with the alignment of allocate_aligned.
template <class T>
struct AlignedAllocator {
    using value_type = T;
    AlignedAllocator() = default;
    template <class U>
    AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return static_cast<T*>(allocate_aligned(n * sizeof(T))); }
    void deallocate(T* p, std::size_t n) noexcept { free_aligned(p, n * sizeof(T)); }
    template <class U>
    bool operator==(const AlignedAllocator<U>&) const noexcept {
        return true;
    }
};

template <class T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

// A copy of `values` in aligned storage.
template <class T>
AlignedVector<T> aligned_copy(std::span<const T> values) {
    return AlignedVector<T>(values.begin(), values.end());
}

}  // namespace dfp
