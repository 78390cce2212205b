// End-to-end test of the GIMP plug-in in real, headless GIMP (gimp-console-2.10, Script-Fu).
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "cloak/engine/protect.h"
#include "cloak/pipeline/protect_file.h"
#include "cloak/pipeline/surrogates.h"
#include "test_support.h"

namespace cloak::test {
namespace {

namespace fs = std::filesystem;

std::string find_on_path(const std::string& name) {
  std::istringstream path(std::getenv("PATH") ? std::getenv("PATH") : "");
  for (std::string dir; std::getline(path, dir, ':');)
    if (access((fs::path(dir) / name).c_str(), X_OK) == 0) return (fs::path(dir) / name).string();
  return "";
}

using GimpPlugin = TempDirTest;

TEST_F(GimpPlugin, ProtectsTheSelectionLikeTheLibraryAndKeepsAlpha) {
  const std::string gimp = find_on_path("gimp-console-2.10");
  if (gimp.empty())
    GTEST_SKIP() << "GIMP is not installed (gimp-console-2.10 not on PATH): plug-in test skipped";
  const fs::path profile = path("profile");
  fs::create_directories(profile / "plug-ins" / "cloak");
  fs::copy_file(CLOAK_GIMP_PLUGIN, profile / "plug-ins" / "cloak" / "cloak");  // fresh mtime
  fs::permissions(profile / "plug-ins" / "cloak" / "cloak", fs::perms::owner_all);

  const int W = 96, H = 80, sx = 16, sy = 8, sw = 64, sh = 56;
  Image in = make_test_image(W, H, 3, true, 8);
  write_image(in, path("in.png"));
  const int seed = 5;
  // Protects the selection of a fresh copy of in.png and saves it as `out`; `run` is the run mode
  // and its arguments.
  const auto protect_copy = [&](const std::string& run, const std::string& out) {
    return "(let* ((img (car (gimp-file-load RUN-NONINTERACTIVE \"in.png\" \"in.png\")))"
           "       (drw (car (gimp-image-get-active-drawable img))))"
           "  (gimp-image-select-rectangle img CHANNEL-OP-REPLACE " +
           std::to_string(sx) + " " + std::to_string(sy) + " " + std::to_string(sw) + " " +
           std::to_string(sh) + ") (plug-in-cloak-protect " + run +
           ") (file-png-save2 RUN-NONINTERACTIVE img drw \"" + out + "\" \"" + out +
           "\" 0 9 0 0 0 0 0 0 1) (gimp-image-delete img))";
  };
  // Settings as the first plug-in saved them (no version field: mode, strength, preset, seed as
  // 32-bit integers, then the target path), then a run with the last values: they still load.
  const std::string saved_v0 =
      "(let ((d (make-vector 1040 0))) (vector-set! d 4 1) (vector-set! d 12 " +
      std::to_string(seed) + ") (gimp-procedural-db-set-data \"plug-in-cloak-protect\" 1040 d))";
  const std::string script =
      protect_copy("RUN-NONINTERACTIVE img drw 0 1 0 " + std::to_string(seed) + " \"\"",
                   "out.png") +
      saved_v0 + protect_copy("RUN-WITH-LAST-VALS img drw 0 0 0 0 \"\"", "out-v0.png");
  // A selection smaller than the encoders can see: the CLI's refusal, nothing protected.
  const std::string too_small =
      "(let* ((img (car (gimp-file-load RUN-NONINTERACTIVE \"in.png\" \"in.png\")))"
      "       (drw (car (gimp-image-get-active-drawable img))))"
      "  (gimp-image-select-rectangle img CHANNEL-OP-REPLACE 4 4 20 24)"
      "  (plug-in-cloak-protect RUN-NONINTERACTIVE img drw 0 1 0 0 \"\"))";
  const std::string cmd = "cd '" + dir_.string() + "' && GIMP2_DIRECTORY='" + profile.string() +
                          "' CLOAK_MODELS='" + models_dir().string() + "' timeout 600 '" + gimp +
                          "' -i -d -f -b '" + script + "' -b '" + too_small +
                          "' -b '(gimp-quit 0)' > gimp.log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream log_file(path("gimp.log"));
  const std::string log((std::istreambuf_iterator<char>(log_file)),
                        std::istreambuf_iterator<char>());
  ASSERT_NE(log.find("batch command executed successfully"), std::string::npos) << log;
  // The plug-in says how visible its change is and what it keeps against noise as visible (GIMP's
  // console prints plug-in messages).
  EXPECT_NE(log.find("Butteraugli"), std::string::npos) << log;
  EXPECT_NE(log.find("what noise as visible keeps"), std::string::npos) << log;
  EXPECT_NE(log.find("20x24 is too small to protect (the encoders see at least 32 px a side)"),
            std::string::npos)
      << log;
  Image out = read_image(path("out.png"));
  ASSERT_EQ(out.width, W);
  ASSERT_EQ(out.alpha, in.alpha);
  EXPECT_EQ(read_image(path("out-v0.png")).color, out.color)
      << "settings saved by the first plug-in did not load";

  // What the library gives for the same pixels, selection, settings and seed.
  SurrogateOptions options;
  options.models_dir = models_dir();
  const auto encoders = load_encoders(options);
  auto x = image_tensor(in).slice(2, sy, sy + sh).slice(3, sx, sx + sw).contiguous();
  auto mask = alpha_mask(in).slice(2, sy, sy + sh).slice(3, sx, sx + sw).contiguous();
  ProtectSettings s;
  s.preset = Preset::Fast;
  s.seed = seed;
  auto want = protect(encoders, {x, mask, 8}, s).image;

  int changed = 0, same_as_library = 0, inside = 0;
  double worst = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < H; ++y)
      for (int xx = 0; xx < W; ++xx) {
        const std::size_t i = static_cast<std::size_t>((c * H + y) * W + xx);
        if (in.alpha[i % static_cast<std::size_t>(W * H)] == 0) continue;  // invisible
        const bool selected = xx >= sx && xx < sx + sw && y >= sy && y < sy + sh;
        const double d = std::abs(out.color[i] - in.color[i]) * 255;
        if (!selected) {
          ASSERT_EQ(out.color[i], in.color[i])
              << "changed outside the selection at " << xx << "," << y;
          continue;
        }
        ++inside;
        changed += d > 0;
        worst = std::max(worst, d);
        const float lib = want[0][c][y - sy][xx - sx].item<float>();
        same_as_library += std::abs(lib - out.color[i]) * 255 < 0.5;
      }
  EXPECT_GT(changed, inside / 4);
  EXPECT_LE(worst, strength_budget(Strength::Medium).eps_codes + 1e-3);
  EXPECT_EQ(same_as_library, inside) << "GIMP and the library disagree";
}

}  // namespace
}  // namespace cloak::test
