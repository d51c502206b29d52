// The one place core includes LibTorch from; also the precompiled header. Never include
// this from a Qt header: Qt's `slots` macro breaks torch headers.
#pragma once

#include <torch/torch.h>

// at::parallel_for is inline: without -fopenmp our own loops would run on one thread.
#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error "LibTorch parallelises with OpenMP: compile with OpenMP (CMake: OpenMP::OpenMP_CXX)"
#endif
