// One small forward and backward: BLAS, OpenMP and autograd allocate their buffers now, so a
// job's baseline memory (util/process_memory.h) holds the runtime, and its peak the model's part.
#pragma once

namespace lincat {

void warm_up_runtime();

}  // namespace lincat
