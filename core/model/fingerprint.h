// A cheap fingerprint of a model folder, recorded with every run and checkpoint so nothing is
// ever applied to another base model. Torch-free.
#pragma once

#include <string>

namespace lincat {

// sha256 over config.json and each weight file's safetensors header and size (not the
// tensors: a fingerprint of a 405B folder takes milliseconds).
std::string model_fingerprint(const std::string& model_dir);

}  // namespace lincat
