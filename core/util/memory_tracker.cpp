#include "util/memory_tracker.h"

#include <atomic>

#include "util/torch_prelude.h"
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

namespace lincat {

namespace {

std::atomic<int64_t> g_current{0}, g_peak{0};

// Each block carries a 64-byte header (64 keeps the data as aligned as the base allocator's)
// with its size and the base's own pointer, so the DataPtr's context is its data pointer:
// LibTorch's raw_allocate (oneDNN's bf16 matmul scratch) asserts that.
constexpr size_t kHeader = 64;
struct Header {
    int64_t bytes;
    void* base_context;
    c10::DeleterFnPtr base_deleter;
};
static_assert(sizeof(Header) <= kHeader);

void tracked_delete(void* data) {
    if (!data) return;
    auto* h = reinterpret_cast<Header*>(static_cast<char*>(data) - kHeader);
    g_current -= h->bytes;
    c10::DeleterFnPtr base_deleter = h->base_deleter;
    void* base_context = h->base_context;
    if (base_deleter) base_deleter(base_context);
}

class TrackingAllocator final : public c10::Allocator {
  public:
    explicit TrackingAllocator(c10::Allocator* base) : base_(base) {}
    c10::DataPtr allocate(size_t n) const override {
        c10::DataPtr inner = base_->allocate(n + kHeader);
        char* block = static_cast<char*>(inner.get());
        auto* h = reinterpret_cast<Header*>(block);
        h->bytes = int64_t(n);
        h->base_deleter = inner.get_deleter();
        h->base_context = inner.release_context();
        int64_t now = g_current += int64_t(n);
        int64_t peak = g_peak.load();
        while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
        }
        void* data = block + kHeader;
        return c10::DataPtr(data, data, &tracked_delete, c10::Device(c10::DeviceType::CPU));
    }
    c10::DeleterFnPtr raw_deleter() const override { return &tracked_delete; }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
    void copy_data(void* dest, const void* src, std::size_t count) const override {
        default_copy_data(dest, src, count);
    }
#endif

  private:
    c10::Allocator* base_;
};

}  // namespace

void TensorMemory::install() {
    static TrackingAllocator* tracker = [] {
        auto* t = new TrackingAllocator(c10::GetCPUAllocator());
        c10::SetCPUAllocator(t, /*priority=*/100);
        return t;
    }();
    (void)tracker;
}

int64_t TensorMemory::current() {
    return g_current.load();
}
int64_t TensorMemory::peak() {
    return g_peak.load();
}
void TensorMemory::reset_peak() {
    g_peak.store(g_current.load());
}

TensorPeakWatch::TensorPeakWatch() {
    TensorMemory::install();
    baseline_bytes = TensorMemory::current();
    TensorMemory::reset_peak();
}

}  // namespace lincat
