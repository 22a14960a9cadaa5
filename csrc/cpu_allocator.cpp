// A CPU allocator for libtorch that can keep large freed blocks for reuse, for PLS.
//
// The process allocates through jemalloc (src/lib.rs), which keeps freed pages for the next step.
// PLS has jemalloc give freed pages back at once instead, to keep its peak low (its subgraphs
// change size every step, so kept pages would fragment); then every step paid for the kernel
// zeroing fresh pages again: 23% of the CPU samples of a PLS fit on the arxiv-shaped graph
// (docs/performance.md). While keeping is on (`gnn_soup_keep_cpu_blocks`), a freed block of
// 1 MiB or more is kept and handed out again for a request of its size class. Otherwise blocks
// go straight back to malloc, as with libtorch's own allocator (kept blocks beside jemalloc's
// own kept pages raised the other strategies' peaks).
//
// A request takes the smallest kept block of its class or larger, up to twice its class (the
// subgraphs' sizes wander between steps). The peak resident memory stays near that of the live
// tensors: when a request finds no such block, kept blocks are released (the longest unused
// first) until the live blocks, the kept ones and the new one together are no more than a quarter
// over the live blocks' own peak so far (or the live ones and the new one, where that is more).
// So the blocks kept raise the peak by about a quarter of what the working set needed once at
// most (a reused block that serves a larger request than before grows by the difference without
// a check);
// with no slack, half the requests of a PLS fit still found no block and took fresh pages
// (docs/performance.md). A block's unused tail is never written, so it is never resident.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace {

constexpr size_t kHeader = 64;                 // before each block: its Header (keeps 64-byte alignment)
constexpr size_t kKeepFrom = size_t{1} << 20;  // blocks from this size are kept for reuse

struct Header {
  size_t size;     // the block's size class (what follows the header)
  size_t touched;  // the largest request it served: about what of it is resident
  bool counted;    // handed out while keeping was on, so counted in the live bytes
};
static_assert(sizeof(Header) <= kHeader, "the header fits before the data");

// The size class of an n-byte request: n rounded up to a quarter of its power of two (at most
// 25% more), so that requests of nearly the same size (a partition's subgraphs) share blocks.
size_t size_class(size_t n) {
  if (n < kKeepFrom) return n;
  size_t power = size_t{1} << (63 - __builtin_clzll(n));
  const size_t step = power / 4;
  return (n + step - 1) / step * step;
}

// Byte counts are of touched bytes (see Header): what the blocks add to the resident memory.
struct Stats {
  uint64_t reused = 0, fresh = 0, released = 0;
  uint64_t kept_bytes = 0;
  uint64_t live_bytes = 0, peak_live_bytes = 0;  // blocks of the kept sizes handed out
};

class ReusingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (n == 0) return {nullptr, nullptr, &release, cpu};
    const size_t size = size_class(n);
    Header *block = nullptr;
    if (size >= kKeepFrom && keeping_.load(std::memory_order_relaxed)) {
      std::lock_guard<std::mutex> hold(lock_);
      auto kept = kept_.lower_bound(size);
      if (kept != kept_.end() && kept->first <= size * 2) {
        block = kept->second.block;
        kept_.erase(kept);
        stats_.kept_bytes -= block->touched;
        block->touched = std::max(block->touched, n);
        block->counted = true;
        ++stats_.reused;
      } else {
        release_kept_beyond_peak_locked(n);
        block = fresh(size, n, true);  // counted below only once it exists
        ++stats_.fresh;
      }
      stats_.live_bytes += block->touched;
      stats_.peak_live_bytes = std::max(stats_.peak_live_bytes, stats_.live_bytes);
    }
    if (!block) block = fresh(size, n, false);
    void *data = reinterpret_cast<char *>(block) + kHeader;
    return {data, data, &release, cpu};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  // Turns keeping on or off; either way, everything kept so far is given back and the live peak
  // restarts from what is live now.
  void keep(bool on) {
    keeping_.store(on);
    release_all();
  }

  void copy_data(void *dest, const void *src, std::size_t count) const override { std::memcpy(dest, src, count); }

  static ReusingCpuAllocator &instance() {
    static auto *allocator = new ReusingCpuAllocator();  // never destroyed: tensors may outlive main
    return *allocator;
  }

  Stats stats() {
    std::lock_guard<std::mutex> hold(lock_);
    return stats_;
  }

  // Releases every kept block and restarts the live peak from what is live now: what comes
  // next keeps blocks within its own peak, not an earlier job's.
  void release_all() {
    std::lock_guard<std::mutex> hold(lock_);
    for (auto &kept : kept_) std::free(kept.second.block);
    stats_.released += kept_.size();
    kept_.clear();
    stats_.kept_bytes = 0;
    stats_.peak_live_bytes = stats_.live_bytes;
  }

 private:
  // A new block for an n-byte request of class `size`: the whole class where it may be kept
  // (counted), only the request otherwise (never kept, so nothing larger is ever asked of it).
  static Header *fresh(size_t size, size_t n, bool counted) {
    void *memory = nullptr;
    const size_t bytes = kHeader + (counted ? size : n);
    TORCH_CHECK(posix_memalign(&memory, 64, bytes) == 0 && memory, "cannot allocate ", bytes, " bytes of CPU memory");
    auto *block = static_cast<Header *>(memory);
    *block = Header{size, n, counted};
    return block;
  }

  static void release(void *data) {
    if (!data) return;
    auto *block = reinterpret_cast<Header *>(static_cast<char *>(data) - kHeader);
    if (block->size < kKeepFrom) return std::free(block);
    auto &self = instance();
    std::lock_guard<std::mutex> hold(self.lock_);
    if (!block->counted) return std::free(block);
    if (!self.keeping_.load(std::memory_order_relaxed)) {
      self.stats_.live_bytes -= block->touched;
      return std::free(block);
    }
    self.kept_.emplace(block->size, Kept{block, ++self.frees_});
    self.stats_.kept_bytes += block->touched;
    self.stats_.live_bytes -= block->touched;
  }

  // Before `n` new bytes are taken: releases kept blocks, the longest unused first (a step that
  // repeats keeps what it reuses), until live + kept + new is within 5/4 of the live peak so far
  // (or within live + new, where that is more).
  void release_kept_beyond_peak_locked(uint64_t n) {
    const uint64_t allowed = std::max(stats_.peak_live_bytes / 4 * 5, stats_.live_bytes + n);
    while (!kept_.empty() && stats_.live_bytes + stats_.kept_bytes + n > allowed) {
      auto oldest = std::min_element(kept_.begin(), kept_.end(), [](const auto &a, const auto &b) { return a.second.freed < b.second.freed; });
      stats_.kept_bytes -= oldest->second.block->touched;
      std::free(oldest->second.block);
      ++stats_.released;
      kept_.erase(oldest);
    }
  }

  struct Kept {
    Header *block;
    uint64_t freed;  // when, counted in frees
  };
  std::atomic<bool> keeping_{false};
  std::mutex lock_;
  std::multimap<size_t, Kept> kept_;  // by size class
  uint64_t frees_ = 0;
  Stats stats_;
};

}  // namespace

extern "C" {

// Makes the reusing allocator libtorch's CPU allocator for every later allocation (tensors
// allocated before keep their own deleter).
void gnn_soup_install_reusing_cpu_allocator() { c10::SetCPUAllocator(&ReusingCpuAllocator::instance(), /*priority=*/100); }

// Keeps freed blocks of 1 MiB or more for reuse within 5/4 of the live peak (on), or frees them at once
// (off, the start); either way what was kept is given back and the peak restarts.
void gnn_soup_keep_cpu_blocks(bool on) { ReusingCpuAllocator::instance().keep(on); }

// Gives every kept block back (to the allocator beneath, which may return it to the system).
void gnn_soup_release_kept_cpu_blocks() { ReusingCpuAllocator::instance().release_all(); }

// Counts since the start: blocks handed out again, blocks taken fresh (of the kept sizes),
// kept blocks released; the bytes kept now, and the most bytes of such blocks live at once.
void gnn_soup_cpu_allocator_stats(uint64_t *reused, uint64_t *fresh, uint64_t *released, uint64_t *kept_bytes, uint64_t *peak_live_bytes) {
  const Stats s = ReusingCpuAllocator::instance().stats();
  *peak_live_bytes = s.peak_live_bytes;
  *reused = s.reused;
  *fresh = s.fresh;
  *released = s.released;
  *kept_bytes = s.kept_bytes;
}
}
