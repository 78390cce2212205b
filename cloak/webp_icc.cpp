#include "cloak/webp_icc.h"

#include <cstring>

namespace cloak {
namespace {

std::uint32_t le32(const std::uint8_t* p) {
  return p[0] | p[1] << 8 | p[2] << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}
void put_le(std::vector<std::uint8_t>& out, std::uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_chunk(std::vector<std::uint8_t>& out, const char* fourcc, const std::uint8_t* data,
               std::size_t n) {
  out.insert(out.end(), fourcc, fourcc + 4);
  put_le(out, static_cast<std::uint32_t>(n), 4);
  out.insert(out.end(), data, data + n);
  if (n & 1) out.push_back(0);
}

// Calls visit(fourcc, payload, size) for each top-level chunk after the RIFF/WEBP header.
template <class F>
void for_each_chunk(const std::vector<std::uint8_t>& webp, F&& visit) {
  for (std::size_t at = 12; at + 8 <= webp.size();) {
    std::size_t n = le32(webp.data() + at + 4);
    if (at + 8 + n > webp.size()) return;
    visit(reinterpret_cast<const char*>(webp.data() + at), webp.data() + at + 8, n);
    at += 8 + n + (n & 1);
  }
}

}  // namespace

std::vector<std::uint8_t> webp_icc_profile(const std::vector<std::uint8_t>& webp) {
  std::vector<std::uint8_t> icc;
  for_each_chunk(webp, [&](const char* id, const std::uint8_t* p, std::size_t n) {
    if (std::memcmp(id, "ICCP", 4) == 0) icc.assign(p, p + n);
  });
  return icc;
}

std::vector<std::uint8_t> webp_with_icc_profile(const std::vector<std::uint8_t>& webp,
                                                const std::vector<std::uint8_t>& icc, int width,
                                                int height, bool has_alpha) {
  constexpr std::uint8_t kIccFlag = 0x20, kAlphaFlag = 0x10;
  std::vector<std::uint8_t> body;
  bool have_vp8x = false;
  for_each_chunk(webp, [&](const char* id, const std::uint8_t* p, std::size_t n) {
    if (std::memcmp(id, "ICCP", 4) == 0) return;
    if (std::memcmp(id, "VP8X", 4) == 0 && n >= 10) {
      std::vector<std::uint8_t> vp8x(p, p + n);
      vp8x[0] |= kIccFlag;
      put_chunk(body, "VP8X", vp8x.data(), n);
      put_chunk(body, "ICCP", icc.data(), icc.size());
      have_vp8x = true;
      return;
    }
    put_chunk(body, id, p, n);
  });
  if (!have_vp8x) {
    std::vector<std::uint8_t> head;
    std::vector<std::uint8_t> vp8x = {
        static_cast<std::uint8_t>(kIccFlag | (has_alpha ? kAlphaFlag : 0)), 0, 0, 0};
    put_le(vp8x, static_cast<std::uint32_t>(width - 1), 3);
    put_le(vp8x, static_cast<std::uint32_t>(height - 1), 3);
    put_chunk(head, "VP8X", vp8x.data(), vp8x.size());
    put_chunk(head, "ICCP", icc.data(), icc.size());
    body.insert(body.begin(), head.begin(), head.end());
  }
  std::vector<std::uint8_t> out = {'R', 'I', 'F', 'F'};
  put_le(out, static_cast<std::uint32_t>(body.size() + 4), 4);
  out.insert(out.end(), {'W', 'E', 'B', 'P'});
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

}  // namespace cloak
