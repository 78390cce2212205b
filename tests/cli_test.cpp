// End-to-end tests of the cloak binary on images the tests write themselves.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <exiv2/exiv2.hpp>
#pragma GCC diagnostic pop
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "cloak/core/error.h"
#include "cloak/engine/decoys.h"
#include "cloak/engine/settings.h"
#include "cloak/io/file_io.h"
#include "cloak/pipeline/batch_manifest.h"
#include "cloak/pipeline/batch_shard.h"
#include "cloak/pipeline/cpu_share.h"
#include "cloak/weights/sha256.h"
#include "test_models.h"

namespace cloak::test {
namespace {

namespace fs = std::filesystem;

// Starts the cloak binary in `dir` with its standard output into `out` (discarded by default) and
// its errors discarded; returns its pid.
pid_t spawn_cli(const fs::path& dir, const std::vector<std::string>& args,
                const fs::path& out = "/dev/null") {
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(99);
    int devnull = ::open("/dev/null", O_WRONLY);
    int stdout_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(stdout_fd, 1);
    dup2(devnull, 2);
    std::vector<char*> argv = {const_cast<char*>("cloak")};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(CLOAK_CLI, argv.data());
    _exit(98);
  }
  return pid;
}

class Cli : public TempDirTest {
 protected:
  void write(const std::string& name, const Image& img) { write_image(img, path(name)); }
  CliRun run(const std::string& args, const std::string& prefix = "") {
    return cloak_cli(dir_, args, prefix);
  }
};

TEST_F(Cli, ProtectWritesAProtectedCopyWithinBudgetAndNeverOverwrites) {
  write("art.png", make_test_image(64, 64, 3, false, 8));
  CliRun r = run("protect art.png --preset fast --seed 3");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("art-cloaked.png"), std::string::npos) << r.output;
  Image in = read_image(path("art.png")), out = read_image(path("art-cloaked.png"));
  double maxdiff = 0;
  for (std::size_t i = 0; i < in.color.size(); ++i)
    maxdiff = std::max<double>(maxdiff, std::abs(in.color[i] - out.color[i]));
  EXPECT_GT(maxdiff, 0.0);
  EXPECT_LE(maxdiff * 255, 8.0 + 1e-3);  // medium's bound: 8 codes
  auto first = read_file(path("art-cloaked.png"));
  CliRun again = run("protect art.png --preset fast --seed 3");
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.output.find("art-cloaked.png: already exists"), std::string::npos)
      << again.output;
  EXPECT_EQ(read_file(path("art-cloaked.png")), first);
  CliRun self = run("protect art.png -o art.png --overwrite --preset fast");
  EXPECT_EQ(self.code, 1);
  EXPECT_NE(self.output.find("is the input file"), std::string::npos) << self.output;
  // Same input, settings and seed: the same bytes. The one line says what survives JPEG q75;
  // --report has the full report, with the same figure.
  CliRun same = run("protect art.png --preset fast --seed 3 -o again.png --report again.json");
  ASSERT_EQ(same.code, 0) << same.output;
  EXPECT_EQ(read_file(path("again.png")), first);
  const auto bytes = read_file(path("again.json"));
  const auto report = nlohmann::json::parse(std::string(bytes.begin(), bytes.end()));
  for (const auto& s : report["surrogates"]) {
    const std::string name = s["name"];
    SCOPED_TRACE(name);
    EXPECT_TRUE(s.contains("latent_shift") && s.contains("latent_shift_resize50"));
    char shown[64];
    std::snprintf(shown, sizeof shown, "%s %.2f", name.substr(0, name.find('_')).c_str(),
                  s["latent_shift_jpeg75"].get<double>());
    EXPECT_NE(r.output.find(std::string("latent shift after JPEG q75")), std::string::npos);
    EXPECT_NE(r.output.find(shown), std::string::npos) << r.output;
  }
}

TEST_F(Cli, Keeps16BitAlphaAndMetadataAndWritesTheOptOutTag) {
  write("deep.png", make_test_image(48, 40, 3, true, 16));
  {
    auto img = Exiv2::ImageFactory::open(path("deep.png").string());
    img->readMetadata();
    img->exifData()["Exif.Image.Artist"] = "A. Painter";
    img->writeMetadata();
  }
  CliRun protected_ = run("protect deep.png --preset fast --json");
  ASSERT_EQ(protected_.code, 0) << protected_.output;
  Image in = read_image(path("deep.png")), out = read_image(path("deep-cloaked.png"));
  EXPECT_EQ(out.bit_depth, 16);
  EXPECT_EQ(out.alpha, in.alpha);
  for (std::size_t i = 0; i < in.color.size(); ++i)
    if (in.alpha[i % in.alpha.size()] == 0.0f) {
      ASSERT_EQ(in.color[i], out.color[i]);
    }
  auto meta = Exiv2::ImageFactory::open(path("deep-cloaked.png").string());
  meta->readMetadata();
  EXPECT_EQ(meta->xmpData()["Xmp.plus.DataMining"].toString(),
            "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING");
  EXPECT_EQ(meta->exifData()["Exif.Image.Artist"].toString(), "A. Painter");
  ASSERT_EQ(run("protect deep.png --preset fast --no-optout-tag -o plain.png").code, 0);
  auto plain = Exiv2::ImageFactory::open(path("plain.png").string());
  plain->readMetadata();
  EXPECT_EQ(plain->xmpData().findKey(Exiv2::XmpKey("Xmp.plus.DataMining")), plain->xmpData().end());
  // verify, from the files, judges by the same floor as the run's own report: its noise copy also
  // leaves the transparent pixels alone (NoiseFloor.PutsNoiseOnlyWhere...).
  CliRun v = run("verify deep.png deep-cloaked.png --json");
  EXPECT_NEAR(
      nlohmann::json::parse(v.output)["mean_noise_floor_jpeg75"].get<double>(),
      nlohmann::json::parse(protected_.output)["verdict"]["mean_noise_floor_jpeg75"].get<double>(),
      1e-6)
      << v.output;
}

TEST_F(Cli, VerifyJudgesByTheNoiseFloorAndRefusesNoiseAJpegAndACopy) {
  const Image art = painting_image(128, "durer_melencolia_i.jpg");
  write("art.png", art);
  ASSERT_EQ(run("protect art.png").code, 0);
  CliRun yes = run("verify art.png art-cloaked.png --json");
  EXPECT_EQ(yes.code, 0) << yes.output;
  const auto j = nlohmann::json::parse(yes.output);
  EXPECT_TRUE(j["protected"].get<bool>());
  // Judged against noise as visible as the protection itself, after JPEG q75.
  const double norm3 = j["quality"]["butteraugli_3norm"].get<double>();
  EXPECT_NEAR(j["noise_floor"]["butteraugli_3norm"].get<double>(), norm3, 0.03 * norm3);
  EXPECT_NEAR(
      j["multiple_of_floor_jpeg75"].get<double>(),
      j["mean_latent_shift_jpeg75"].get<double>() / j["mean_noise_floor_jpeg75"].get<double>(),
      1e-9);
  EXPECT_GE(j["multiple_of_floor_jpeg75"].get<double>(),
            j["min_multiple_of_floor_jpeg75"].get<double>());
  EXPECT_EQ(j["min_multiple_of_floor_jpeg75"].get<double>(),
            strength_budget(Strength::Medium).min_floor_multiple);
  for (const auto& s : j["surrogates"]) {
    EXPECT_GT(s["noise_floor_jpeg75"].get<double>(), 0.0);
    EXPECT_NEAR(s["multiple_of_floor_jpeg75"].get<double>(),
                s["latent_shift_jpeg75"].get<double>() / s["noise_floor_jpeg75"].get<double>(),
                1e-9);
  }
  // How visible it is: protected at medium, so no more visible than a JPEG q90.
  EXPECT_GE(j["quality"]["jpeg_equivalent"].get<int>(), 90);
  // Not protection: Gaussian noise as visible as Cloak's change, a JPEG q90 saved as PNG, and
  // an exact copy. Each moves the latent after JPEG q75, none beyond what noise does.
  write("noise.png", with_color(art, gaussian_noise_as_visible(image_tensor(art), norm3)));
  write("jpeg90.png", jpeg_copy(art, 90));
  write("copy.png", art);
  for (const char* copy : {"noise.png", "jpeg90.png", "copy.png"}) {
    SCOPED_TRACE(copy);
    CliRun no = run(std::string("verify art.png ") + copy);
    EXPECT_EQ(no.code, 4) << no.output;
    EXPECT_NE(no.output.find("NOT protected: after JPEG q75 the latent shift"), std::string::npos)
        << no.output;
  }
  EXPECT_NE(
      run("verify art.png copy.png")
          .output.find("visibility: Butteraugli max 0.00, 3-norm 0.00: no more visible than a "
                       "JPEG q100"),
      std::string::npos);
}

TEST_F(Cli, TargetedModesReportHowFarTowardTheTargetBesideTheNoiseCopy) {
  write("art.png", painting_image(64, "durer_melencolia_i.jpg"));
  write("anchor.png", painting_image(64, "vangogh_starry_night.jpg"));
  CliRun r = run("protect art.png --mode poison --target anchor.png --preset fast --report r.json");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("toward the target after JPEG q75"), std::string::npos) << r.output;
  // Beside the noise copy's share, not as a multiple of it (which a share near 0 inflates).
  EXPECT_NE(r.output.find(" of the way (noise as visible "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("x noise)"), std::string::npos) << r.output;
  std::ifstream in(path("r.json"));
  const auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["surrogates"].size(), 2u);
  for (const auto& s : j["surrogates"]) {
    const double toward = s["toward_target_jpeg75"].get<double>();
    const double floor = s["noise_floor_toward_target_jpeg75"].get<double>();
    EXPECT_NEAR(s["multiple_of_floor_toward_target_jpeg75"].get<double>(), toward / std::abs(floor),
                1e-9 * std::abs(toward / floor));
    EXPECT_GT(s["toward_target"].get<double>(), 0.0);  // as saved it moved toward the anchor
  }
}

TEST_F(Cli, PreviewVisibilityMapsWhereTheChangeShows) {
  write("art.png", make_test_image(96, 80, 3, false, 8));
  write("copy.png", read_image(path("art.png")));
  ASSERT_EQ(run("protect art.png --preset fast").code, 0);
  CliRun r = run("preview art.png art-cloaked.png --visibility");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("art-visibility.png  Butteraugli max"), std::string::npos) << r.output;
  const Image map = read_image(path("art-visibility.png"));
  EXPECT_EQ(map.width, 96);  // full size, pixel for pixel
  EXPECT_EQ(map.height, 80);
  // An unchanged copy is visible nowhere: the map is the picture in gray, with no colour laid on.
  ASSERT_EQ(run("preview art.png copy.png --visibility -o same.png").code, 0);
  const Image same = read_image(path("same.png"));
  const std::size_t n = 96 * 80;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(same.color[i], same.color[n + i]) << i;
    ASSERT_EQ(same.color[i], same.color[2 * n + i]) << i;
  }
  CliRun alone = run("preview art.png --visibility");
  EXPECT_NE(alone.code, 0);
  EXPECT_NE(alone.output.find("--visibility needs the protected copy"), std::string::npos)
      << alone.output;
}

TEST_F(Cli, BadInputsGiveOneClearLineAndTheirExitCode) {
  write_file_atomic(path("empty.png"), {}, false);
  auto png = (write("ok.png", make_test_image(32, 32, 3, false, 8)), read_file(path("ok.png")));
  write_file_atomic(path("cut.png"), std::vector<std::uint8_t>(png.begin(), png.begin() + 100),
                    false);
  write_file_atomic(path("notes.txt"), {'h', 'i'}, false);
  write_file_atomic(path("png.jpg"), png, false);
  struct Case {
    std::string args, fragment;
    int code;
  };
  for (const auto& c :
       {Case{"protect empty.png", "empty.png: file is empty", 1},
        Case{"protect cut.png", "cut.png: corrupt PNG", 1},
        Case{"protect notes.txt", "notes.txt: unsupported format", 1},
        Case{"protect png.jpg", "png.jpg: content is PNG but the extension says JPEG", 1},
        Case{"protect missing.png", "missing.png: cannot open", 1},
        Case{"protect ok.png --max-side 16", "ok.png: 32x32 is larger than the limit", 1},
        Case{"protect ok.png -o no/such/dir/out.png", "cannot write to folder", 1},
        Case{"protect ok.png --mode poison", "--mode poison needs --target", 2},
        Case{"protect ok.png --strength extreme", "strength", 2},
        Case{"serve --output notes.txt", "notes.txt: --output must be an existing folder", 2},
        Case{"frobnicate", "frobnicate", 2}}) {
    SCOPED_TRACE(c.args);
    CliRun r = run(c.args);
    EXPECT_EQ(r.code, c.code) << r.output;
    EXPECT_NE(r.output.find(c.fragment), std::string::npos) << r.output;
  }
  fs::create_directory(path("models"));
  auto weights = read_file(models_dir() / "taef2_encoder.safetensors");
  weights[1000] ^= 1;
  write_file_atomic(path("models/taef2_encoder.safetensors"), weights, false);
  CliRun tampered = run("protect ok.png --models models");
  EXPECT_EQ(tampered.code, 1);
  EXPECT_NE(tampered.output.find("SHA-256 mismatch"), std::string::npos) << tampered.output;
  int files = 0;
  for (auto& e : fs::directory_iterator(dir_))
    files += e.path().filename().string().find("cloaked") != std::string::npos;
  EXPECT_EQ(files, 0) << "no output for a failed run";
}

TEST_F(Cli, BatchResumesAfterBeingKilledWithoutRedoingFinishedWork) {
  fs::create_directories(path("in/sub"));
  for (int i = 0; i < 4; ++i)
    write("in/" + std::string(i % 2 ? "sub/" : "") + "p" + std::to_string(i) + ".png",
          make_test_image(96 + 8 * i, 96, 3, false, 8));
  pid_t pid = spawn_cli(dir_, {"batch", "in", "-o", "out", "-r"});
  // Kill it hard as soon as the first file is finished.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  fs::path first;
  while (first.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!fs::exists(path("out/cloak-manifest.json"))) continue;
    try {
      const auto m = BatchManifest::read(path("out/cloak-manifest.json"));
      for (auto& [k, v] : m["files"].items())
        if (v["status"] == "done") first = path("out") / k;
    } catch (const Error& e) {
      ADD_FAILURE() << "manifest was half-written: " << e.what();
    }
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_FALSE(first.empty()) << "no file finished in time";
  struct stat before;
  ASSERT_EQ(stat(first.c_str(), &before), 0);
  CliRun refused = run("batch in -o out -r");
  EXPECT_EQ(refused.code, 2) << refused.output;
  CliRun resumed = run("batch in -o out -r --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("1 already done"), std::string::npos) << resumed.output;
  struct stat after;
  ASSERT_EQ(stat(first.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "finished output was redone";
  for (int i = 0; i < 4; ++i) {
    fs::path out =
        path("out/" + std::string(i % 2 ? "sub/" : "") + "p" + std::to_string(i) + ".png");
    EXPECT_EQ(read_image(out).width, 96 + 8 * i);
  }
  for (auto& e : fs::recursive_directory_iterator(path("out")))
    EXPECT_EQ(e.path().filename().string().find(".cloak-"), std::string::npos)
        << "temporary left: " << e.path();
  CliRun nothing = run("batch in -o out -r --resume");
  EXPECT_NE(nothing.output.find("0 protected, 4 already done"), std::string::npos)
      << nothing.output;
}

// A truncated PNG: fails fast, without protection work.
std::vector<std::uint8_t> corrupt_png() {
  auto png = encode_image(make_test_image(40, 32, 3, false, 8), "bad.png", 90);
  png.resize(png.size() / 2);
  return png;
}

nlohmann::json manifest_of(const fs::path& file) {
  return BatchManifest::read(file);  // with its journal; throws when damaged
}

TEST_F(Cli, KilledAtTwentyRandomPointsABatchLosesNothingAndRedoesNothing) {
  fs::create_directories(path("in/sub"));
  const int n = 12;  // about one finished per kill, so the kills fall all through the work
  for (int i = 0; i < n; ++i)
    write("in/" + std::string(i % 2 ? "sub/" : "") + "p" + std::to_string(i) + ".png",
          make_test_image(40 + 4 * i, 48, 3, false, 8));
  std::mt19937 rng(2026);
  std::uniform_int_distribution<int> delay_ms(800, 3000);
  std::map<std::string, ino_t> finished;  // output -> inode when first seen finished
  const std::vector<std::string> args = {"batch", "in",       "-o",       "out",
                                         "-r",    "--resume", "--preset", "fast"};
  for (int k = 0; k < 20; ++k) {
    SCOPED_TRACE("kill " + std::to_string(k));
    pid_t pid = spawn_cli(dir_, args);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    if (!fs::exists(path("out/cloak-manifest.json"))) continue;
    const auto m = manifest_of(path("out/cloak-manifest.json"));
    for (const auto& [key, e] : m["files"].items()) {
      if (e.value("status", "") != "done") continue;
      const fs::path out = path("out") / e["output"].get<std::string>();
      ASSERT_EQ(sha256_hex(read_file(out)), e["output_sha256"]) << key;
      struct stat st;
      ASSERT_EQ(stat(out.c_str(), &st), 0);
      auto [it, fresh] = finished.emplace(out.string(), st.st_ino);
      EXPECT_EQ(it->second, st.st_ino) << out << " was redone";
    }
  }
  // Temporaries as a kill during the final write leaves them: from a dead writer on this machine,
  // and from one on another machine sharing the folder, an hour ago. A fresh one from another
  // machine may be a live write there: it stays.
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  const fs::path stale =
      path("out/sub/.p1.png.cloak-" + std::string(host) + "-" + std::to_string(dead) + "-AbC123");
  const fs::path abandoned = path("out/.p0.png.cloak-node-7-" + std::to_string(dead) + "-XyZ789");
  const fs::path live_elsewhere = path("out/.p2.png.cloak-node-7-1-QrS456");
  fs::create_directories(stale.parent_path());
  for (const auto& f : {stale, abandoned, live_elsewhere}) write_bytes(f, {1, 2, 3});
  fs::last_write_time(abandoned, fs::file_time_type::clock::now() - std::chrono::minutes(61));
  CliRun last = run("batch in -o out -r --resume --preset fast");
  ASSERT_EQ(last.code, 0) << last.output;
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_FALSE(fs::exists(abandoned));
  EXPECT_TRUE(fs::exists(live_elsewhere));
  fs::remove(live_elsewhere);
  for (int i = 0; i < n; ++i) {
    const fs::path out =
        path("out/" + std::string(i % 2 ? "sub/" : "") + "p" + std::to_string(i) + ".png");
    EXPECT_EQ(read_image(out).width, 40 + 4 * i);
    struct stat st;
    ASSERT_EQ(stat(out.c_str(), &st), 0);
    if (finished.count(out.string())) {
      EXPECT_EQ(finished[out.string()], st.st_ino) << out;
    }
  }
  int files = 0;
  for (auto& e : fs::recursive_directory_iterator(path("out"))) {
    EXPECT_EQ(e.path().filename().string().find(".cloak-"), std::string::npos)
        << "temporary left: " << e.path();
    files += e.is_regular_file();
  }
  EXPECT_EQ(files, n + 3);  // the outputs, the manifest, its journal and its lock file
  EXPECT_EQ(fs::file_size(path("out/cloak-manifest.json.journal")), 0u);  // folded in at the end
  const auto final_manifest = manifest_of(path("out/cloak-manifest.json"));
  for (const auto& [key, e] : final_manifest["files"].items())
    EXPECT_EQ(e["status"], "done") << key;
  std::cout << "finished before the last resume: " << finished.size() << " of " << n << "\n";
}

TEST_F(Cli, ResumeReplacesOnlyWhatTheBatchItselfWrote) {
  // A list with an absolute path and a ../ path: outputs land inside -o, never among originals.
  fs::create_directories(path("art"));
  fs::create_directories(path("lists"));
  write("art/piece.png", make_test_image(48, 48, 3, false, 8));
  write("art/piece.jpg", make_test_image(56, 48, 3, false, 8));
  write("art/other.png", make_test_image(40, 48, 3, false, 8));
  const auto master = read_file(path("art/piece.png"));
  write_bytes(path("lists/list.txt"), [&] {
    std::string t = path("art/piece.jpg").string() + "\n../art/other.png\n";
    return std::vector<std::uint8_t>(t.begin(), t.end());
  }());
  for (const char* flags : {"", " --resume"}) {
    CliRun r = run(std::string("batch lists/list.txt -o out --format png --preset fast") + flags);
    EXPECT_EQ(r.code, 0) << r.output;
  }
  EXPECT_EQ(read_file(path("art/piece.png")), master);
  EXPECT_EQ(read_image(path("out/art/piece.png")).width, 56);
  EXPECT_EQ(read_image(path("out/art/other.png")).width, 40);

  // An unrelated file already in the output folder is refused, and stays refused on --resume.
  fs::create_directories(path("in"));
  write("in/x.png", make_test_image(48, 48, 3, false, 8));
  write("in/y.png", make_test_image(48, 40, 3, false, 8));
  write("in/cover.jpg", make_test_image(48, 48, 3, false, 8));
  write("in/cover.png", make_test_image(40, 40, 3, false, 8));
  fs::create_directories(path("out2"));
  write_bytes(path("out2/x.png"), {'m', 'i', 'n', 'e'});
  for (const char* flags : {"", " --resume"}) {
    SCOPED_TRACE(flags);
    CliRun r = run(std::string("batch in -o out2 --format png --preset fast") + flags);
    EXPECT_EQ(r.code, 3) << r.output;
    EXPECT_NE(r.output.find("out2/x.png: already exists and was not written by this batch"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("in/cover.png: its output out2/cover.png is also the output of "),
              std::string::npos)
        << r.output;
    EXPECT_EQ(read_file(path("out2/x.png")), std::vector<std::uint8_t>({'m', 'i', 'n', 'e'}));
  }
  EXPECT_EQ(read_image(path("out2/cover.png")).width, 48);  // from cover.jpg, the first
  const auto m = manifest_of(path("out2/cloak-manifest.json"))["files"];
  EXPECT_EQ(m["cover.jpg"]["status"], "done");
  EXPECT_EQ(m["cover.png"]["status"], "failed");
  EXPECT_EQ(m["x.png"]["status"], "failed");
  EXPECT_EQ(m["y.png"]["status"], "done");

  CliRun same = run("batch in -o in");
  EXPECT_EQ(same.code, 2) << same.output;
  EXPECT_NE(same.output.find("the output folder is the source folder"), std::string::npos);
  CliRun same2 = run("batch in -o ./in/../in");
  EXPECT_EQ(same2.code, 2) << same2.output;
}

TEST_F(Cli, OneBadFileFailsAloneInABatch) {
  fs::create_directories(path("in"));
  write("in/a-sliver.png", make_test_image(1, 64, 3, false, 8));
  write("in/b-clear.png", make_test_image(48, 48, 3, true, 8));
  write("in/c-ok.png", make_test_image(48, 48, 3, false, 8));
  for (const char* flags : {"", " --resume"}) {
    SCOPED_TRACE(flags);
    CliRun r = run(std::string("batch in -o out --format jpg --preset fast") + flags);
    EXPECT_EQ(r.code, 3) << r.output;
    // Named as the user would type it, from the folder the batch runs in.
    EXPECT_NE(r.output.find("cloak: in/a-sliver.png: 1x64 is too small to protect"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("b-clear.jpg: JPEG cannot store transparency"), std::string::npos)
        << r.output;
  }
  EXPECT_EQ(read_image(path("out/c-ok.jpg")).width, 48);
  // The status view (run here under the sanitizers too) counts and names them.
  CliRun status = run("batch status out");
  EXPECT_EQ(status.code, 3) << status.output;
  EXPECT_NE(status.output.find("out: 3 images in 1 shard: 1 done, 2 failed\n"), std::string::npos)
      << status.output;
  EXPECT_NE(status.output.find("\n  in/a-sliver.png: 1x64 is too small to protect"),
            std::string::npos)
      << status.output;
}

TEST_F(Cli, AnOlderSplitOrADamagedManifestIsRefusedInOneLine) {
  fs::create_directories(path("in"));
  write("in/p0.png", make_test_image(40, 32, 3, false, 8));
  fs::create_directories(path("out"));
  // A shard begun by a cloak that chose shards by FNV-1a alone (manifest version 1): its files
  // would move between shards.
  const std::string v1 = R"({"version":1,"files":{}})";
  write_bytes(path("out/cloak-manifest.0-of-2.json"), {v1.begin(), v1.end()});
  CliRun older = run("batch in -o out --shard 0/2 --resume");
  EXPECT_EQ(older.code, 2) << older.output;
  EXPECT_EQ(older.output,
            "cloak: out/cloak-manifest.0-of-2.json: was started by an older cloak that chose "
            "shards differently; finish it with that version, or start the batch again in a new "
            "folder\n");
  const std::string damaged = R"({"version":2,"images":-1,"files":{}})";
  write_bytes(path("out/cloak-manifest.1-of-2.json"), {damaged.begin(), damaged.end()});
  // A stray name with a shard count no batch has is not read as one (no billion shards listed).
  write_bytes(path("out/cloak-manifest.0-of-9999999999.json"), {v1.begin(), v1.end()});
  // The damaged shard is named, the others still shown, and the exit status is reading's own.
  CliRun status = run("batch status out");
  EXPECT_EQ(status.code, 6) << status.output;
  EXPECT_EQ(status.output,
            "out: 0 images in 2 shards: nothing to do\n"
            "  shard 0/2: nothing to do\n"
            "  shard 1/2: its manifest cannot be read (below)\n"
            "cloak: out/cloak-manifest.1-of-2.json: batch manifest is damaged (images is not a "
            "count); which outputs it wrote cannot be told: redo the batch with --overwrite, or "
            "start it in a new output folder\n");
  // A manifest cut short: refused on resume, and redone with --overwrite as the line says.
  fs::create_directories(path("bad"));
  write_bytes(path("bad/broken.png"), corrupt_png());
  EXPECT_EQ(run("batch bad -o out2 --preset fast").code, 3);
  auto cut = read_file(path("out2/cloak-manifest.json"));
  cut.resize(cut.size() / 2);
  fs::remove(path("out2/cloak-manifest.json"));
  write_bytes(path("out2/cloak-manifest.json"), cut);
  CliRun resumed = run("batch bad -o out2 --preset fast --resume");
  EXPECT_EQ(resumed.code, 1) << resumed.output;
  EXPECT_EQ(resumed.output,
            "cloak: out2/cloak-manifest.json: batch manifest is damaged (not valid JSON); which "
            "outputs it wrote cannot be told: redo the batch with --overwrite, or start it in a "
            "new output folder\n");
  CliRun redone = run("batch bad -o out2 --preset fast --resume --overwrite");
  EXPECT_EQ(redone.code, 3) << redone.output;
  EXPECT_EQ(manifest_of(path("out2/cloak-manifest.json"))["files"]["broken.png"]["status"],
            "failed");
}

TEST_F(Cli, ANameAsLongAsTheFilesystemAllowsIsWrittenAtomicallyToo) {
  // Its temporary (".NAME.cloak-HOST-PID-XXXXXX") cuts NAME short rather than fail.
  const std::string name = std::string(251, 'n') + ".png";
  fs::create_directory(path("in"));
  write("in/" + name, make_test_image(40, 32, 3, false, 8));
  CliRun r = run("batch in -o out --preset fast");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_image(path("out/" + name)).width, 40);
}

TEST_F(Cli, TwoBatchesIntoOneFolderCannotRunAtOnce) {
  fs::create_directories(path("in"));
  for (int i = 0; i < 5; ++i)
    write("in/p" + std::to_string(i) + ".png", make_test_image(96, 96, 3, false, 8));
  pid_t first = spawn_cli(dir_, {"batch", "in", "-o", "out", "--preset", "fast"});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(path("out/cloak-manifest.json")) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CliRun second = run("batch in -o out --resume --preset fast");
  int status = 0;
  waitpid(first, &status, 0);
  EXPECT_EQ(second.code, 1) << second.output;
  EXPECT_NE(second.output.find("out: another cloak batch is working in this folder (cloak on "),
            std::string::npos)
      << second.output;
  EXPECT_NE(second.output.find("(pid " + std::to_string(first) + ", since "), std::string::npos)
      << second.output;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const auto final_manifest = manifest_of(path("out/cloak-manifest.json"));
  for (const auto& [key, e] : final_manifest["files"].items())
    EXPECT_EQ(e["status"], "done") << key;
  CliRun again = run("batch in -o out --resume --preset fast");
  EXPECT_NE(again.output.find("0 protected, 5 already done"), std::string::npos) << again.output;
}

TEST_F(Cli, ModelsFetchRepairsADamagedFileAndReportsNetworkErrorsInOneLine) {
  // A stand-in curl: serves the upstream files from ../shared, or fails as offline curl does.
  fs::create_directories(path("bin"));
  const std::string fake =
      "#!/bin/sh\n"
      "while [ $# -gt 1 ]; do [ \"$1\" = -o ] && dest=$2; shift; done\n"
      "[ -n \"$OFFLINE\" ] && { echo 'curl: (6) Could not resolve host: "
      "raw.githubusercontent.com' >&2; exit 6; }\n"
      "cp \"" +
      models_dir().string() + "/$(basename \"$1\")\" \"$dest\"\n";
  write_bytes(path("bin/curl"), std::vector<std::uint8_t>(fake.begin(), fake.end()));
  fs::permissions(path("bin/curl"), fs::perms::owner_all);
  fs::create_directories(path("models"));
  for (const char* f :
       {"taef2_encoder.safetensors", "taesana_encoder.safetensors", "taef2_decoder.safetensors"})
    fs::copy_file(models_dir() / f, path(std::string("models/") + f));
  auto damaged = read_file(path("models/taef2_encoder.safetensors"));
  damaged[5000] ^= 0x40;
  fs::remove(path("models/taef2_encoder.safetensors"));
  write_bytes(path("models/taef2_encoder.safetensors"), damaged);
  const std::string env = "PATH='" + path("bin").string() + "':$PATH ";
  CliRun offline = run("--models models models fetch", env + "OFFLINE=1 ");
  EXPECT_EQ(offline.code, 1) << offline.output;
  const auto error_at = offline.output.find("cloak: ");
  ASSERT_NE(error_at, std::string::npos) << offline.output;
  EXPECT_EQ(offline.output.find('\n', error_at), offline.output.size() - 1) << offline.output;
  EXPECT_NE(offline.output.find("cannot download https://raw.githubusercontent.com/"),
            std::string::npos);
  EXPECT_NE(offline.output.find(": Could not resolve host: raw.githubusercontent.com (check"),
            std::string::npos)
      << offline.output;
  EXPECT_EQ(offline.output.find("curl: (6)"), std::string::npos) << offline.output;
  CliRun fetch = run("--models models models fetch", env);
  EXPECT_EQ(fetch.code, 0) << fetch.output;
  EXPECT_NE(fetch.output.find("taef2_encoder    repaired:"), std::string::npos) << fetch.output;
  EXPECT_FALSE(fs::exists(path("models/taef2_encoder.safetensors")));
  EXPECT_EQ(run("--models models models verify").code, 0);
  write("ok.png", make_test_image(48, 48, 3, false, 8));
  EXPECT_EQ(run("--models models protect ok.png --preset fast").code, 0);
}

TEST_F(Cli, ShardsPartitionTheFilesExactly) {
  fs::create_directory(path("in"));
  for (int i = 0; i < 12; ++i)
    write("in/f" + std::to_string(i) + ".png", make_test_image(16, 16, 3, false, 8));
  std::multiset<std::string> seen;
  for (int k = 0; k < 3; ++k) {
    CliRun r = run("batch in -o out --dry-run --shard " + std::to_string(k) + "/3");
    ASSERT_EQ(r.code, 0) << r.output;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) seen.insert(line);
  }
  EXPECT_EQ(seen.size(), 12u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 12u);
  CliRun bad = run("batch in -o out --shard 3/3");
  EXPECT_EQ(bad.code, 2);
}

// Paths as an artist's archive holds them: dated and client folders, camera and scan names.
std::vector<std::string> archive_paths(int n) {
  const char* folders[] = {"2019/commissions", "2019/personal", "2020/commissions/client-a",
                           "2020/studies",     "2021/Sketches", "2021/finals",
                           "portfolio",        "wip/2022-03",   "wip/2022-04",
                           "archive/scans"};
  const char* names[] = {"IMG_%04d.png", "sketch-%03d.jpg", "Final_v%d.png", "scan%05d.tif",
                         "%d.webp"};
  std::vector<std::string> paths;
  for (int i = 0; i < n; ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), names[i % 5], i * 7 % 997);
    paths.push_back(std::string(folders[i % 10]) + "/" + name);
  }
  return paths;
}

TEST_F(Cli, ShardsAreBalancedAndEveryCharacterOfAPathCounts) {
  // A hash split is binomial: for 1000 paths the standard deviation is at most 16 images; each
  // shard must hold its share within 4% of the batch.
  const auto paths = archive_paths(1000);
  for (std::uint64_t n : {2, 3, 4, 8, 16}) {
    std::vector<int> count(n);
    for (const auto& p : paths) ++count[shard_of(p, n)];
    for (std::uint64_t k = 0; k < n; ++k)
      EXPECT_NEAR(count[k], 1000.0 / n, 40) << "shard " << k << " of " << n;
  }
  // FNV-1a alone, modulo a power of two, never separates names that differ only in a letter's
  // case (the bits above the modulus): every such pair shared a shard. Mixed, about half do.
  int together = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string name = "ketch-" + std::to_string(i) + ".png";
    together += shard_of("S" + name, 2) == shard_of("s" + name, 2);
  }
  EXPECT_GT(together, 70);
  EXPECT_LT(together, 130);
}

std::map<std::string, int> dry_run_shards(const std::function<CliRun(const std::string&)>& run,
                                          int n) {
  std::map<std::string, int> shard_of_file;
  for (int k = 0; k < n; ++k) {
    CliRun r =
        run("batch in -o out -r --dry-run --shard " + std::to_string(k) + "/" + std::to_string(n));
    EXPECT_EQ(r.code, 0) << r.output;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);)
      EXPECT_TRUE(shard_of_file.emplace(line.substr(0, line.find(" -> ")), k).second) << line;
  }
  return shard_of_file;
}

TEST_F(Cli, ShardsSplitFoldersAndKeepEachFileWhereItWasAsTheBatchGrows) {
  // The case that put a folder in one shard: a0..a5, half of them in sub/.
  fs::create_directories(path("in/sub"));
  for (int i = 0; i < 6; ++i)
    write_bytes(path("in/" + std::string(i < 3 ? "" : "sub/") + "a" + std::to_string(i) + ".png"),
                {});
  const auto runner = [this](const std::string& args) { return run(args); };
  const auto before = dry_run_shards(runner, 2);
  ASSERT_EQ(before.size(), 6u);
  std::set<int> used;
  for (const auto& [file, k] : before) {
    used.insert(k);
    EXPECT_EQ(static_cast<std::uint64_t>(k), shard_of(fs::path(file).lexically_relative("in"), 2))
        << file;
  }
  EXPECT_EQ(used.size(), 2u);
  for (int i = 6; i < 30; ++i) write_bytes(path("in/sub/b" + std::to_string(i) + ".png"), {});
  const auto after = dry_run_shards(runner, 2);
  EXPECT_EQ(after.size(), 30u);
  for (const auto& [file, k] : before) EXPECT_EQ(after.at(file), k) << file;
}

TEST_F(Cli, BatchStatusCountsEveryShardNamesTheFailuresAndChangesNothing) {
  fs::create_directories(path("in/sub"));
  for (int i = 0; i < 6; ++i)
    write("in/" + std::string(i < 3 ? "" : "sub/") + "a" + std::to_string(i) + ".png",
          make_test_image(40 + 4 * i, 32, 3, false, 8));
  auto png = encode_image(make_test_image(40, 32, 3, false, 8), "bad.png", 90);
  png.resize(png.size() / 2);
  write_bytes(path("in/bad.png"), png);
  const int bad_shard = static_cast<int>(shard_of("bad.png", 3));
  const auto shard_run = [&](int k) {
    return run("batch in -o out -r --preset fast --shard " + std::to_string(k) + "/3");
  };
  CliRun first = shard_run(bad_shard);
  EXPECT_EQ(first.code, 3) << first.output;
  const auto manifest = path("out/cloak-manifest." + std::to_string(bad_shard) + "-of-3.json");
  const auto manifest_bytes = read_file(manifest);

  CliRun partial = run("batch status out");
  EXPECT_EQ(partial.code, 1) << partial.output;  // some still pending
  EXPECT_NE(partial.output.find("out: 7 images in 3 shards: "), std::string::npos)
      << partial.output;
  EXPECT_NE(partial.output.find("not started, "), std::string::npos) << partial.output;
  EXPECT_NE(partial.output.find("failed:\n  in/bad.png: "), std::string::npos) << partial.output;
  EXPECT_EQ(read_file(manifest), manifest_bytes);

  for (int k = 0; k < 3; ++k) {
    if (k == bad_shard) continue;
    EXPECT_EQ(shard_run(k).code, 0);
  }
  CliRun all = run("batch status out --json");
  EXPECT_EQ(all.code, 3) << all.output;  // all tried, one failed
  const auto j = nlohmann::json::parse(all.output);
  EXPECT_EQ(j["images"]["done"], 6);
  EXPECT_EQ(j["images"]["failed"], 1);
  EXPECT_EQ(j["images"]["pending"], 0);
  EXPECT_EQ(j["images"]["running"], 0);
  ASSERT_EQ(j["failed"].size(), 1u);
  EXPECT_EQ(j["failed"][0]["image"], "bad.png");
  EXPECT_EQ(j["failed"][0]["error"].get<std::string>().rfind("in/bad.png: ", 0), 0u);
  double megapixels = 0;
  for (int i = 0; i < 6; ++i) megapixels += (40 + 4 * i) * 32 / 1e6;
  EXPECT_NEAR(j["megapixels"].get<double>(), megapixels, 1e-9);
  EXPECT_GT(j["mean_psnr"].get<double>(), 20);
  EXPECT_GT(j["mean_shift_jpeg75"].get<double>(), 0);
  EXPECT_EQ(j["shards"].size(), 3u);
  int per_shard = 0;
  for (const auto& shard : j["shards"]) per_shard += shard["images"]["done"].get<int>();
  EXPECT_EQ(per_shard, 6);
  EXPECT_EQ(read_file(manifest), manifest_bytes);

  // Mended, the failed image is protected on resume, and the batch is done.
  fs::remove(path("in/bad.png"));
  write("in/bad.png", make_test_image(40, 32, 3, false, 8));
  CliRun mended =
      run("batch in -o out -r --preset fast --resume --shard " + std::to_string(bad_shard) + "/3");
  EXPECT_EQ(mended.code, 0) << mended.output;
  CliRun done = run("batch status out");
  EXPECT_EQ(done.code, 0) << done.output;
  EXPECT_NE(done.output.find("out: 7 images in 3 shards: 7 done\n"), std::string::npos)
      << done.output;
  CliRun none = run("batch status in");  // no batch there, or a mistyped folder: not "running"
  EXPECT_EQ(none.code, 6) << none.output;
  EXPECT_EQ(none.output, "cloak: in: holds no cloak batch (no cloak-manifest*.json)\n");
  CliRun mistyped = run("batch status ou");
  EXPECT_EQ(mistyped.code, 6) << mistyped.output;
  EXPECT_EQ(mistyped.output, "cloak: ou: cannot read the folder: No such file or directory\n");
}

// The start time of process `pid` as /proc/PID/stat gives it (field 22).
std::string start_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) fields >> field;
  return field;
}

TEST_F(Cli, ALockLeftByADeadProcessIsTakenOverAndAnotherMachinesIsNamed) {
  fs::create_directories(path("in"));
  write("in/p0.png", make_test_image(40, 32, 3, false, 8));
  ASSERT_EQ(run("batch in -o out --preset fast").code, 0);
  const fs::path lock = path("out/cloak-manifest.json.lock");
  EXPECT_EQ(fs::file_size(lock), 0u);  // released: no holder
  char host_name[256] = {};
  gethostname(host_name, sizeof(host_name) - 1);
  const std::string host = host_name;
  std::ifstream boot("/proc/sys/kernel/random/boot_id");
  std::string boot_id;
  std::getline(boot, boot_id);
  const auto holder = [&](const std::string& h, pid_t pid, const std::string& ticks,
                          const std::string& job) {
    const std::string text = "{\"host\":\"" + h + "\",\"boot_id\":\"" + boot_id +
                             "\",\"pid\":" + std::to_string(pid) + ",\"start_ticks\":" + ticks +
                             ",\"since\":\"2026-12-02T08:00:00Z\",\"slurm_job\":\"" + job + "\"}";
    write_bytes(lock, std::vector<std::uint8_t>(text.begin(), text.end()));
  };
  const auto added = [&](int i) {
    write("in/p" + std::to_string(i) + ".png", make_test_image(40, 32, 3, false, 8));
  };
  // This machine, a process that is gone (killed, preempted): taken over.
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  holder(host, dead, "1", "");
  EXPECT_EQ(run("batch status out").code, 0);  // not running
  added(1);
  CliRun over_dead = run("batch in -o out --preset fast --resume");
  EXPECT_EQ(over_dead.code, 0) << over_dead.output;
  EXPECT_NE(over_dead.output.find("1 protected, 1 already done"), std::string::npos)
      << over_dead.output;

  // This machine, a live process (this test) that says it holds the lock: refused.
  holder(host, getpid(), start_ticks(getpid()), "");
  added(2);
  CliRun live = run("batch in -o out --preset fast --resume");
  EXPECT_EQ(live.code, 1) << live.output;
  EXPECT_NE(live.output.find("out: another cloak batch is working in this folder (cloak on " +
                             host + " (pid " + std::to_string(getpid()) + ", since "),
            std::string::npos)
      << live.output;
  // The same PID started at another time is another process: taken over.
  holder(host, getpid(), "1", "");
  EXPECT_EQ(run("batch in -o out --preset fast --resume").code, 0);
  // A damaged record (a PID that is not a number) says nothing: flock alone guards the lock.
  const std::string damaged = R"({"host":"node-7","pid":"x"})";
  write_bytes(lock, {damaged.begin(), damaged.end()});
  CliRun over_damaged = run("batch in -o out --preset fast --resume");
  EXPECT_EQ(over_damaged.code, 0) << over_damaged.output;
  EXPECT_NE(over_damaged.output.find("0 protected, 3 already done"), std::string::npos)
      << over_damaged.output;

  // Another machine sharing the folder: it cannot be checked, so it is named, never overridden,
  // unless this is the same Slurm job, requeued.
  holder("node-7", 4242, "99", "77");
  CliRun status = run("batch status out");
  EXPECT_EQ(status.code, 0) << status.output;  // every image it knows of is done
  EXPECT_NE(status.output.find("running, cloak on node-7 (pid 4242, since 2026-12-02T08:00:00Z, "
                               "Slurm job 77)"),
            std::string::npos)
      << status.output;
  added(3);
  CliRun elsewhere = run("batch in -o out --preset fast --resume");
  EXPECT_EQ(elsewhere.code, 1) << elsewhere.output;
  EXPECT_NE(elsewhere.output.find("cloak: out/cloak-manifest.json.lock: held by cloak on node-7 "
                                  "(pid 4242, since 2026-12-02T08:00:00Z, Slurm job 77), which "
                                  "cannot be checked from here; if that run is over, delete this "
                                  "lock file and run again\n"),
            std::string::npos)
      << elsewhere.output;
  EXPECT_EQ(run("batch in -o out --preset fast --resume", "SLURM_JOB_ID=78 ").code, 1);
  CliRun requeued = run("batch in -o out --preset fast --resume", "SLURM_JOB_ID=77 ");
  EXPECT_EQ(requeued.code, 0) << requeued.output;
  EXPECT_NE(requeued.output.find("1 protected, 3 already done"), std::string::npos)
      << requeued.output;
  EXPECT_EQ(fs::file_size(lock), 0u);
}

TEST_F(Cli, ALinkOrAnythingButAPlainFileAtTheBatchsOwnFilesIsRefusedAndNothingOutsideIsWritten) {
  fs::create_directories(path("in"));
  write("in/p0.png", make_test_image(40, 32, 3, false, 8));
  fs::create_directories(path("art"));
  const std::string text = "years of notes";
  write_bytes(path("art/precious.txt"), {text.begin(), text.end()});
  // A link planted where the lock goes (a neighbour on a shared folder can): refused, the file
  // it points at untouched.
  fs::create_directories(path("out"));
  fs::create_symlink("../art/precious.txt", path("out/cloak-manifest.json.lock"));
  CliRun link = run("batch in -o out --preset fast");
  EXPECT_EQ(link.code, 1) << link.output;
  EXPECT_EQ(link.output,
            "cloak: out/cloak-manifest.json.lock: cannot open the batch lock file: it is a "
            "symbolic link, and Cloak follows none in its output folder (remove it)\n");
  EXPECT_EQ(read_file(path("art/precious.txt")),
            std::vector<std::uint8_t>(text.begin(), text.end()));
  // A hard link to it, a folder and a FIFO there: each refused, saying why.
  fs::remove(path("out/cloak-manifest.json.lock"));
  fs::create_hard_link(path("art/precious.txt"), path("out/cloak-manifest.json.lock"));
  CliRun hard = run("batch in -o out --preset fast");
  EXPECT_EQ(hard.code, 1) << hard.output;
  EXPECT_NE(hard.output.find("it has another name too (a hard link; remove it)"), std::string::npos)
      << hard.output;
  EXPECT_EQ(read_file(path("art/precious.txt")),
            std::vector<std::uint8_t>(text.begin(), text.end()));
  fs::remove(path("out/cloak-manifest.json.lock"));
  fs::create_directory(path("out/cloak-manifest.json.lock"));
  CliRun folder = run("batch in -o out --preset fast");
  EXPECT_EQ(folder.code, 1) << folder.output;
  EXPECT_NE(folder.output.find("cloak-manifest.json.lock: cannot open the batch lock file: it is "
                               "a folder (remove it)"),
            std::string::npos)
      << folder.output;
  fs::remove(path("out/cloak-manifest.json.lock"));
  ASSERT_EQ(mkfifo(path("out/cloak-manifest.json.journal").c_str(), 0644), 0);
  CliRun fifo = run("batch in -o out --preset fast");
  EXPECT_EQ(fifo.code, 1) << fifo.output;
  EXPECT_NE(fifo.output.find("cloak-manifest.json.journal: cannot open the batch manifest's "
                             "journal: it is not a plain file (remove it)"),
            std::string::npos)
      << fifo.output;
  fs::remove(path("out/cloak-manifest.json.journal"));
  // A sub-folder of the output that is a link to elsewhere: its image is not written through it.
  fs::create_directories(path("in/sub"));
  write_bytes(path("in/sub/p1.png"), corrupt_png());
  fs::create_directory_symlink("../art", path("out/sub"));
  CliRun through = run("batch in -o out -r --preset fast");
  EXPECT_EQ(through.code, 3) << through.output;
  EXPECT_NE(through.output.find("cloak: out/sub: leads outside the output folder through a link; "
                                "Cloak writes nothing outside it (remove the link)\n"),
            std::string::npos)
      << through.output;
  EXPECT_EQ(std::distance(fs::directory_iterator(path("art")), fs::directory_iterator()), 1);
  // A folder called status is protected when named as a path, and the bare word says why.
  fs::create_directories(path("status"));
  CliRun word = run("batch status -o out2");
  EXPECT_EQ(word.code, 2) << word.output;
  EXPECT_EQ(word.output,
            "cloak: status: is both a folder here and the status command; to protect the folder, "
            "write it as ./status\n");
}

TEST_F(Cli, ShardingHappensOnlyWhenAskedAndAutoTakesTheTasksOwnIndex) {
  fs::create_directory(path("in"));
  for (int i = 0; i < 12; ++i) write_bytes(path("in/f" + std::to_string(i) + ".png"), {});
  const auto lines = [](const CliRun& r) {
    return static_cast<int>(std::count(r.output.begin(), r.output.end(), '\n'));
  };
  // Inside an array task, a plain batch is the whole batch.
  const std::string task = "SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_COUNT=3 ";
  CliRun plain = run("batch in -o out --dry-run", task);
  EXPECT_EQ(plain.code, 0) << plain.output;
  EXPECT_EQ(lines(plain), 12) << plain.output;
  // auto/N takes the task's index as it is: task 3 resubmitted alone is shard 3, not 0.
  CliRun third = run("batch in -o out --dry-run --shard auto/4",
                     "SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_MIN=3 SLURM_ARRAY_TASK_COUNT=1 ");
  CliRun explicit_third = run("batch in -o out --dry-run --shard 3/4");
  EXPECT_EQ(third.code, 0) << third.output;
  EXPECT_EQ(third.output, explicit_third.output);
  CliRun k8s = run("batch in -o out --dry-run --shard auto/4", "JOB_COMPLETION_INDEX=3 ");
  EXPECT_EQ(k8s.output, explicit_third.output);
  // An index outside 0..N-1 is refused in one line, naming the variable.
  CliRun outside = run("batch in -o out --dry-run --shard auto/3",
                       "SLURM_ARRAY_TASK_ID=4 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_COUNT=3 ");
  EXPECT_EQ(outside.code, 2) << outside.output;
  EXPECT_EQ(outside.output,
            "cloak: --shard auto/3: SLURM_ARRAY_TASK_ID is 4, not a shard in 0..2 (number the "
            "tasks 0 to 2)\n");
  for (const char* bad : {"1x/4", "1/4x", "-1/4", "+1/4", " 1/4", "1/0", "4/4", "1/", "/4", "1",
                          "auto/0", "99999999999999999999/4"}) {
    CliRun r = run(std::string("batch in -o out --dry-run --shard '") + bad + "'");
    EXPECT_EQ(r.code, 2) << bad << ": " << r.output;
    EXPECT_EQ(r.output.rfind(std::string("cloak: --shard ") + bad + ": ", 0), 0u) << r.output;
  }
}

TEST_F(Cli, AManifestKnowsItsBatchAndAnotherIsRefusedSayingWhatDiffers) {
  fs::create_directories(path("a"));
  fs::create_directories(path("b"));
  write("a/cover.png", make_test_image(40, 32, 3, false, 8));
  write("b/cover.png", make_test_image(44, 32, 3, false, 8));
  for (int k = 0; k < 2; ++k)
    ASSERT_EQ(run("batch a -o out --preset fast --strength high --shard " + std::to_string(k) +
                  "/2 --resume")
                  .code,
              0);
  const auto protected_cover = read_file(path("out/cover.png"));
  const auto refused = [&](const std::string& args, const std::string& why) {
    CliRun r = run(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
    EXPECT_EQ(r.output, "cloak: out: holds another batch: " + why +
                            ". Choose a new output folder, or pass --overwrite to redo it with "
                            "this run's\n")
        << args;
    EXPECT_EQ(read_file(path("out/cover.png")), protected_cover) << args;
  };
  // Another folder's batch, resumed into this one by mistake.
  refused("batch b -o out --preset fast --strength high --shard 0/2 --resume",
          "it protects the folder " + path("a").string() + ", this run the folder " +
              path("b").string());
  // A resubmission that forgot --strength high, or asks for three shards.
  refused("batch a -o out --preset fast --shard 1/2 --resume",
          "its settings differ (strength \"high\" there, \"medium\" here)");
  refused("batch a -o out --preset fast --strength high --shard 2/3 --resume",
          "it is split in 2 shards, this run in 3 shards");
  refused("batch a -o out --preset fast --strength high --resume",
          "it is split in 2 shards, this run in one piece");
  // The same folder however it is written.
  for (const char* same : {"a/", "./a", "a/../a"})
    EXPECT_EQ(run(std::string("batch ") + same +
                  " -o out --preset fast --strength high --shard 0/2 --resume")
                  .code,
              0)
        << same;
  CliRun status = run("batch status out");
  EXPECT_EQ(status.code, 0) << status.output;
  EXPECT_NE(status.output.find("out: 1 images in 2 shards: 1 done\n"), std::string::npos)
      << status.output;
  // On purpose: the old batch's manifests go, and this one redoes its images.
  CliRun redo = run("batch a -o out --preset fast --overwrite");
  EXPECT_EQ(redo.code, 0) << redo.output;
  EXPECT_NE(redo.output.find("1 protected, 0 already done"), std::string::npos) << redo.output;
  EXPECT_FALSE(fs::exists(path("out/cloak-manifest.0-of-2.json")));
  EXPECT_NE(read_file(path("out/cover.png")), protected_cover);
  EXPECT_EQ(manifest_of(path("out/cloak-manifest.json"))["batch"]["settings"]["strength"],
            "medium");
  EXPECT_EQ(run("batch status out").code, 0);
}

TEST_F(Cli, KeysStayWhenAListGrowsAndAnEntryOutsideItsFolderFailsByName) {
  fs::create_directories(path("t11/arch"));
  fs::create_directories(path("t12"));
  write_bytes(path("t11/arch/a.png"), corrupt_png());
  write_bytes(path("t11/b.png"), corrupt_png());
  write_bytes(path("t12/c.png"), corrupt_png());
  const std::string list =
      path("t11/arch/a.png").string() + "\n" + path("t11/b.png").string() + "\n";
  write_bytes(path("t11/l.txt"), {list.begin(), list.end()});
  CliRun first = run("batch t11/l.txt -o out --preset fast");
  EXPECT_EQ(first.code, 3) << first.output;
  const std::string grown = list + path("t12/c.png").string() + "\n";
  write_bytes(path("t11/l.txt"), {grown.begin(), grown.end()});
  CliRun dry = run("batch t11/l.txt -o out --preset fast --dry-run");
  EXPECT_NE(dry.output.find("t11/arch/a.png -> out/arch/a.png\n"), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("t11/b.png -> out/b.png\n"), std::string::npos) << dry.output;
  CliRun second = run("batch t11/l.txt -o out --preset fast --resume");
  EXPECT_EQ(second.code, 3) << second.output;
  EXPECT_NE(second.output.find("cloak: t12/c.png: lies outside " + path("t11").string() +
                               ", the folder this batch's names are relative to (the list gained "
                               "it after the batch began); protect it in a batch of its own\n"),
            std::string::npos)
      << second.output;
  const auto keys = manifest_of(path("out/cloak-manifest.json"))["files"];
  EXPECT_TRUE(keys.contains("arch/a.png") && keys.contains("b.png")) << keys.dump();
  EXPECT_EQ(keys.size(), 3u) << keys.dump();
}

TEST_F(Cli, StatusCountsTheSourcesAsTheyAreNowAndSaysDoneOnlyWhenEveryImageIs) {
  fs::create_directories(path("in"));
  write("in/good.png", make_test_image(40, 32, 3, false, 8));
  write_bytes(path("in/bad.png"), corrupt_png());
  EXPECT_EQ(run("batch in -o out --preset fast").code, 3);
  EXPECT_EQ(run("batch status out").code, 3);
  // Files added since the shard ran are pending and named.
  write_bytes(path("in/new.png"), corrupt_png());
  CliRun added = run("batch status out");
  EXPECT_EQ(added.code, 1) << added.output;
  EXPECT_NE(added.output.find("out: 3 images in 1 shard: 1 done, 1 failed, 1 pending\n"),
            std::string::npos)
      << added.output;
  EXPECT_NE(added.output.find("new since their shard ran (pending):\n  new.png\n"),
            std::string::npos)
      << added.output;
  // The failed file and the new one deleted: what is left is done.
  fs::remove(path("in/bad.png"));
  fs::remove(path("in/new.png"));
  CliRun gone = run("batch status out");
  EXPECT_EQ(gone.code, 0) << gone.output;
  EXPECT_NE(gone.output.find("out: 1 images in 1 shard: 1 done\n"), std::string::npos)
      << gone.output;
  EXPECT_NE(gone.output.find("gone from the sources (not counted):\n  bad.png\n"),
            std::string::npos)
      << gone.output;
  EXPECT_EQ(run("batch in -o out --preset fast --resume").code, 0);
  // Renamed: pending under its new name, and said so.
  fs::rename(path("in/good.png"), path("in/cover.png"));
  CliRun renamed = run("batch status out --json");
  EXPECT_EQ(renamed.code, 1) << renamed.output;
  const auto j = nlohmann::json::parse(renamed.output);
  EXPECT_FALSE(j["done"].get<bool>());
  EXPECT_EQ(j["images"]["pending"], 1);
  EXPECT_EQ(j["renamed"], nlohmann::json::parse(R"([{"was":"good.png","now":"cover.png"}])"));
}

TEST_F(Cli, AnyFileNameIsProtectedAndNamedAndSymlinkedFoldersAreFollowedOnce) {
  fs::create_directories(path("in"));
  fs::create_directories(path("elsewhere/deeper"));
  write("in/caf\xe9.png", make_test_image(40, 32, 3, false, 8));
  write_bytes(path("in/bad\xe9.png"), corrupt_png());
  write_bytes(path("elsewhere/x.png"), corrupt_png());
  fs::create_directory_symlink("../elsewhere", path("in/linked"));
  fs::create_directory_symlink("..", path("elsewhere/deeper/up"));  // a loop through the link
  fs::create_directory_symlink(".", path("in/self"));               // and one inside
  CliRun r = run("batch in -o out -r --preset fast");
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_TRUE(fs::exists(path("out/caf\xe9.png")));
  EXPECT_NE(r.output.find("cloak: in/bad\\xE9.png: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cloak: in/linked/x.png: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 protected, 0 already done, 2 failed"), std::string::npos) << r.output;
  // The manifest is valid JSON (strictly: no invalid UTF-8) and keys the names as shown.
  const auto bytes = read_file(path("out/cloak-manifest.json"));
  const auto m = nlohmann::json::parse(bytes.begin(), bytes.end());
  EXPECT_EQ(m["files"]["caf\\xE9.png"]["status"], "done");
  EXPECT_EQ(m["files"]["linked/x.png"]["status"], "failed");
  EXPECT_EQ(m["files"].size(), 3u) << m.dump();
  CliRun status = run("batch status out");
  EXPECT_EQ(status.code, 3) << status.output;
  EXPECT_NE(status.output.find("  in/bad\\xE9.png: "), std::string::npos) << status.output;
  CliRun again = run("batch in -o out -r --preset fast --resume");
  EXPECT_NE(again.output.find("0 protected, 1 already done, 2 failed"), std::string::npos)
      << again.output;
}

TEST_F(Cli, AFullDiskStopsTheRunWithItsOwnExitCode) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root (CI runs as root)";
  fs::create_directories(path("in"));
  fs::create_directories(path("small"));
  for (int i = 0; i < 3; ++i)
    write("in/p" + std::to_string(i) + ".png", make_test_image(64, 64, 3, false, 8));
  ASSERT_EQ(run_shell("mount -t tmpfs -o size=16k tmpfs '" + path("small").string() + "'").code, 0);
  CliRun full = run("batch in -o small --preset fast");
  CliRun status = run("batch status small");
  run_shell("umount '" + path("small").string() + "'");
  EXPECT_EQ(full.code, 5) << full.output;
  EXPECT_NE(full.output.find(": the disk is full (No space left on device); free some space, then "
                             "run again\n"),
            std::string::npos)
      << full.output;
  EXPECT_EQ(full.output.find("failed"), std::string::npos) << full.output;  // no image blamed
  EXPECT_EQ(status.code, 1) << status.output;  // not done, nothing failed
  EXPECT_NE(status.output.find("interrupted, run it again with --resume"), std::string::npos)
      << status.output;
}

TEST_F(Cli, ThreadsFollowTheCoresTheSchedulerGives) {
  EXPECT_EQ(cpus_from_cgroup_quota("200000 100000"), 2);
  EXPECT_EQ(cpus_from_cgroup_quota("150000 100000"), 2);  // 1.5 CPUs: two threads, one half-idle
  EXPECT_EQ(cpus_from_cgroup_quota("50000 100000"), 1);
  EXPECT_EQ(cpus_from_cgroup_quota("max 100000"), 0);
  EXPECT_EQ(cpus_from_cgroup_quota(""), 0);
  CliRun slurm = run("--version", "SLURM_CPUS_PER_TASK=1 ");
  EXPECT_NE(slurm.output.find("\nthreads 1\n"), std::string::npos) << slurm.output;
  CliRun pinned = run_shell("cd '" + dir_.string() + "' && taskset -c 0 " CLOAK_CLI " --version");
  EXPECT_NE(pinned.output.find("\nthreads 1\n"), std::string::npos) << pinned.output;
}

TEST_F(Cli, OpenMpWorkersSpinBrieflyUnlessTheUserSaysOtherwise) {
  // libgomp prints its settings as it loads when OMP_DISPLAY_ENV is verbose: the program restarts
  // itself with a short spin (bench/RESULTS.md, load), and keeps the user's own choice. (The
  // suite runs with that spin already set, tests/CMakeLists.txt: here it is unset.)
  CliRun d = run("--version", "env -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose ");
  EXPECT_EQ(d.code, 0);
  EXPECT_NE(d.output.find("GOMP_SPINCOUNT = '1000'"), std::string::npos) << d.output;
  CliRun own = run("--version", "OMP_DISPLAY_ENV=verbose GOMP_SPINCOUNT=5000 ");
  EXPECT_EQ(own.code, 0);
  EXPECT_NE(own.output.find("GOMP_SPINCOUNT = '5000'"), std::string::npos) << own.output;
  EXPECT_EQ(own.output.find("GOMP_SPINCOUNT = '1000'"), std::string::npos) << own.output;
}

TEST_F(Cli, VersionAndHelpTellWhatThereIs) {
  CliRun v = run("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_NE(v.output.find("libtorch"), std::string::npos);
  EXPECT_NE(v.output.find("threads"), std::string::npos);
  CliRun h = run("protect --help");
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.output.find("Examples"), std::string::npos);
  CliRun m = run("models list");
  EXPECT_EQ(m.code, 0);
  EXPECT_NE(m.output.find("taesana_encoder"), std::string::npos);
  EXPECT_EQ(run("--precision fp32 models list").code, 0);
  EXPECT_EQ(run("--precision half models list").code, 2);
}

// What plug-ins read: the settings listing is the library's tables, and every name it lists is
// one the protect command takes; --progress-json reports the run from start to end.
TEST_F(Cli, SettingsListTheLibrarysChoicesAndProgressLinesFollowTheRun) {
  CliRun r = run("settings --json");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j["modes"].size(), std::size(kModes));
  ASSERT_EQ(j["strengths"].size(), std::size(kStrengths));
  ASSERT_EQ(j["presets"].size(), std::size(kPresets));
  for (std::size_t i = 0; i < std::size(kModes); ++i) {
    EXPECT_EQ(j["modes"][i]["name"], kModes[i].name);
    EXPECT_EQ(j["modes"][i]["needs_target"], kModes[i].value == Mode::Poison);
  }
  for (std::size_t i = 0; i < std::size(kStrengths); ++i) {
    EXPECT_EQ(j["strengths"][i]["name"], kStrengths[i].name);
    EXPECT_EQ(j["strengths"][i]["jpeg_quality"], kStrengths[i].budget.jpeg_quality);
    EXPECT_EQ(j["strengths"][i]["min_shift_jpeg75"], kStrengths[i].budget.min_shift_jpeg75);
    EXPECT_EQ(j["strengths"][i]["min_floor_multiple"], kStrengths[i].budget.min_floor_multiple);
  }
  for (std::size_t i = 0; i < std::size(kPresets); ++i)
    EXPECT_EQ(j["presets"][i]["sweeps"], kPresets[i].sweeps);
  ASSERT_EQ(j["invisible_at"].size(), std::size(kInvisibleAt));
  for (std::size_t i = 0; i < std::size(kInvisibleAt); ++i)
    EXPECT_EQ(j["invisible_at"][i]["name"], kInvisibleAt[i].name);
  EXPECT_EQ(j["decoys"].get<std::vector<std::string>>(), decoy_names());
  const ProtectSettings defaults;
  EXPECT_EQ(j["defaults"]["mode"], to_string(defaults.mode));
  EXPECT_EQ(j["defaults"]["strength"], to_string(defaults.strength));
  EXPECT_EQ(j["defaults"]["preset"], to_string(defaults.preset));
  EXPECT_EQ(j["defaults"]["invisible_at"], to_string(defaults.invisible_at));
  EXPECT_EQ(j["defaults"]["decoy"], defaults.decoy);
  CliRun human = run("settings");
  EXPECT_EQ(human.code, 0);
  EXPECT_NE(human.output.find(describe(defaults.strength) + "  [default]"), std::string::npos)
      << human.output;

  write("art.png", make_test_image(48, 40, 3, false, 8));
  for (std::size_t i = 0; i < 3; ++i) {
    const std::string args = "protect art.png --dry-run --target art.png --invisible-at " +
                             j["invisible_at"][i % 2]["name"].get<std::string>() + " --mode " +
                             j["modes"][i]["name"].get<std::string>() + " --strength " +
                             j["strengths"][i]["name"].get<std::string>() + " --preset " +
                             j["presets"][i]["name"].get<std::string>() + " --decoy " +
                             j["decoys"][i].get<std::string>();
    EXPECT_EQ(run(args).code, 0) << args;
  }

  CliRun p = run("--progress-json protect art.png --preset fast -o p.png");
  ASSERT_EQ(p.code, 0) << p.output;
  std::istringstream lines(p.output);
  std::vector<double> fractions;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] != '{') continue;
    const auto l = nlohmann::json::parse(line);
    EXPECT_EQ(l["file"], "art.png");
    EXPECT_GE(l["eta_s"].get<int>(), 0);
    fractions.push_back(l["fraction"]);
  }
  ASSERT_GE(fractions.size(), 10u) << p.output;
  EXPECT_TRUE(std::is_sorted(fractions.begin(), fractions.end()));
  EXPECT_GE(fractions.front(), 0.0);
  EXPECT_DOUBLE_EQ(fractions.back(), 1.0);
  EXPECT_NE(p.output.find("p.png"), std::string::npos) << "the result line is still printed";
}

TEST_F(Cli, ServeStopsOnCtrlCWhateverClientsDoAndOpensThePageWithoutTheToken) {
  // A stand-in browser opener that records what it was given.
  fs::create_directory(path("bin"));
  std::ofstream(path("bin/xdg-open"))
      << "#!/bin/sh\nprintf '%s' \"$1\" > \"$(dirname \"$0\")/../opened.tmp\"\n"
         "mv \"$(dirname \"$0\")/../opened.tmp\" \"$(dirname \"$0\")/../opened\"\n";
  fs::permissions(path("bin/xdg-open"), fs::perms::owner_all);
  const std::string old_path = std::getenv("PATH");
  setenv("PATH", (path("bin").string() + ":" + old_path).c_str(), 1);
  setenv("XDG_RUNTIME_DIR", dir_.c_str(), 1);
  const pid_t pid = spawn_cli(dir_, {"serve", "--port", "0", "--open"}, path("url.txt"));
  setenv("PATH", old_path.c_str(), 1);
  unsetenv("XDG_RUNTIME_DIR");
  // The first line of the file `name`, once there is one (the models take a while to load).
  const auto first_line = [&](const std::string& name) {
    std::string line;
    for (int i = 0; i < 1200 && line.empty(); ++i) {
      std::ifstream in(path(name));
      if (!std::getline(in, line)) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return line;
  };
  const std::string url = first_line("url.txt");
  ASSERT_EQ(url.rfind("http://127.0.0.1:", 0), 0u) << url;
  const std::string token = url.substr(url.find("token=") + 6);
  // The opener got a page only this user can read, which leads to the address; not the token.
  const std::string opened = first_line("opened");
  EXPECT_EQ(opened.find(token), std::string::npos) << opened;
  struct stat st {};
  ASSERT_EQ(stat(opened.c_str(), &st), 0) << opened;
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto page = read_file(opened);
  EXPECT_NE(std::string(page.begin(), page.end()).find(url), std::string::npos);
  // A client that sends one byte and then nothing: Ctrl-C still stops the server at once.
  const int client = connect_local(std::stoi(url.substr(17)));
  ASSERT_GE(client, 0);
  ASSERT_EQ(::send(client, "G", 1, MSG_NOSIGNAL), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto interrupted = std::chrono::steady_clock::now();
  kill(pid, SIGINT);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0 &&
         std::chrono::steady_clock::now() - interrupted < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - interrupted).count();
  ::close(client);
  if (took >= 10) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  EXPECT_LT(took, 2.0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(fs::exists(opened)) << "the page that leads to the address is left behind";
}

}  // namespace
}  // namespace cloak::test
