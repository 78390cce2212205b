// Facts about pixel values that every layer uses: code ranges and luma weights.
#pragma once

namespace cloak {

// The largest code value of a sample at `bit_depth` (8 or 16): sample value = code / max_code.
constexpr double max_code(int bit_depth) {
  return bit_depth == 16 ? 65535.0 : 255.0;
}
// 8-bit codes: what JPEG, the strength budgets and the reports count in.
inline constexpr double kMaxCode8 = 255.0;

// ITU-R BT.601 luma weights: JPEG's Y, and the gray the budgets and targets use.
inline constexpr double kLumaR = 0.299, kLumaG = 0.587, kLumaB = 0.114;

}  // namespace cloak
