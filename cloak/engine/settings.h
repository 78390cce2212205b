// Every choice a protect run offers, declared once: its name, what it means and its default. The
// CLI (options, checks, help), the GIMP dialog, the JSON report and the benchmark read these tables
// and ProtectSettings' initialisers; nothing else restates them.
#pragma once

#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cloak {

enum class Mode { Guard, Cloak, Poison };
enum class Strength { Low, Medium, High };
enum class Preset { Fast, Balanced, Max };
enum class InvisibleAt { FullSize, TrainingSize };

// A choice that is a name and what it means.
template <class Value>
struct NamedChoice {
  Value value;
  const char* name;
  const char* help;
};
inline constexpr NamedChoice<Mode> kModes[] = {
    {Mode::Guard, "guard", "break what editors and trainers see"},
    {Mode::Cloak, "cloak", "shift the style toward a decoy"},
    {Mode::Poison, "poison", "shift the concept toward a target image"},
};

// The visibility each strength promises: the output is no more visible (Butteraugli max and
// 3-norm, engine/butteraugli.h) than a JPEG of the same image at `jpeg_quality`, which an upload
// already does to it; the L-infinity bound in textured areas (8-bit code values) that caps any
// pixel's change; and the protection `verify` expects of it after JPEG q75, mean over the
// surrogates: a relative latent shift of at least `min_shift_jpeg75`, and at least
// `min_floor_multiple` times the shift of plain noise as visible (report/noise_floor.h), which
// JPEG alone turns into a shift of its own (bench/RESULTS.md).
struct StrengthBudget {
  double eps_codes;
  int jpeg_quality;
  double min_shift_jpeg75;
  double min_floor_multiple;
};
struct StrengthChoice {
  Strength value;
  const char* name;
  StrengthBudget budget;
};
inline constexpr StrengthChoice kStrengths[] = {
    {Strength::Low, "low", {4, 95, 0.03, 1.4}},
    {Strength::Medium, "medium", {8, 90, 0.05, 1.4}},
    {Strength::High, "high", {12, 80, 0.07, 1.4}},
};

struct PresetChoice {
  Preset value;
  const char* name;
  int sweeps;  // full passes over every pixel
};
inline constexpr PresetChoice kPresets[] = {
    {Preset::Fast, "fast", 8},
    {Preset::Balanced, "balanced", 16},
    {Preset::Max, "max", 32},
};

// Where the strength's promise is judged on a picture larger than the training scale
// (ProtectSettings::training_pixels, with a margin: protect.h, coarse_to_fine). Invisible at its
// own size, the change keeps 0.56-0.86x of the shift that protecting its training-size copy gives,
// once a trainer shrinks it; judged on the copy shrunk to that scale it keeps 0.86-1.01x, and on a
// painting shows more at full size (bench/RESULTS.md, "The scale table at full size").
inline constexpr NamedChoice<InvisibleAt> kInvisibleAt[] = {
    {InvisibleAt::FullSize, "full-size", "at the picture's own size"},
    {InvisibleAt::TrainingSize, "training-size",
     "on pictures over 1.25 MP, once shrunk to the training scale (1 MP): keeps the protection "
     "trainers see, shows more at full size"},
};

// The entry of `table` for `value`: each table lists its enum's values in declaration order.
template <class Choice, std::size_t N>
constexpr const Choice& choice(const Choice (&table)[N], decltype(Choice::value) value) {
  return table[static_cast<std::size_t>(value)];
}
template <class Choice, std::size_t N>
constexpr bool in_declaration_order(const Choice (&table)[N]) {
  for (std::size_t i = 0; i < N; ++i)
    if (static_cast<std::size_t>(table[i].value) != i) return false;
  return true;
}
static_assert(in_declaration_order(kModes) && in_declaration_order(kStrengths) &&
              in_declaration_order(kPresets) && in_declaration_order(kInvisibleAt));

// The value `name` names in `table`, or nothing.
template <class Choice, std::size_t N>
std::optional<decltype(Choice::value)> from_name(const Choice (&table)[N],
                                                 const std::string& name) {
  for (const auto& c : table)
    if (name == c.name) return c.value;
  return std::nullopt;
}
// "{guard,cloak,poison}": a table's names, for help texts and errors.
template <class Choice, std::size_t N>
std::string names_of(const Choice (&table)[N]) {
  std::string list;
  for (const auto& c : table) list += (list.empty() ? "" : ",") + std::string(c.name);
  return "{" + list + "}";
}

inline StrengthBudget strength_budget(Strength s) {
  return choice(kStrengths, s).budget;
}
inline int preset_sweeps(Preset p) {
  return choice(kPresets, p).sweeps;
}
inline std::string to_string(Mode m) {
  return choice(kModes, m).name;
}
inline std::string to_string(Strength s) {
  return choice(kStrengths, s).name;
}
inline std::string to_string(Preset p) {
  return choice(kPresets, p).name;
}
inline std::string to_string(InvisibleAt a) {
  return choice(kInvisibleAt, a).name;
}
// A choice as help texts and dialogs show it: "guard: break what editors and trainers see",
// "medium (no more visible than JPEG q90)", "fast (8 sweeps)".
std::string describe(Mode m);
std::string describe(Strength s);
std::string describe(Preset p);
std::string describe(InvisibleAt a);

struct ProtectSettings {
  Mode mode = Mode::Guard;
  Strength strength = Strength::Medium;
  Preset preset = Preset::Balanced;
  std::uint64_t seed = 0;
  torch::Tensor target;          // (1,3,h,w) in [0,1]: poison's anchor or cloak's decoy style
  std::string decoy = "cubist";  // cloak's built-in decoy (engine/decoys.h) when no target is given
  int tile = 256;                // optimisation window side: bounds memory at any image size
  // The scale fine-tuning pipelines resize to before encoding (about 1 MP): a larger image is
  // optimised at this scale first, then refined at native size (0: always at native size).
  double training_pixels = 1024.0 * 1024.0;
  InvisibleAt invisible_at = InvisibleAt::FullSize;  // where the strength's promise is judged
  torch::Device device = torch::kCPU;
};

}  // namespace cloak
