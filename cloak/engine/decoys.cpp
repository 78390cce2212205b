#include "cloak/engine/decoys.h"

#include <torch/torch.h>

#include "cloak/core/error.h"

namespace cloak {

std::vector<std::string> decoy_names() {
  return {"cubist", "pointillist", "woodcut"};
}

torch::Tensor make_decoy(const std::string& name, int size) {
  auto lin = torch::linspace(0, 1, size);
  auto y = lin.view({size, 1}).expand({size, size});
  auto x = lin.view({1, size}).expand({size, size});
  torch::Tensor r, g, b;
  if (name == "cubist") {
    // Hard-edged facets of flat ochre, slate and brick: large blocks at angles.
    auto a = torch::floor((x * 3.1 + y * 1.7) * 2.5);
    auto c = torch::floor((x * -1.3 + y * 2.9) * 2.5);
    auto facet = torch::remainder(a * 7 + c * 13, 5) / 4;
    r = 0.35 + 0.5 * facet;
    g = 0.3 + 0.35 * torch::remainder(facet * 3, 1);
    b = 0.25 + 0.4 * (1 - facet);
  } else if (name == "pointillist") {
    // Dense dots of saturated complementary colours.
    auto phase = torch::sin(x * size * 0.9) * torch::sin(y * size * 0.9);
    auto dots = (phase > 0.3).to(torch::kFloat32);
    r = 0.9 * dots + 0.2 * (1 - dots);
    g = 0.3 + 0.5 * torch::sin(x * 40).abs();
    b = 0.8 * (1 - dots) + 0.3 * torch::cos(y * 30).abs();
  } else if (name == "woodcut") {
    // Black-and-cream parallel gouges that follow a swirl.
    auto swirl = torch::sin(x * 25 + 6 * torch::sin(y * 5)) > 0;
    auto v = 0.1 + 0.8 * swirl.to(torch::kFloat32);
    r = v;
    g = v * 0.92;
    b = v * 0.78;
  } else {
    std::string known;
    for (const auto& n : decoy_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error(ErrorKind::Usage, "unknown decoy style '" + name + "' (built in: " + known + ")");
  }
  return torch::stack({r, g, b}).unsqueeze(0).clamp(0, 1).contiguous();
}

}  // namespace cloak
