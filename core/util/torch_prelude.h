// The one place core includes LibTorch from; also the precompiled header. Never include
// this from a Qt header: Qt's `slots` macro breaks torch headers.
#pragma once

#include <torch/torch.h>
