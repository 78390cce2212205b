#include "cloak/models/model_spec.h"

#include "cloak/core/error.h"

namespace cloak {

const std::vector<ModelSpec>& model_specs() {
  static const std::vector<ModelSpec> specs = {taef2_encoder_spec(), taesana_encoder_spec(),
                                               taef2_decoder_spec()};
  return specs;
}

const ModelSpec& model_spec(const std::string& name) {
  for (const auto& s : model_specs())
    if (s.name == name) return s;
  std::string known;
  for (const auto& s : model_specs()) known += (known.empty() ? "" : ", ") + s.name;
  throw Error(ErrorKind::Usage, "unknown model '" + name + "' (known: " + known + ")");
}

}  // namespace cloak
