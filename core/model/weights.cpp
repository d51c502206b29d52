#include "model/weights.h"

#include <unistd.h>

#include <algorithm>

#include "util/file.h"
#include "util/json.h"

namespace lincat {

torch::Dtype torch_dtype_of(DType d) {
    switch (d) {
        case DType::F64:
            return torch::kFloat64;
        case DType::F32:
            return torch::kFloat32;
        case DType::F16:
            return torch::kFloat16;
        case DType::BF16:
            return torch::kBFloat16;
        case DType::I64:
            return torch::kInt64;
        case DType::I32:
            return torch::kInt32;
        case DType::I16:
            return torch::kInt16;
        case DType::I8:
            return torch::kInt8;
        case DType::U8:
            return torch::kUInt8;
        case DType::BOOL:
            return torch::kBool;
    }
    fail("unknown dtype");
}

DType safetensors_dtype_of(torch::Dtype d) {
    switch (d) {
        case torch::kFloat64:
            return DType::F64;
        case torch::kFloat32:
            return DType::F32;
        case torch::kFloat16:
            return DType::F16;
        case torch::kBFloat16:
            return DType::BF16;
        case torch::kInt64:
            return DType::I64;
        case torch::kInt32:
            return DType::I32;
        case torch::kInt16:
            return DType::I16;
        case torch::kInt8:
            return DType::I8;
        case torch::kUInt8:
            return DType::U8;
        case torch::kBool:
            return DType::BOOL;
        default:
            fail("dtype ", c10::toString(d), " cannot be stored in safetensors");
    }
}

WeightStore WeightStore::open_file(const std::string& path) {
    WeightStore w;
    w.files_.push_back(std::make_shared<SafetensorsFile>(SafetensorsFile::open(path)));
    for (const TensorInfo& t : w.files_[0]->tensors()) w.where_[t.name] = {0, &t};
    return w;
}

WeightStore WeightStore::open_dir(const std::string& dir) {
    std::string single = dir + "/model.safetensors";
    std::string index = dir + "/model.safetensors.index.json";
    if (access(index.c_str(), R_OK) == 0) {
        WeightStore w;
        std::map<std::string, size_t> shard_ids;
        for (auto& [tensor, shard] : parse_safetensors_index(read_file(index, 64 << 20), index)) {
            if (!shard_ids.count(shard)) {
                std::string path = dir + "/" + shard;
                if (access(path.c_str(), R_OK) != 0)
                    fail(index, ": weight_map['", tensor, "'] names missing shard '", shard, "'");
                shard_ids[shard] = w.files_.size();
                w.files_.push_back(std::make_shared<SafetensorsFile>(SafetensorsFile::open(path)));
            }
            size_t f = shard_ids[shard];
            const TensorInfo* t = w.files_[f]->find(tensor);
            if (!t) fail(index, ": tensor '", tensor, "' is listed in shard '", shard, "' but that file lacks it");
            w.where_[tensor] = {f, t};
        }
        return w;
    }
    if (access(single.c_str(), R_OK) == 0) return open_file(single);
    fail(dir, ": no model weights (looked for model.safetensors and model.safetensors.index.json)");
}

const TensorInfo& WeightStore::info(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) fail("model weights: tensor '", name, "' is missing");
    return *it->second.second;
}

const std::string& WeightStore::file_of(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) fail("model weights: tensor '", name, "' is missing");
    return files_[it->second.first]->path();
}

torch::Tensor WeightStore::get(const std::string& name, torch::Dtype dtype, torch::Device device) const {
    auto it = where_.find(name);
    if (it == where_.end()) fail("model weights: tensor '", name, "' is missing");
    const SafetensorsFile& f = *files_[it->second.first];
    const TensorInfo& t = *it->second.second;
    // from_blob views the mmap. The tensor is copied out in slabs of rows, converted on the
    // way, and each slab's file pages are released behind it: loading holds the weights plus
    // one slab, never a tensor twice (Llama 3's embedding alone is 1 GB in bf16).
    auto view = torch::from_blob(const_cast<uint8_t*>(f.data(t)), t.shape,
                                 torch::TensorOptions().dtype(torch_dtype_of(t.dtype)));
    torch::Tensor out = torch::empty(t.shape, torch::TensorOptions().dtype(dtype).device(device));
    const uint64_t bytes = t.end - t.begin;
    if (t.shape.empty() || t.shape[0] == 0 || bytes == 0) {
        out.copy_(view);
    } else {
        constexpr uint64_t kSlabBytes = 8ull << 20;
        const int64_t rows = t.shape[0];
        const uint64_t row_bytes = bytes / uint64_t(rows);
        const int64_t slab = std::max<int64_t>(1, int64_t(kSlabBytes / std::max<uint64_t>(row_bytes, 1)));
        for (int64_t r = 0; r < rows; r += slab) {
            const int64_t n = std::min(slab, rows - r);
            out.narrow(0, r, n).copy_(view.narrow(0, r, n));
            f.release(t, uint64_t(r) * row_bytes, uint64_t(n) * row_bytes);
        }
    }
    f.release(t, 0, bytes);  // the partial pages at the slab edges
    return out;
}

std::vector<std::string> WeightStore::names() const {
    std::vector<std::string> out;
    for (auto& [name, _] : where_) out.push_back(name);
    return out;
}

void save_tensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                  const std::map<std::string, std::string>& metadata) {
    std::vector<torch::Tensor> keep;
    std::vector<TensorBlob> blobs;
    for (auto& [name, t] : tensors) {
        torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
        keep.push_back(c);
        blobs.push_back({name, safetensors_dtype_of(c.scalar_type()),
                         std::vector<int64_t>(c.sizes().begin(), c.sizes().end()), c.data_ptr(),
                         size_t(c.numel()) * c.element_size()});
    }
    write_safetensors(path, blobs, metadata);
}

}  // namespace lincat
