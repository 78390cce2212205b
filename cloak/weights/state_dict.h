// Readers for model weight files: safetensors and PyTorch's zip state dicts (.pth).
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cloak {

using TensorMap = std::map<std::string, torch::Tensor>;

// Parses a safetensors file held in memory. F32, F16 and BF16 tensors are returned as float32.
// `name` is used in error messages. Throws cloak::Error (Model) on any malformed input.
TensorMap parse_safetensors(const std::vector<std::uint8_t>& bytes, const std::string& name);

// Parses a PyTorch zip state dict (torch.save of an OrderedDict of tensors) held in memory,
// decoding the pickle opcodes such a file uses. Tensors are returned as float32.
TensorMap parse_pth(const std::vector<std::uint8_t>& bytes, const std::string& name);

// Copies `weights` into the module's parameters and buffers by name. Every module entry must be
// present with the same shape, and every weight must be used.
void load_state_dict(torch::nn::Module& module, const TensorMap& weights, const std::string& name);

}  // namespace cloak
