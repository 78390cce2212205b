// The hostile corpus, made by code: truncations, bit flips, lying headers, tiny and huge sizes,
// several pictures in one file, CMYK, FIFOs, devices and links. Every case runs the real binary and
// asserts the exit code, a one-line message naming the file, that no stray file appeared and that
// the originals are intact.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <exiv2/exiv2.hpp>
#pragma GCC diagnostic pop
#include <sys/stat.h>
#include <unistd.h>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
#include <zlib.h>
#include <cstdio>

#include <algorithm>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <set>

#include "cloak/core/error.h"
#include "cloak/io/file_io.h"
#include "test_support.h"

namespace cloak::test {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

Bytes cut(const Bytes& b, double fraction) {
  return Bytes(b.begin(), b.begin() + static_cast<long>(static_cast<double>(b.size()) * fraction));
}

void put_be32(Bytes& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}

// A PNG whose header says w x h (CRC fixed up), with the small original's pixel data.
Bytes png_claiming(Bytes png, std::uint32_t w, std::uint32_t h) {
  put_be32(png, 16, w);
  put_be32(png, 20, h);
  put_be32(png, 29, static_cast<std::uint32_t>(crc32(0, png.data() + 12, 17)));
  return png;
}

// A JPEG whose SOF says w x h.
Bytes jpeg_claiming(Bytes jpg, int w, int h) {
  for (std::size_t i = 2; i + 9 < jpg.size(); ++i)
    if (jpg[i] == 0xFF && (jpg[i + 1] == 0xC0 || jpg[i + 1] == 0xC2)) {
      jpg[i + 5] = static_cast<std::uint8_t>(h >> 8);
      jpg[i + 6] = static_cast<std::uint8_t>(h);
      jpg[i + 7] = static_cast<std::uint8_t>(w >> 8);
      jpg[i + 8] = static_cast<std::uint8_t>(w);
      break;
    }
  return jpg;
}

// An animated PNG: acTL before IDAT (one frame's worth of data is enough for the check).
Bytes animated_png(const Bytes& png) {
  Bytes actl = {0, 0, 0, 8, 'a', 'c', 'T', 'L', 0, 0, 0, 2, 0, 0, 0, 0};
  Bytes crc(4);
  put_be32(crc, 0, static_cast<std::uint32_t>(crc32(0, actl.data() + 4, 12)));
  Bytes out(png.begin(), png.begin() + 33);  // signature + IHDR
  out.insert(out.end(), actl.begin(), actl.end());
  out.insert(out.end(), crc.begin(), crc.end());
  out.insert(out.end(), png.begin() + 33, png.end());
  return out;
}

void put_le(Bytes& b, std::uint32_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// A valid two-frame animated WebP built around a lossless still's VP8L bitstream.
Bytes animated_webp(const Bytes& still, int w, int h) {
  const Bytes vp8l(still.begin() + 12, still.end());  // the still's only chunk, header included
  auto chunk = [](const char* tag, const Bytes& payload) {
    Bytes c(tag, tag + 4);
    put_le(c, static_cast<std::uint32_t>(payload.size()), 4);
    c.insert(c.end(), payload.begin(), payload.end());
    if (payload.size() % 2) c.push_back(0);
    return c;
  };
  Bytes vp8x = {0x02, 0, 0, 0};  // animation flag
  put_le(vp8x, static_cast<std::uint32_t>(w - 1), 3);
  put_le(vp8x, static_cast<std::uint32_t>(h - 1), 3);
  Bytes anim;
  put_le(anim, 0, 4);  // background colour
  put_le(anim, 0, 2);  // loop forever
  Bytes anmf;
  put_le(anmf, 0, 3);
  put_le(anmf, 0, 3);
  put_le(anmf, static_cast<std::uint32_t>(w - 1), 3);
  put_le(anmf, static_cast<std::uint32_t>(h - 1), 3);
  put_le(anmf, 100, 3);  // duration
  anmf.push_back(0);
  anmf.insert(anmf.end(), vp8l.begin(), vp8l.end());
  Bytes body = {'W', 'E', 'B', 'P'};
  for (const Bytes& c :
       {chunk("VP8X", vp8x), chunk("ANIM", anim), chunk("ANMF", anmf), chunk("ANMF", anmf)})
    body.insert(body.end(), c.begin(), c.end());
  Bytes out = {'R', 'I', 'F', 'F'};
  put_le(out, static_cast<std::uint32_t>(body.size()), 4);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// A CMYK JPEG, as print workflows make them.
Bytes cmyk_jpeg(int w, int h) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* mem = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &mem, &size);
  c.image_width = static_cast<JDIMENSION>(w);
  c.image_height = static_cast<JDIMENSION>(h);
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_start_compress(&c, TRUE);
  std::vector<unsigned char> row(static_cast<std::size_t>(w) * 4);
  for (int y = 0; y < h; ++y) {
    for (std::size_t i = 0; i < row.size(); ++i) row[i] = static_cast<unsigned char>(i * 3 + y);
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  Bytes out(mem, mem + size);
  jpeg_destroy_compress(&c);
  std::free(mem);
  return out;
}

// Adds an EXIF thumbnail (here: the picture itself, as cameras and editors store it).
void add_exif_thumbnail(const fs::path& file, const Bytes& thumbnail_jpeg) {
  auto img = Exiv2::ImageFactory::open(file.string());
  img->readMetadata();
  img->exifData()["Exif.Image.Artist"] = "A. Painter";
  Exiv2::ExifThumb(img->exifData())
      .setJpegThumbnail(thumbnail_jpeg.data(), static_cast<long>(thumbnail_jpeg.size()));
  img->writeMetadata();
}

std::size_t previews_in(const fs::path& file) {
  auto img = Exiv2::ImageFactory::open(file.string());
  img->readMetadata();
  return Exiv2::PreviewManager(*img).getPreviewProperties().size();
}

std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    names.insert(e.path().lexically_relative(dir).string());
  return names;
}

class Hostile : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    write_image(make_test_image(64, 64, 3, false, 8), path("ok.png"));
    write_image(make_test_image(64, 64, 3, false, 8), path("ok.jpg"));
    write_image(make_test_image(64, 64, 3, true, 8), path("clear.png"));
    write_image(make_test_image(64, 64, 3, false, 8), path("ok.webp"));
    webp_ = read_file(path("ok.webp"));
    png_ = read_file(path("ok.png"));
    jpg_ = read_file(path("ok.jpg"));
  }
  CliRun run(const std::string& args, const std::string& prefix = "") {
    return cloak_cli(dir_, args, prefix);
  }
  // Runs `protect FILE EXTRA` and checks: exit 1, exactly one line naming `named` (FILE by
  // default) and `fragment`, no new file, every original byte-identical.
  void expect_refused(const std::string& file, const std::string& fragment,
                      const std::string& extra = "", std::string named = "") {
    if (named.empty()) named = file;
    SCOPED_TRACE(file + " " + extra);
    ++cases_;
    std::map<std::string, Bytes> before;
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.is_regular_file()) before[e.path().filename()] = read_file(e.path());
    const auto names = listing(dir_);
    CliRun r = run("protect --preset fast " + file + " " + extra, "timeout 20 ");
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_EQ(r.output.rfind("cloak: " + named + ": ", 0), 0u) << r.output;
    EXPECT_NE(r.output.find(fragment), std::string::npos) << r.output;
    EXPECT_EQ(listing(dir_), names) << "a stray file appeared";
    for (const auto& [name, bytes] : before) EXPECT_EQ(read_file(path(name)), bytes) << name;
  }
  Bytes png_, jpg_, webp_;
  int cases_ = 0;
};

TEST_F(Hostile, TruncatedFilesOfEveryFormatAreRefusedInOneLine) {
  write_image(make_test_image(64, 64, 3, false, 8), path("ok.tif"));
  write_image(make_test_image(64, 64, 3, false, 8), path("ok.bmp"));
  const std::map<std::string, Bytes> originals = {{"png", png_},
                                                  {"jpg", jpg_},
                                                  {"webp", webp_},
                                                  {"tif", read_file(path("ok.tif"))},
                                                  {"bmp", read_file(path("ok.bmp"))}};
  for (const auto& [ext, bytes] : originals)
    for (double f : {0.18, 0.5, 0.9}) {
      const std::string name = "cut" + std::to_string(static_cast<int>(f * 100)) + "." + ext;
      write_bytes(path(name), cut(bytes, f));
      expect_refused(name, "corrupt");
      fs::remove(path(name));
    }
  // A JPEG cut to 18% that carries an EXIF thumbnail (which would otherwise decode fine).
  write_bytes(path("thumb.jpg"), jpg_);
  add_exif_thumbnail(path("thumb.jpg"), jpg_);
  write_bytes(path("thumbcut.jpg"), cut(read_file(path("thumb.jpg")), 0.18));
  expect_refused("thumbcut.jpg", "corrupt");
  EXPECT_GE(cases_, 16);
}

TEST_F(Hostile, BitFlippedJpegsAreRefusedOrDecodeAtTheirOwnSize) {
  std::mt19937 rng(12);
  int refused = 0, decoded = 0;
  for (int i = 0; i < 40; ++i) {
    Bytes b = jpg_;
    std::uniform_int_distribution<std::size_t> at(2, b.size() - 3);
    b[at(rng)] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    write_bytes(path("flip.jpg"), b);
    try {
      Image img = read_image(path("flip.jpg"));
      // Whatever decodes must be the picture the header promised, not a garbage giant.
      EXPECT_LE(static_cast<long>(img.width) * img.height, 64L * 64L * 4);
      ++decoded;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Input);
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
      EXPECT_EQ(std::string(e.what()).rfind(path("flip.jpg").string(), 0), 0u) << e.what();
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_EQ(refused + decoded, 40);
}

TEST_F(Hostile, LyingHeadersAndExtremeSizesAreRefusedBeforeDecoding) {
  write_bytes(path("claims16k.png"), png_claiming(png_, 16000, 16000));
  expect_refused("claims16k.png", "16000x16000 (256.0 megapixels) is larger than the limit");
  write_bytes(path("claims16k.jpg"), jpeg_claiming(jpg_, 16000, 16000));
  expect_refused("claims16k.jpg", "256.0 megapixels");
  write_bytes(path("claims100k.png"), png_claiming(png_, 100000, 100000));
  expect_refused("claims100k.png", "larger than the limit of 16384 px a side");
  write_bytes(path("wide.jpg"), jpeg_claiming(jpg_, 8288, 64));
  expect_refused("wide.jpg", "corrupt JPEG");
  expect_refused("ok.png", "larger than the limit of 0.0 megapixels", "--max-megapixels 0.001");
  for (const auto& [w, h] : std::vector<std::pair<int, int>>{{1, 1}, {2, 2}, {8, 8}, {1, 200}}) {
    const std::string name = "tiny" + std::to_string(w) + "x" + std::to_string(h) + ".png";
    write_image(make_test_image(w, h, 3, false, 8), path(name));
    expect_refused(name, "too small to protect");
  }
}

TEST_F(Hostile, FilesHoldingSeveralPicturesOrCmykAreRefused) {
  write_bytes(path("anim.png"), animated_png(png_));
  expect_refused("anim.png", "is an animated PNG");
  write_bytes(path("anim.webp"), animated_webp(webp_, 64, 64));
  expect_refused("anim.webp", "is an animated WebP");
  std::vector<cv::Mat> pages(3, cv::Mat(48, 48, CV_8UC3, cv::Scalar(1, 2, 3)));
  ASSERT_TRUE(cv::imwrite(path("pages.tif").string(), pages));
  expect_refused("pages.tif", "is a TIFF with 3 pages");
  write_bytes(path("print.jpg"), cmyk_jpeg(48, 48));
  expect_refused("print.jpg", "CMYK JPEG is not supported");
  // The same animated WebP's frames are valid: as a still it decodes.
  write_bytes(path("still.webp"), webp_);
  EXPECT_EQ(read_image(path("still.webp")).width, 64);
}

TEST_F(Hostile, PipesDevicesFoldersAndLinksAreRefused) {
  ASSERT_EQ(mkfifo(path("fifo.png").c_str(), 0644), 0);
  expect_refused("fifo.png", "not a regular file");
  fs::create_symlink("/dev/zero", path("zero.png"));
  expect_refused("zero.png", "not a regular file");
  fs::create_symlink("/dev/urandom", path("random.jpg"));
  expect_refused("random.jpg", "not a regular file");
  fs::create_directory(path("folder.png"));
  expect_refused("folder.png", "is a folder");
  fs::create_symlink(path("ok.png"), path("link.png"));
  fs::create_hard_link(path("ok.png"), path("hard.png"));
  for (const char* out : {"link.png", "hard.png", "sub/../ok.png"}) {
    fs::create_directories(path("sub"));
    expect_refused("ok.png", "originals are never written over",
                   std::string("--overwrite -o ") + out, out);
    expect_refused("ok.png", "originals are never written over",
                   std::string("--overwrite --report ") + out, out);
  }
  // The preview's contact sheet, pointed at either image it shows.
  for (const char* args : {"preview ok.png -o hard.png --overwrite",
                           "preview clear.png ok.png -o link.png --overwrite"}) {
    CliRun r = run(args);
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_NE(r.output.find("originals are never written over"), std::string::npos) << r.output;
  }
  EXPECT_EQ(read_file(path("ok.png")), png_);
}

TEST_F(Hostile, ThumbnailsNeverCarryAnUnprotectedCopy) {
  add_exif_thumbnail(path("ok.jpg"), jpg_);
  ASSERT_GE(previews_in(path("ok.jpg")), 1u);
  for (const char* out : {"safe.jpg", "safe.png", "safe.tif"}) {
    SCOPED_TRACE(out);
    CliRun r = run(std::string("protect ok.jpg --preset fast -o ") + out);
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(previews_in(path(out)), 0u);
    auto img = Exiv2::ImageFactory::open(path(out).string());
    img->readMetadata();
    EXPECT_EQ(img->exifData()["Exif.Image.Artist"].toString(), "A. Painter") << "credits kept";
  }
}

TEST_F(Hostile, IccProfileSurvivesTheOptOutTag) {
  Image img = make_test_image(64, 64, 3, false, 8);
  img.metadata.icc = make_icc_profile();
  const std::vector<std::string> names = {"p.png", "p.jpg", "p.tif", "p.webp"};
  for (const auto& name : names) write_image(img, path(name));
  CliRun r = run("protect --preset fast p.png p.jpg p.tif p.webp");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const std::string out =
        fs::path(name).stem().string() + "-cloaked" + fs::path(name).extension().string();
    EXPECT_EQ(read_image(path(out)).metadata.icc, img.metadata.icc);
    auto meta = Exiv2::ImageFactory::open(path(out).string());
    meta->readMetadata();
    EXPECT_EQ(meta->xmpData()["Xmp.plus.DataMining"].toString(),
              "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING");
  }
}

TEST_F(Hostile, OneBadFileFailsAloneAndTheRunGoesOn) {
  write_image(make_test_image(1, 64, 3, false, 8), path("sliver.png"));
  CliRun r = run("protect sliver.png clear.png ok.png --preset fast --format jpg");
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("sliver.png: 1x64 is too small to protect"), std::string::npos);
  EXPECT_NE(r.output.find("clear-cloaked.jpg: JPEG cannot store transparency"), std::string::npos)
      << r.output;
  EXPECT_EQ(read_image(path("ok-cloaked.jpg")).width, 64);
  EXPECT_FALSE(fs::exists(path("clear-cloaked.jpg")));
  // An existing report is refused before any work, so no image is written either.
  write_bytes(path("report.json"), {'{', '}'});
  CliRun report = run("protect ok.png --preset fast --report report.json");
  EXPECT_EQ(report.code, 1) << report.output;
  EXPECT_NE(report.output.find("report.json: already exists"), std::string::npos);
  EXPECT_FALSE(fs::exists(path("ok-cloaked.png")));
}

TEST_F(Hostile, AFullDiskLeavesNoPartialFileAndTheOriginalIntact) {
  // The file-size limit makes every write past 8 KiB fail, as a full disk would.
  const Bytes before = read_file(path("ok.png"));
  CliRun r = run("protect ok.png --preset fast -o big.png", "trap '' XFSZ; ulimit -f 8; ");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("big.png: write failed: File too large"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("big.png")));
  EXPECT_EQ(read_file(path("ok.png")), before);
  for (const auto& name : listing(dir_))
    EXPECT_EQ(name.find(".cloak-"), std::string::npos) << "temporary left: " << name;
  // A file where a folder is needed, and a read-only place.
  CliRun notdir = run("protect ok.png --preset fast -o ok.png/out.png");
  EXPECT_EQ(notdir.code, 1) << notdir.output;
  EXPECT_NE(notdir.output.find("cannot write to folder"), std::string::npos) << notdir.output;
  CliRun proc = run("protect ok.png --preset fast -o /proc/out.png");
  EXPECT_EQ(proc.code, 1) << proc.output;
  EXPECT_NE(proc.output.find("/proc/out.png: cannot write to folder"), std::string::npos);
}

}  // namespace
}  // namespace cloak::test
