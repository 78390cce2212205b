#include <torch/torch.h>
#include <zip.h>

#include "cloak/core/error.h"
#include "cloak/io/file_io.h"
#include "cloak/weights/model_store.h"
#include "cloak/weights/state_dict.h"
#include "test_support.h"

namespace cloak::test {
namespace {

namespace fs = std::filesystem;

TensorMap golden(const std::string& model) {
  auto file = models_dir() / "reference" / (model + "_golden.safetensors");
  return parse_safetensors(read_file(file), file.string());
}

void expect_matches_golden(LoadedModel& m) {
  at::set_num_threads(2);
  auto g = golden(m.spec->name);
  torch::NoGradGuard no_grad;
  for (const char* which : {"ramp", "rand"}) {
    SCOPED_TRACE(m.spec->name + " " + which);
    auto out = m.net->forward(g.at(std::string("input_") + which));
    auto want = g.at(std::string("output_") + which);
    ASSERT_EQ(out.sizes(), want.sizes());
    EXPECT_TRUE(torch::allclose(out, want, 1e-4, 1e-4))
        << "max abs diff " << (out - want).abs().max().item<float>();
  }
}

class ModelParity : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelParity, SafetensorsMatchesTheGoldenTensors) {
  auto m = load_model(model_spec(GetParam()), {models_dir()});
  EXPECT_EQ(m.file.extension(), ".safetensors");
  expect_matches_golden(m);
}

INSTANTIATE_TEST_SUITE_P(AllModels, ModelParity,
                         ::testing::Values("taef2_encoder", "taesana_encoder", "taef2_decoder"));

using ModelStore = TempDirTest;

TEST(GoldenRecipe, RandomInputIsReproducedByLibtorch) {
  torch::manual_seed(0);
  EXPECT_TRUE(
      torch::equal(torch::rand({1, 3, 128, 128}), golden("taef2_encoder").at("input_rand")));
  auto ramp = golden("taef2_encoder").at("input_ramp");
  EXPECT_FLOAT_EQ(ramp[0][2][5][7].item<float>(), ((2 * 7 + 5 * 3 + 7 * 5) % 97) / 96.0f);
}

TEST_F(ModelStore, UpstreamPthLoadsTheSameWeights) {
  for (const auto& spec : model_specs()) {
    SCOPED_TRACE(spec.name);
    fs::copy_file(models_dir() / spec.upstream.file, path(spec.upstream.file));
    auto from_pth = load_model(spec, {dir_});
    EXPECT_EQ(from_pth.file.filename(), spec.upstream.file);
    auto from_st = load_model(spec, {models_dir()});
    auto a = from_pth.net->named_parameters(), b = from_st.net->named_parameters();
    ASSERT_EQ(a.size(), b.size());
    for (auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
    expect_matches_golden(from_pth);
  }
}

TEST_F(ModelStore, TamperedWeightsAreRefused) {
  auto bytes = read_file(models_dir() / "taef2_encoder.safetensors");
  bytes[bytes.size() / 2] ^= 0x01;
  write_file_atomic(path("taef2_encoder.safetensors"), bytes, false);
  try {
    load_model(model_spec("taef2_encoder"), {dir_});
    FAIL() << "tampered file loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Model);
    EXPECT_NE(std::string(e.what()).find("SHA-256 mismatch"), std::string::npos) << e.what();
  }
}

TEST_F(ModelStore, MissingWeightsSayWhereItLookedAndHowToGetThem) {
  try {
    load_model(model_spec("taesana_encoder"), {dir_});
    FAIL();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(dir_.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("cloak models fetch"), std::string::npos) << msg;
  }
  EXPECT_THROW(model_spec("no_such_model"), Error);
}

TEST(ModelSearchPath, FollowsTheDocumentedOrder) {
  setenv("CLOAK_MODELS", "/env/models", 1);
  setenv("XDG_DATA_HOME", "/xdg", 1);
  auto dirs = model_search_path(fs::path("/explicit"));
  unsetenv("CLOAK_MODELS");
  unsetenv("XDG_DATA_HOME");
  // This test program lives in BUILD/tests; the suite runs with ../shared beside the checkout.
  const fs::path exe_dir = fs::read_symlink("/proc/self/exe").parent_path();
  ASSERT_EQ(dirs.size(), 5u);
  EXPECT_EQ(dirs[0], "/explicit");
  EXPECT_EQ(dirs[1], "/env/models");
  EXPECT_EQ(dirs[2], exe_dir.parent_path() / "share" / "cloak" / "models");
  EXPECT_EQ(fs::canonical(dirs[3]), fs::canonical(models_dir()));
  EXPECT_EQ(dirs[4], "/xdg/cloak/models");
}

TEST(Safetensors, MalformedFilesAreRefused) {
  auto with_header = [](const std::string& json, std::size_t data_bytes) {
    std::vector<std::uint8_t> b;
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(json.size() >> (8 * i)));
    for (char c : json) b.push_back(static_cast<std::uint8_t>(c));
    b.resize(b.size() + data_bytes);
    return b;
  };
  auto ok = parse_safetensors(
      with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8), "ok");
  EXPECT_EQ(ok.at("t").sizes(), torch::IntArrayRef({2}));
  EXPECT_THROW(parse_safetensors({1, 2, 3}, "short"), Error);
  auto too_long = with_header("{}", 0);
  too_long[0] = 0xff;
  EXPECT_THROW(parse_safetensors(too_long, "len"), Error);
  EXPECT_THROW(parse_safetensors(with_header("{not json", 0), "json"), Error);
  EXPECT_THROW(
      parse_safetensors(
          with_header(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8), "oob"),
      Error);
  EXPECT_THROW(
      parse_safetensors(with_header(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                        "size"),
      Error);
  EXPECT_THROW(parse_pth({'P', 'K', 0, 0}, "zip"), Error);
  // Numbers that are not whole numbers >= 0, and a shape whose size overflows.
  for (const char* header :
       {R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8.8e21]}})",
        R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}})"}) {
    SCOPED_TRACE(header);
    try {
      parse_safetensors(with_header(header, 8), "bad.safetensors");
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("bad.safetensors: "), std::string::npos) << e.what();
    }
  }
}

class PthArchive : public TempDirTest {};

TEST_F(PthArchive, AnEntryClaimingMoreThanTheArchiveCanHoldIsRefusedBeforeAllocation) {
  // A stored (uncompressed) zip with one entry, whose two size fields then claim 3.5 GB.
  int err = 0;
  zip_t* z = zip_open(path("w.pth").c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_NE(z, nullptr);
  static const char kPickle[] = "not really a pickle";
  zip_source_t* src = zip_source_buffer(z, kPickle, sizeof kPickle, 0);
  const zip_int64_t index = zip_file_add(z, "archive/data.pkl", src, 0);
  ASSERT_GE(index, 0);
  zip_set_file_compression(z, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0);
  ASSERT_EQ(zip_close(z), 0);
  auto bytes = read_file(path("w.pth"));
  auto put = [&](std::size_t at) {
    for (int i = 0; i < 4; ++i) bytes[at + static_cast<std::size_t>(i)] = i == 3 ? 0xD6 : 0;
  };
  int patched = 0;
  for (std::size_t i = 0; i + 46 <= bytes.size(); ++i) {
    if (bytes[i] != 'P' || bytes[i + 1] != 'K') continue;
    if (bytes[i + 2] == 3 && bytes[i + 3] == 4) put(i + 22), ++patched;  // local header
    if (bytes[i + 2] == 1 && bytes[i + 3] == 2) put(i + 24), ++patched;  // central directory
  }
  ASSERT_EQ(patched, 2);
  try {
    parse_pth(bytes, "w.pth");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("claims more data than the archive can hold"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace cloak::test
