// libtorch's own account of device memory: what its caching allocator handed out. NVML sees the
// process from outside (the CUDA context and the allocator's whole cached pool); this is the
// figure `torch.cuda.max_memory_allocated` reports, for checking one against the other.
// Written against c10's device-independent allocator interface, so it needs no CUDA headers.
#include <c10/core/CachingDeviceAllocator.h>

#include <cstdint>

namespace {
c10::CachingDeviceAllocator::DeviceStats stats(int device) {
  return c10::getDeviceAllocator(c10::DeviceType::CUDA)->getDeviceStats(static_cast<c10::DeviceIndex>(device));
}
constexpr size_t kAggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
}  // namespace

extern "C" {

// The most bytes allocated at once on CUDA device `device` since the last reset; -1 when there
// is no CUDA allocator (a CPU-only libtorch, no device).
int64_t gnn_soup_cuda_peak_allocated_bytes(int device) {
  try {
    return stats(device).allocated_bytes[kAggregate].peak;
  } catch (...) {
    return -1;
  }
}

// Restarts the peak at what is allocated now; 0 on success, -1 without a CUDA allocator.
int gnn_soup_cuda_reset_peak(int device) {
  try {
    c10::getDeviceAllocator(c10::DeviceType::CUDA)->resetPeakStats(static_cast<c10::DeviceIndex>(device));
    return 0;
  } catch (...) {
    return -1;
  }
}
}
