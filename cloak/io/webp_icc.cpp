#include "cloak/io/webp_icc.h"

#include <webp/mux.h>

#include <memory>

#include "cloak/core/error.h"

namespace cloak {
namespace {

struct MuxDeleter {
  void operator()(WebPMux* mux) const { WebPMuxDelete(mux); }
};
using Mux = std::unique_ptr<WebPMux, MuxDeleter>;

Mux open_mux(const std::vector<std::uint8_t>& webp) {
  const WebPData data = {webp.data(), webp.size()};
  return Mux(WebPMuxCreate(&data, /*copy_data=*/0));
}

}  // namespace

std::vector<std::uint8_t> webp_icc_profile(const std::vector<std::uint8_t>& webp) {
  Mux mux = open_mux(webp);
  WebPData icc;
  if (!mux || WebPMuxGetChunk(mux.get(), "ICCP", &icc) != WEBP_MUX_OK) return {};
  return {icc.bytes, icc.bytes + icc.size};
}

std::vector<std::uint8_t> webp_with_icc_profile(const std::vector<std::uint8_t>& webp,
                                                const std::vector<std::uint8_t>& icc,
                                                const std::string& name) {
  Mux mux = open_mux(webp);
  const WebPData profile = {icc.data(), icc.size()};
  WebPData out;
  WebPDataInit(&out);
  if (!mux || WebPMuxSetChunk(mux.get(), "ICCP", &profile, /*copy_data=*/0) != WEBP_MUX_OK ||
      WebPMuxAssemble(mux.get(), &out) != WEBP_MUX_OK)
    throw Error(ErrorKind::Output, name + ": cannot embed the ICC profile in the WebP file");
  std::vector<std::uint8_t> bytes(out.bytes, out.bytes + out.size);
  WebPDataClear(&out);
  return bytes;
}

}  // namespace cloak
