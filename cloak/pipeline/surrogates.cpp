#include "cloak/pipeline/surrogates.h"

#include <torch/torch.h>

namespace cloak {

std::vector<LoadedModel> load_encoders(const SurrogateOptions& o) {
  at::set_num_threads(o.threads > 0 ? o.threads : default_threads());
  set_precision(o.precision);
  const auto search = model_search_path(o.models_dir);
  for (const auto& n : o.names) model_spec(n);  // an unknown name is a usage error, before any load
  std::vector<LoadedModel> out;
  for (const auto& spec : model_specs()) {
    if (spec.role != ModelRole::Encoder) continue;
    const bool named = std::find(o.names.begin(), o.names.end(), spec.name) != o.names.end();
    if (!o.names.empty() && !named) continue;
    if (o.names.empty() && !find_model(spec, search)) {
      if (o.warn) o.warn(spec.name + " is not installed; run 'cloak models fetch'");
      continue;
    }
    out.push_back(load_model(spec, search));
    out.back().net->to(o.device);
  }
  if (out.empty()) load_model(model_specs().front(), search);  // throws: says where it looked
  return out;
}

Autoencoder load_autoencoder(const SurrogateOptions& o) {
  const auto search = model_search_path(o.models_dir);
  Autoencoder ae{load_model(model_spec("taef2_encoder"), search),
                 load_model(model_spec("taef2_decoder"), search)};
  ae.encoder.net->to(o.device);
  ae.decoder.net->to(o.device);
  return ae;
}

}  // namespace cloak
