// End-to-end tests of the cloak binary on images the tests write themselves.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <exiv2/exiv2.hpp>
#pragma GCC diagnostic pop
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "cloak/file_io.h"
#include "test_support.h"

namespace cloak::test {
namespace {

namespace fs = std::filesystem;

class Cli : public TempDirTest {
 protected:
  void write(const std::string& name, const Image& img) { write_image(img, path(name)); }
  CliRun run(const std::string& args) { return cloak_cli(dir_, args); }
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
  EXPECT_LE(maxdiff * 255, 8.0 + 1e-3);
  auto first = read_file(path("art-cloaked.png"));
  CliRun again = run("protect art.png --preset fast --seed 3");
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.output.find("art-cloaked.png: already exists"), std::string::npos)
      << again.output;
  EXPECT_EQ(read_file(path("art-cloaked.png")), first);
  CliRun self = run("protect art.png -o art.png --overwrite --preset fast");
  EXPECT_EQ(self.code, 1);
  EXPECT_NE(self.output.find("is the input file"), std::string::npos) << self.output;
  // Same input, settings and seed: the same bytes.
  ASSERT_EQ(run("protect art.png --preset fast --seed 3 -o again.png").code, 0);
  EXPECT_EQ(read_file(path("again.png")), first);
}

TEST_F(Cli, Keeps16BitAlphaAndMetadataAndWritesTheOptOutTag) {
  write("deep.png", make_test_image(48, 40, 3, true, 16));
  {
    auto img = Exiv2::ImageFactory::open(path("deep.png").string());
    img->readMetadata();
    img->exifData()["Exif.Image.Artist"] = "A. Painter";
    img->writeMetadata();
  }
  ASSERT_EQ(run("protect deep.png --preset fast").code, 0);
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
}

TEST_F(Cli, VerifySeparatesProtectedFromUnprotected) {
  write("art.png", make_test_image(96, 96, 3, false, 8));
  write("copy.png", read_image(path("art.png")));
  ASSERT_EQ(run("protect art.png").code, 0);
  CliRun yes = run("verify art.png art-cloaked.png --json");
  EXPECT_EQ(yes.code, 0) << yes.output;
  EXPECT_TRUE(nlohmann::json::parse(yes.output)["protected"].get<bool>());
  CliRun no = run("verify art.png copy.png");
  EXPECT_EQ(no.code, 4) << no.output;
  EXPECT_NE(no.output.find("NOT protected"), std::string::npos);
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
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir_.c_str()) != 0) _exit(99);
    int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl(CLOAK_CLI, "cloak", "batch", "in", "-o", "out", "-r", nullptr);
    _exit(98);
  }
  // Kill it hard as soon as the first file is finished.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  fs::path first;
  while (first.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ifstream m(path("out/cloak-manifest.json"));
    if (!m) continue;
    try {
      auto j = nlohmann::json::parse(m);
      for (auto& [k, v] : j["files"].items())
        if (v["status"] == "done") first = path("out") / k;
    } catch (const nlohmann::json::exception&) {
      ADD_FAILURE() << "manifest was half-written";
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
}

}  // namespace
}  // namespace cloak::test
