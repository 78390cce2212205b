#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <exiv2/exiv2.hpp>
#pragma GCC diagnostic pop
#include <png.h>
#include <zlib.h>

#include <cmath>
#include <fstream>

#include "cloak/core/error.h"
#include "cloak/io/file_io.h"
#include "cloak/io/image_io.h"
#include "test_support.h"

namespace cloak::test {
namespace {

namespace fs = std::filesystem;

// Colour under fully transparent pixels is compared only when `hidden_colour_kept` (lossless WebP
// drops it, as it may: nobody can see it).
void expect_same_pixels(const Image& a, const Image& b, bool hidden_colour_kept = true) {
  ASSERT_EQ(a.width, b.width);
  ASSERT_EQ(a.height, b.height);
  ASSERT_EQ(a.color_channels, b.color_channels);
  ASSERT_EQ(a.color.size(), b.color.size());
  ASSERT_EQ(a.alpha, b.alpha);
  const std::size_t plane = static_cast<std::size_t>(a.width * a.height);
  for (std::size_t i = 0; i < a.color.size(); ++i) {
    if (!hidden_colour_kept && !a.alpha.empty() && a.alpha[i % plane] == 0.0f) continue;
    ASSERT_EQ(a.color[i], b.color[i]) << "at " << i;
  }
}

double psnr(const Image& a, const Image& b) {
  double se = 0;
  for (std::size_t i = 0; i < a.color.size(); ++i) se += std::pow(a.color[i] - b.color[i], 2);
  return 10 * std::log10(1.0 / (se / static_cast<double>(a.color.size())));
}

// Writes a PNG with libpng directly, for the variants Cloak itself never writes.
void write_png_with_libpng(const fs::path& p, int w, int h, int color_type, int depth,
                           bool interlaced, const std::vector<std::uint8_t>& rows_data,
                           const std::vector<png_color>& palette = {},
                           const std::vector<png_byte>& trns = {}) {
  FILE* f = std::fopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_init_io(png, f);
  png_set_IHDR(png, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), depth,
               color_type, interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  if (!trns.empty()) png_set_tRNS(png, info, trns.data(), static_cast<int>(trns.size()), nullptr);
  png_write_info(png, info);
  const std::size_t stride = rows_data.size() / static_cast<std::size_t>(h);
  std::vector<png_bytep> rows;
  for (int y = 0; y < h; ++y)
    rows.push_back(const_cast<png_bytep>(rows_data.data() + stride * static_cast<std::size_t>(y)));
  png_write_image(png, rows.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
}

struct PngCase {
  int channels;
  bool alpha;
  int depth;
};

class PngRoundTrip : public TempDirTest, public ::testing::WithParamInterface<PngCase> {};

TEST_P(PngRoundTrip, IsPixelExactAndKeepsDepthAndAlpha) {
  auto [channels, alpha, depth] = GetParam();
  Image img = make_test_image(37, 23, channels, alpha, depth);
  write_image(img, path("a.png"));
  Image back = read_image(path("a.png"));
  EXPECT_EQ(back.bit_depth, depth);
  EXPECT_EQ(back.format, ImageFormat::Png);
  expect_same_pixels(img, back);
}

INSTANTIATE_TEST_SUITE_P(AllColourTypes, PngRoundTrip,
                         ::testing::Values(PngCase{1, false, 8}, PngCase{1, true, 8},
                                           PngCase{3, false, 8}, PngCase{3, true, 8},
                                           PngCase{1, false, 16}, PngCase{1, true, 16},
                                           PngCase{3, false, 16}, PngCase{3, true, 16}),
                         [](const ::testing::TestParamInfo<PngCase>& info) {
                           const PngCase& c = info.param;
                           return std::string(c.channels == 1 ? "Gray" : "Rgb") +
                                  (c.alpha ? "Alpha" : "") + std::to_string(c.depth) + "bit";
                         });

using ImageIo = TempDirTest;

TEST_F(ImageIo, PaletteWithTransparencyBecomesRgba) {
  std::vector<png_color> palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  std::vector<png_byte> trns = {255, 128};             // entry 2 stays opaque
  std::vector<std::uint8_t> idx = {0, 1, 2, 1, 0, 2};  // 3x2
  write_png_with_libpng(path("p.png"), 3, 2, PNG_COLOR_TYPE_PALETTE, 8, false, idx, palette, trns);
  Image img = read_image(path("p.png"));
  ASSERT_EQ(img.color_channels, 3);
  ASSERT_EQ(img.alpha.size(), 6u);
  const float alpha_of[] = {1.0f, 128 / 255.0f, 1.0f};
  for (int i = 0; i < 6; ++i) {
    const png_color& c = palette[idx[static_cast<std::size_t>(i)]];
    EXPECT_EQ(img.color[static_cast<std::size_t>(i)], c.red / 255.0f);
    EXPECT_EQ(img.color[static_cast<std::size_t>(6 + i)], c.green / 255.0f);
    EXPECT_EQ(img.color[static_cast<std::size_t>(12 + i)], c.blue / 255.0f);
    EXPECT_EQ(img.alpha[static_cast<std::size_t>(i)], alpha_of[idx[static_cast<std::size_t>(i)]]);
  }
}

TEST_F(ImageIo, Interlaced16BitAndLowDepthGrayDecode) {
  const int w = 13, h = 9;
  std::vector<std::uint8_t> rgb16;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w * 3; ++x) {
      int v = (x * 4099 + y * 257) % 65536;
      rgb16.push_back(static_cast<std::uint8_t>(v >> 8));
      rgb16.push_back(static_cast<std::uint8_t>(v & 255));
    }
  write_png_with_libpng(path("i.png"), w, h, PNG_COLOR_TYPE_RGB, 16, true, rgb16);
  Image img = read_image(path("i.png"));
  ASSERT_EQ(img.bit_depth, 16);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        int v = ((x * 3 + c) * 4099 + y * 257) % 65536;
        ASSERT_EQ(img.color[static_cast<std::size_t>((c * h + y) * w + x)], v / 65535.0f);
      }
  // 2-bit gray, one byte per row of 4 pixels: 0, 1, 2, 3 -> 0, 85, 170, 255.
  write_png_with_libpng(path("g.png"), 4, 1, PNG_COLOR_TYPE_GRAY, 2, false, {0x1B});
  Image gray = read_image(path("g.png"));
  EXPECT_EQ(gray.color_channels, 1);
  EXPECT_EQ(gray.color, (std::vector<float>{0.0f, 85 / 255.0f, 170 / 255.0f, 1.0f}));
}

TEST_F(ImageIo, LosslessFormatsArePixelExact) {
  struct Case {
    const char* name;
    int channels;
    bool alpha;
    int depth;
  };
  for (auto c :
       {Case{"a.webp", 3, false, 8}, Case{"b.webp", 3, true, 8}, Case{"c.tif", 3, false, 16},
        Case{"d.tif", 1, false, 8}, Case{"e.tif", 3, true, 16}, Case{"f.bmp", 3, false, 8}}) {
    SCOPED_TRACE(c.name);
    Image img = make_test_image(20, 12, c.channels, c.alpha, c.depth);
    write_image(img, path(c.name));
    Image back = read_image(path(c.name));
    EXPECT_EQ(back.bit_depth, c.depth);
    expect_same_pixels(img, back, std::string(c.name).find(".webp") == std::string::npos);
  }
}

TEST_F(ImageIo, JpegQualityIsSelectable) {
  Image img = make_test_image(64, 48, 3, false, 8);
  for (int y = 0; y < 48; ++y)  // smooth content: JPEG's strength, so q95 must be near-lossless
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c)
        img.color[static_cast<std::size_t>((c * 48 + y) * 64 + x)] =
            std::round(255.0f * (0.2f + 0.6f * (x + y + 10 * c) / 140.0f)) / 255.0f;
  write_image(img, path("q95.jpg"));
  write_image(img, path("q50.jpg"), {50, false, std::nullopt});
  Image hi = read_image(path("q95.jpg")), lo = read_image(path("q50.jpg"));
  EXPECT_GT(psnr(img, hi), 35.0);
  EXPECT_GT(psnr(img, hi), psnr(img, lo));
  EXPECT_GT(fs::file_size(path("q95.jpg")), fs::file_size(path("q50.jpg")));
  EXPECT_THROW(write_image(make_test_image(8, 8, 3, true, 8), path("alpha.jpg")), Error);
}

TEST_F(ImageIo, IccProfileAndPngTextSurvive) {
  const auto icc = make_icc_profile();
  Image img = make_test_image(16, 16, 3, false, 8);
  img.metadata.icc = icc;
  img.metadata.png_text = {{"Author", "A. Painter", false}, {"Comment", "long story", true}};
  for (const char* name : {"a.png", "b.jpg", "c.tif", "d.webp"}) {
    SCOPED_TRACE(name);
    write_image(img, path(name));
    Image back = read_image(path(name));
    EXPECT_EQ(back.metadata.icc, icc);
  }
  Image png = read_image(path("a.png"));
  ASSERT_EQ(png.metadata.png_text.size(), 2u);
  EXPECT_EQ(png.metadata.png_text[0].key, "Author");
  EXPECT_EQ(png.metadata.png_text[0].text, "A. Painter");
  EXPECT_EQ(png.metadata.png_text[1].text, "long story");
}

// Adds EXIF/IPTC/XMP to an existing file with exiv2, as a camera or editor would.
void tag_file(const fs::path& p, int orientation) {
  auto img = Exiv2::ImageFactory::open(p.string());
  img->readMetadata();
  img->exifData()["Exif.Image.Artist"] = "A. Painter";
  img->exifData()["Exif.Image.Orientation"] = static_cast<uint16_t>(orientation);
  img->iptcData()["Iptc.Application2.Byline"] = "A. Painter";
  img->xmpData()["Xmp.dc.rights"] = "All rights reserved";
  img->writeMetadata();
}

std::string exif_value(const fs::path& p, const std::string& key) {
  auto img = Exiv2::ImageFactory::open(p.string());
  img->readMetadata();
  for (auto* data : {&img->exifData()}) {
    auto it = data->findKey(Exiv2::ExifKey(key));
    if (it != data->end()) return it->toString();
  }
  return "";
}

TEST_F(ImageIo, ExifOrientationIsAppliedAndMetadataCopied) {
  const int w = 8, h = 4;
  Image img = make_test_image(w, h, 3, false, 8);
  write_image(img, path("in.png"));
  tag_file(path("in.png"), 6);  // rotate 90 degrees clockwise to display
  Image up = read_image(path("in.png"));
  ASSERT_EQ(up.width, h);
  ASSERT_EQ(up.height, w);
  for (int c = 0; c < 3; ++c)
    for (int r = 0; r < w; ++r)
      for (int col = 0; col < h; ++col)
        ASSERT_EQ(up.color[static_cast<std::size_t>((c * w + r) * h + col)],
                  img.color[static_cast<std::size_t>((c * h + (h - 1 - col)) * w + r)]);
  for (const char* name : {"out.png", "out.jpg", "out.tif", "out.webp"}) {
    SCOPED_TRACE(name);
    write_image(up, path(name));
    EXPECT_EQ(exif_value(path(name), "Exif.Image.Artist"), "A. Painter");
    EXPECT_EQ(exif_value(path(name), "Exif.Image.Orientation"), "1");
    auto meta = Exiv2::ImageFactory::open(path(name).string());
    meta->readMetadata();
    EXPECT_EQ(meta->xmpData()["Xmp.dc.rights"].toString(),
              "lang=\"x-default\" All rights reserved");
    if (std::string(name) != "out.webp") {  // WebP has no IPTC block
      EXPECT_EQ(meta->iptcData()["Iptc.Application2.Byline"].toString(), "A. Painter");
    }
    Image again = read_image(path(name));
    EXPECT_EQ(again.width, h);  // not rotated a second time
  }
}

void expect_error(const fs::path& p, ErrorKind kind, const std::string& fragment,
                  const ReadOptions& o = {}) {
  try {
    read_image(p, o);
    FAIL() << "no error for " << p;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind);
    std::string msg = e.what();
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

TEST_F(ImageIo, BadInputsAreRefusedWithAClearError) {
  Image img = make_test_image(64, 64, 3, false, 8);
  write_image(img, path("ok.png"));
  write_image(img, path("ok.jpg"));
  auto png = read_file(path("ok.png"));
  auto jpg = read_file(path("ok.jpg"));

  write_bytes(path("empty.png"), {});
  expect_error(path("empty.png"), ErrorKind::Input, "empty");
  write_bytes(path("half.png"), std::vector<std::uint8_t>(
                                    png.begin(), png.begin() + static_cast<long>(png.size() / 2)));
  expect_error(path("half.png"), ErrorKind::Input, "truncated");
  write_bytes(path("half.jpg"), std::vector<std::uint8_t>(
                                    jpg.begin(), jpg.begin() + static_cast<long>(jpg.size() / 2)));
  expect_error(path("half.jpg"), ErrorKind::Input, "corrupt JPEG: Premature end");
  write_bytes(path("png.jpg"), png);
  expect_error(path("png.jpg"), ErrorKind::Input, "content is PNG but the extension says JPEG");
  write_bytes(path("anim.gif"), {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0});
  expect_error(path("anim.gif"), ErrorKind::Input, "unsupported format");
  expect_error(path("missing.png"), ErrorKind::Input, "cannot open");
  fs::create_directory(path("folder.png"));
  expect_error(path("folder.png"), ErrorKind::Input, "is a folder");
  expect_error(path("ok.png"), ErrorKind::Input, "larger than the limit of 32 px", {32});

  // A tiny file that claims to be 100000 x 100000: refused from its header, before decoding.
  auto huge = png;
  for (int i = 0; i < 2; ++i) {
    huge[static_cast<std::size_t>(16 + 4 * i)] = 0x00;
    huge[static_cast<std::size_t>(17 + 4 * i)] = 0x01;
    huge[static_cast<std::size_t>(18 + 4 * i)] = 0x86;
    huge[static_cast<std::size_t>(19 + 4 * i)] = 0xA0;
  }
  uLong crc = crc32(0, huge.data() + 12, 17);
  for (int i = 0; i < 4; ++i)
    huge[static_cast<std::size_t>(29 + i)] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
  write_bytes(path("huge.png"), huge);
  expect_error(path("huge.png"), ErrorKind::Input, "100000x100000 is larger than the limit");
}

TEST_F(ImageIo, OutputsAreNeverClobberedAndNoTempFileIsLeft) {
  Image img = make_test_image(16, 16, 3, false, 8);
  write_image(img, path("in.png"));
  auto before = read_file(path("in.png"));
  EXPECT_THROW(write_image(img, path("in.png"), {95, true, path("in.png")}), Error);  // input
  EXPECT_THROW(write_image(img, path("in.png")), Error);  // exists, no overwrite
  EXPECT_EQ(read_file(path("in.png")), before);
  Image other = make_test_image(16, 16, 1, false, 8);
  write_image(other, path("out.png"));
  write_image(img, path("out.png"), {95, true, path("in.png")});
  EXPECT_EQ(read_image(path("out.png")).color_channels, 3);
  try {
    write_image(img, path("no/such/folder/out.png"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Output);
    EXPECT_NE(std::string(e.what()).find("no/such/folder/out.png: cannot write to folder"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(write_image(img, path("out.gif")), Error);
  int files = 0;
  for (auto& e : fs::directory_iterator(dir_)) files += e.is_regular_file();
  EXPECT_EQ(files, 2);  // in.png and out.png: no temporary left behind
}

}  // namespace
}  // namespace cloak::test
