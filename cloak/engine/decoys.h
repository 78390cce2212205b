// Built-in decoy styles for cloak mode, generated procedurally (no fetched data).
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

namespace cloak {

std::vector<std::string> decoy_names();

// A (1,3,size,size) picture in [0,1] of the named decoy style. Throws cloak::Error (Usage) for an
// unknown name.
torch::Tensor make_decoy(const std::string& name, int size);

}  // namespace cloak
