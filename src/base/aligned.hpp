// Storage aligned to a cache line: a 64-byte vector load or store at the start of a row then
// touches one line instead of two, and kernels can prefetch a tile row by its lines. Buffers of
// 2 MiB or more (activations, gradients, mantissas) are also given transparent huge pages.
#pragma once

#include <cstddef>
#include <new>
#include <span>
#include <utility>
#include <vector>

namespace dfp {

inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::size_t kHugePage = std::size_t{2} << 20;

// `bytes` of storage aligned to a cache line; from kHugePage bytes on, aligned to and rounded up to
// huge pages, which the kernel is asked to back with transparent huge pages (Linux's madvise
// mode, Debian's default). Page faults are what it saves: on the 2-core VM one 4 KiB fault cost
// ~17 us (23 s over 1.33M faults), and ResNet-50's first training step at batch 32 (5 GiB first
// touched) took 23 s instead of 2; with huge pages it takes 6 s. Later steps run at the same speed
// within noise.
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

// AlignedAllocator whose value-initialisation (vector(n), resize(n)) leaves the elements as the
// memory held them: for buffers that are written in full before they are read, where zeroing them
// would be a pass of its own (a network's pooled gradient buffers; nn::Tensor).
template <class T>
struct UninitAlignedAllocator : AlignedAllocator<T> {
    template <class U>
    struct rebind {
        using other = UninitAlignedAllocator<U>;
    };
    UninitAlignedAllocator() = default;
    template <class U>
    UninitAlignedAllocator(const UninitAlignedAllocator<U>&) noexcept {}
    template <class U>
    void construct(U* p) noexcept {
        ::new (static_cast<void*>(p)) U;
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};

template <class T>
using UninitAlignedVector = std::vector<T, UninitAlignedAllocator<T>>;

// A copy of `values` in aligned storage (as nn::Tensor holds it).
template <class T>
UninitAlignedVector<T> aligned_copy(std::span<const T> values) {
    return UninitAlignedVector<T>(values.begin(), values.end());
}

}  // namespace dfp
