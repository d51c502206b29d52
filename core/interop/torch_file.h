// torch.save files of tensor dicts (a zip of data.pkl + one record per storage), read with
// LibTorch's own zip reader and our restricted pickle reader (interop/torch_pickle.h: no code
// runs), written the way torch.save writes them (interop/torch_pickle.h's writer, LibTorch's
// zip writer), so Python's torch.load reads them as its own.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "util/torch_prelude.h"

namespace lincat {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// The dict of tensors under `key` of the file's top-level dict ({"model_state_dict": {...},
// "step": ...}), in file order, each a contiguous copy in its stored dtype. Anything else (a
// pickle that is not a dict of tensors, a truncated zip, a storage too small for its tensor)
// is refused with the file's name and the problem. *step gets the "step" entry when present.
NamedTensors read_torch_state_dict(const std::string& path, const std::string& key, int64_t* step = nullptr);

// Writes {key: {name: tensor, ...}, "step": step} the way torch.save does, atomically.
void write_torch_state_dict(const std::string& path, const std::string& key, const NamedTensors& tensors, int64_t step);

}  // namespace lincat
