#pragma once
// Scratch memory for const, thread-safe forward passes. Each thread owns one arena; a
// ScratchFrame takes buffers from it stack-wise and gives them all back when it ends, so
// nested layers can each open a frame. The first calls grow the arena (new blocks, existing
// pointers stay valid); when the outermost frame closes after growth the blocks are merged
// into one, so from the second call with the same shapes on, forward allocates nothing.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace tokenmix {
namespace detail {

inline constexpr std::size_t scratch_alignment = 64;  // one cache line, one zmm register

struct AlignedFree {
  void operator()(void* p) const noexcept { std::free(p); }
};

inline std::size_t round_up(std::size_t bytes, std::size_t to) {
  return (bytes + to - 1) / to * to;
}

class ScratchArena {
 public:
  void* take(std::size_t bytes) {
    bytes = round_up(std::max<std::size_t>(bytes, 1), scratch_alignment);
    if (count_ == 0 || used_ + bytes > blocks_[count_ - 1].size) {
      // Keep earlier blocks alive: pointers handed out in open frames must stay valid.
      const std::size_t size = std::max(bytes, count_ == 0 ? std::size_t{1} << 16
                                                           : blocks_[count_ - 1].size * 2);
      if (count_ == max_blocks) throw std::bad_alloc();  // sizes double: 2^16 * 2^47 bytes
      blocks_[count_++] = Block{allocate(size), size};
      retired_ += used_;
      used_ = 0;
    }
    void* p = blocks_[count_ - 1].memory.get() + used_;
    used_ += bytes;
    high_water_ = std::max(high_water_, retired_ + used_);
    return p;
  }

  struct Mark {
    std::size_t blocks, used, retired;
  };
  Mark mark() {
    ++depth_;
    return {count_, used_, retired_};
  }

  void release(const Mark& m) {
    if (--depth_ == 0) {
      // Outermost frame closed: fold several blocks into one big enough for the peak.
      if (count_ > 1) {
        for (std::size_t i = 0; i < count_; ++i) blocks_[i] = Block{};
        count_ = 0;
        blocks_[count_++] = Block{allocate(high_water_), high_water_};
      }
      used_ = 0;
      retired_ = 0;
      return;
    }
    // Blocks added inside the frame are kept until the outermost frame merges them.
    if (count_ == m.blocks) used_ = m.used;
  }

  std::size_t capacity() const {
    std::size_t total = 0;
    for (std::size_t i = 0; i < count_; ++i) total += blocks_[i].size;
    return total;
  }

 private:
  struct Block {
    std::unique_ptr<unsigned char[], AlignedFree> memory;
    std::size_t size = 0;
  };
  static std::unique_ptr<unsigned char[], AlignedFree> allocate(std::size_t size) {
    void* p = std::aligned_alloc(scratch_alignment, round_up(size, scratch_alignment));
    if (p == nullptr) throw std::bad_alloc();
    return std::unique_ptr<unsigned char[], AlignedFree>(static_cast<unsigned char*>(p));
  }

  // A fixed table, not a vector: the arena must never call operator new, or a pool worker
  // that first receives work after warm-up would allocate in a steady-state forward.
  static constexpr std::size_t max_blocks = 48;
  std::array<Block, max_blocks> blocks_{};
  std::size_t count_ = 0;
  std::size_t used_ = 0;
  std::size_t retired_ = 0;  // bytes in full blocks below the current one
  std::size_t high_water_ = 0;
  int depth_ = 0;  // open frames
};

inline ScratchArena& thread_scratch_arena() {
  thread_local ScratchArena arena;
  return arena;
}

}  // namespace detail

// Buffers valid until the frame is destroyed; frames nest and must not outlive their thread.
class ScratchFrame {
 public:
  ScratchFrame() : arena_(detail::thread_scratch_arena()), mark_(arena_.mark()) {}
  ~ScratchFrame() { arena_.release(mark_); }
  ScratchFrame(const ScratchFrame&) = delete;
  ScratchFrame& operator=(const ScratchFrame&) = delete;

  // Uninitialised, 64-byte aligned storage for `count` values of T.
  template <class T>
  T* take(std::size_t count) {
    return static_cast<T*>(arena_.take(count * sizeof(T)));
  }

 private:
  detail::ScratchArena& arena_;
  detail::ScratchArena::Mark mark_;
};

}  // namespace tokenmix
