// Tensors of a model folder: model.safetensors, or shards listed in
// model.safetensors.index.json. Tensors are copied out of the memory map on request, straight
// into the asked dtype and device, and the copied pages leave the process's resident set.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/safetensors.h"
#include "util/torch_prelude.h"

namespace lincat {

class WeightStore {
  public:
    static WeightStore open_dir(const std::string& dir);
    static WeightStore open_file(const std::string& path);

    bool has(const std::string& name) const { return where_.count(name) != 0; }
    const TensorInfo& info(const std::string& name) const;
    const std::string& file_of(const std::string& name) const;
    // A copy of the tensor in `dtype` on `device` (F16/BF16/F32 are converted), made once.
    torch::Tensor get(const std::string& name, torch::Dtype dtype = torch::kFloat32,
                      torch::Device device = torch::kCPU) const;
    std::vector<std::string> names() const;

  private:
    std::vector<std::shared_ptr<SafetensorsFile>> files_;
    std::map<std::string, std::pair<size_t, const TensorInfo*>> where_;
};

torch::Dtype torch_dtype_of(DType dtype);
DType safetensors_dtype_of(torch::Dtype dtype);

// Saves contiguous CPU copies of the tensors, atomically.
void save_tensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                  const std::map<std::string, std::string>& metadata = {});

}  // namespace lincat
