// Storage aligned to a cache line: a 64-byte vector load or store at the start of a row then
// touches one line instead of two, and kernels can prefetch a tile row by its lines.
#pragma once

#include <cstddef>
#include <new>
#include <span>
#include <vector>

namespace dfp {

inline constexpr std::size_t kCacheLine = 64;

// std::allocator with cache-line alignment (C++17 aligned new).
template <class T>
struct AlignedAllocator {
    using value_type = T;
    AlignedAllocator() = default;
    template <class U>
    AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kCacheLine}));
    }
    void deallocate(T* p, std::size_t) noexcept {
        ::operator delete(p, std::align_val_t{kCacheLine});
    }
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
