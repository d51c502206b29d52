#include "util/memory_tracker.h"

#include <atomic>

#include "util/torch_prelude.h"
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

namespace lincat {

namespace {

std::atomic<int64_t> g_current{0}, g_peak{0};

struct Tracked {
    c10::DataPtr inner;
    int64_t bytes;
};

void tracked_delete(void* ctx) {
    auto* t = static_cast<Tracked*>(ctx);
    g_current -= t->bytes;
    delete t;
}

class TrackingAllocator final : public c10::Allocator {
  public:
    explicit TrackingAllocator(c10::Allocator* base) : base_(base) {}
    c10::DataPtr allocate(size_t n) const override {
        c10::DataPtr inner = base_->allocate(n);
        void* data = inner.get();
        int64_t now = g_current += int64_t(n);
        int64_t peak = g_peak.load();
        while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
        }
        auto* ctx = new Tracked{std::move(inner), int64_t(n)};
        return c10::DataPtr(data, ctx, &tracked_delete, c10::Device(c10::DeviceType::CPU));
    }
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
