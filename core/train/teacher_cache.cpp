#include "train/teacher_cache.h"

#include <cstdio>

#include "util/error.h"

namespace lincat {

int64_t teacher_cache_row_bytes(const ModelConfig& c, int64_t seq_len, int64_t layers, int64_t element_bytes) {
    return layers * seq_len * (2 * c.q_dim() + 2 * c.kv_dim()) * element_bytes;
}

static std::vector<int64_t> ids(const torch::Tensor& rows) {
    auto r = rows.to(torch::kCPU, torch::kLong).contiguous();
    return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

bool TeacherCache::has(const torch::Tensor& rows) const {
    for (int64_t r : ids(rows))
        if (r < 0 || r >= int64_t(rows_.size()) || rows_[size_t(r)].empty()) return false;
    return true;
}

void TeacherCache::store(const torch::Tensor& rows, const std::vector<TeacherActivations>& per_layer) {
    if (int64_t(per_layer.size()) != layers_)
        fail("teacher cache: ", per_layer.size(), " layers' activations for a cache of ", layers_);
    const auto id = ids(rows);
    for (size_t i = 0; i < id.size(); ++i) {
        if (id[i] < 0 || id[i] >= int64_t(rows_.size())) fail("teacher cache: row ", id[i], " is outside the cache");
        auto& slot = rows_[size_t(id[i])];
        if (!slot.empty()) continue;
        for (auto& a : per_layer) {
            auto one = [&](const torch::Tensor& t) { return t.narrow(0, int64_t(i), 1).clone(); };
            slot.push_back({one(a.q), one(a.k), one(a.v), one(a.teacher)});
            for (auto* t : {&slot.back().q, &slot.back().k, &slot.back().v, &slot.back().teacher})
                bytes_ += t->numel() * t->element_size();
        }
    }
}

TeacherActivations TeacherCache::batch(const torch::Tensor& rows, int64_t layer) const {
    std::vector<torch::Tensor> q, k, v, y;
    for (int64_t r : ids(rows)) {
        const TeacherActivations& a = rows_.at(size_t(r)).at(size_t(layer));
        q.push_back(a.q), k.push_back(a.k), v.push_back(a.v), y.push_back(a.teacher);
    }
    return {torch::cat(q), torch::cat(k), torch::cat(v), torch::cat(y)};
}

TeacherCachePlan plan_teacher_cache(const ModelConfig& c, const TransferLayers& layers, int64_t rows, int64_t seq_len,
                                    int64_t element_bytes, int64_t budget_bytes) {
    TeacherCachePlan p;
    p.bytes = rows * teacher_cache_row_bytes(c, seq_len, int64_t(layers.cores.size()), element_bytes);
    char buf[256];
    for (auto& core : layers.cores)
        if (!core->replayable()) {
            p.why = "teacher activations not cached: a layer needs the teacher's scores (shared scores or xent)";
            return p;
        }
    if (p.bytes > budget_bytes) {
        std::snprintf(buf, sizeof buf,
                      "teacher activations not cached: %lld rows need %.2f GB, over the %.2f GB of teacher_cache_mb",
                      (long long)rows, double(p.bytes) / 1e9, double(budget_bytes) / 1e9);
        p.why = buf;
        return p;
    }
    p.use = true;
    std::snprintf(buf, sizeof buf,
                  "teacher activations cached: %.2f GB for %lld rows (each row's teacher forward runs once)",
                  double(p.bytes) / 1e9, (long long)rows);
    p.why = buf;
    return p;
}

}  // namespace lincat
