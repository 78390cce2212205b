#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <cstring>

#include "cloak/core/error.h"
#include "cloak/weights/state_dict.h"

namespace cloak {
namespace {

torch::ScalarType dtype_of(const std::string& dtype, std::size_t* element_size) {
  if (dtype == "F32") return *element_size = 4, torch::kFloat32;
  if (dtype == "F16") return *element_size = 2, torch::kFloat16;
  if (dtype == "BF16") return *element_size = 2, torch::kBFloat16;
  throw std::runtime_error("unsupported dtype " + dtype);
}

// A JSON list of whole numbers >= 0, checked first: nlohmann would convert a float or a negative
// number to an unsigned integer without a word.
std::vector<std::uint64_t> whole_numbers(const nlohmann::json& j, const std::string& what) {
  if (!j.is_array()) throw std::runtime_error(what + " is not a list");
  std::vector<std::uint64_t> out;
  for (const auto& v : j) {
    if (!v.is_number_unsigned())
      throw std::runtime_error(what + " holds something other than whole numbers >= 0");
    out.push_back(v.get<std::uint64_t>());
  }
  return out;
}

}  // namespace

TensorMap parse_safetensors(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  const auto fail = [&](const std::string& why) -> Error {
    return Error(ErrorKind::Model, name + ": not a valid safetensors file: " + why);
  };
  if (bytes.size() < 8) throw fail("shorter than its 8-byte header length");
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[static_cast<std::size_t>(i)];
  if (header_len > 100'000'000 || 8 + header_len > bytes.size())
    throw fail("header length " + std::to_string(header_len) + " is out of bounds");
  nlohmann::json header;
  try {
    header =
        nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(header_len));
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("header is not JSON (") + e.what() + ")");
  }
  if (!header.is_object()) throw fail("header is not a JSON object");
  const std::size_t data_begin = 8 + header_len;
  const std::size_t data_size = bytes.size() - data_begin;
  TensorMap out;
  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") continue;
    try {
      std::size_t element_size = 0;
      auto dtype = dtype_of(entry.at("dtype").get<std::string>(), &element_size);
      const auto dims = whole_numbers(entry.at("shape"), "shape");
      const auto offsets = whole_numbers(entry.at("data_offsets"), "data_offsets");
      std::uint64_t numel = 1;
      std::vector<std::int64_t> shape;
      for (auto d : dims) {
        if (d != 0 && numel > (std::uint64_t{1} << 40) / d)
          throw std::runtime_error("shape is impossibly large");
        numel *= d;
        shape.push_back(static_cast<std::int64_t>(d));
      }
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size)
        throw std::runtime_error("data_offsets out of bounds");
      if (offsets[1] - offsets[0] != numel * element_size)
        throw std::runtime_error("byte size does not match its shape");
      auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
      std::memcpy(t.data_ptr(), bytes.data() + data_begin + offsets[0], offsets[1] - offsets[0]);
      out.emplace(key, t.to(torch::kFloat32));
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw fail("tensor '" + key + "': " + e.what());
    }
  }
  return out;
}

void load_state_dict(torch::nn::Module& module, const TensorMap& weights, const std::string& name) {
  torch::NoGradGuard no_grad;
  std::size_t used = 0;
  const auto assign = [&](const std::string& key, torch::Tensor& target) {
    auto it = weights.find(key);
    if (it == weights.end())
      throw Error(ErrorKind::Model, name + ": weight '" + key + "' is missing");
    if (it->second.sizes() != target.sizes())
      throw Error(ErrorKind::Model, name + ": weight '" + key + "' has the wrong shape");
    target.copy_(it->second);
    ++used;
  };
  for (auto& p : module.named_parameters()) assign(p.key(), p.value());
  for (auto& b : module.named_buffers()) assign(b.key(), b.value());
  if (used != weights.size())
    throw Error(ErrorKind::Model, name + ": holds " + std::to_string(weights.size() - used) +
                                      " weights the model does not use (wrong file?)");
}

}  // namespace cloak
