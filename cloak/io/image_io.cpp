#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>

#include "cloak/core/error.h"
#include "cloak/core/pixel.h"
#include "cloak/io/file_io.h"
#include "cloak/io/image_io.h"
#include "cloak/io/jpeg_codec.h"
#include "cloak/io/metadata.h"
#include "cloak/io/png_codec.h"
#include "cloak/io/webp_icc.h"

namespace cloak {

namespace fs = std::filesystem;

std::string format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::Png:
      return "PNG";
    case ImageFormat::Jpeg:
      return "JPEG";
    case ImageFormat::Webp:
      return "WebP";
    case ImageFormat::Tiff:
      return "TIFF";
    case ImageFormat::Bmp:
      return "BMP";
  }
  return "?";
}

std::optional<ImageFormat> format_from_extension(const fs::path& file) {
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (ext == ".png") return ImageFormat::Png;
  if (ext == ".jpg" || ext == ".jpeg" || ext == ".jpe") return ImageFormat::Jpeg;
  if (ext == ".webp") return ImageFormat::Webp;
  if (ext == ".tif" || ext == ".tiff") return ImageFormat::Tiff;
  if (ext == ".bmp") return ImageFormat::Bmp;
  return std::nullopt;
}

namespace {

bool starts_with(const std::vector<std::uint8_t>& b, std::size_t at, const char* magic,
                 std::size_t n) {
  return b.size() >= at + n && std::memcmp(b.data() + at, magic, n) == 0;
}

std::optional<ImageFormat> sniff(const std::vector<std::uint8_t>& b) {
  if (starts_with(b, 0, "\x89PNG\r\n\x1a\n", 8)) return ImageFormat::Png;
  if (starts_with(b, 0, "\xff\xd8\xff", 3)) return ImageFormat::Jpeg;
  if (starts_with(b, 0, "RIFF", 4) && starts_with(b, 8, "WEBP", 4)) return ImageFormat::Webp;
  if (starts_with(b, 0, "II*\0", 4) || starts_with(b, 0, "MM\0*", 4)) return ImageFormat::Tiff;
  if (starts_with(b, 0, "BM", 2)) return ImageFormat::Bmp;
  return std::nullopt;
}

std::uint32_t le32(const std::vector<std::uint8_t>& b, std::size_t at) {
  return b[at] | b[at + 1] << 8 | b[at + 2] << 16 | static_cast<std::uint32_t>(b[at + 3]) << 24;
}

// Truncation that a decoder would not notice (JPEG's is caught by libjpeg itself).
void check_complete(ImageFormat format, const std::vector<std::uint8_t>& b,
                    const std::string& name) {
  bool complete = true;
  if (format == ImageFormat::Png) {
    // IEND in the last 1 KiB.
    const std::size_t from = b.size() > 1024 ? b.size() - 1024 : 0;
    complete = false;
    for (std::size_t i = from; i + 4 <= b.size() && !complete; ++i)
      complete = std::memcmp(b.data() + i, "IEND", 4) == 0;
  } else if (format == ImageFormat::Webp) {
    complete = b.size() >= 12 && static_cast<std::uint64_t>(le32(b, 4)) + 8 <= b.size();
  }
  if (!complete)
    throw Error(ErrorKind::Input,
                name + ": corrupt " + format_name(format) + ": file is truncated");
}

// Number of pages (IFDs in the main chain) of a classic TIFF; 1 when it cannot tell.
int tiff_pages(const std::vector<std::uint8_t>& b) {
  if (b.size() < 8 || b[2] + b[3] != 42) return 1;
  const bool le = b[0] == 'I';
  const auto u16 = [&](std::size_t at) {
    return le ? b[at] | b[at + 1] << 8 : b[at] << 8 | b[at + 1];
  };
  const auto u32 = [&](std::size_t at) {
    return le ? le32(b, at)
              : static_cast<std::uint32_t>(b[at]) << 24 | b[at + 1] << 16 | b[at + 2] << 8 |
                    b[at + 3];
  };
  int pages = 0;
  std::uint64_t ifd = u32(4);
  // Each IFD must lie further on than the last, so a looping chain ends.
  for (std::uint64_t last = 0; ifd > last && ifd + 2 <= b.size() && pages < 100000; ++pages) {
    const std::uint64_t next_at = ifd + 2 + 12ull * u16(ifd);
    last = ifd;
    ifd = next_at + 4 <= b.size() ? u32(next_at) : 0;
  }
  return std::max(pages, 1);
}

// Animated and multi-page files hold more than one picture; Cloak would protect only the first
// and leave the others readable, so they are refused.
void refuse_several_pictures(ImageFormat format, const std::vector<std::uint8_t>& b,
                             const std::string& name) {
  std::string what;
  if (format == ImageFormat::Png) {
    // An acTL chunk before the first IDAT makes an animated PNG.
    for (std::size_t at = 8; at + 8 <= b.size();) {
      const std::uint32_t len =
          static_cast<std::uint32_t>(b[at]) << 24 | b[at + 1] << 16 | b[at + 2] << 8 | b[at + 3];
      if (std::memcmp(b.data() + at + 4, "IDAT", 4) == 0) break;
      if (std::memcmp(b.data() + at + 4, "acTL", 4) == 0) what = "an animated PNG";
      at += 12ull + len;
    }
  } else if (format == ImageFormat::Webp) {
    // The VP8X header's animation flag, or an ANIM chunk.
    if (b.size() >= 21 && std::memcmp(b.data() + 12, "VP8X", 4) == 0 && (b[20] & 0x02))
      what = "an animated WebP";
  } else if (format == ImageFormat::Tiff) {
    if (const int pages = tiff_pages(b); pages > 1)
      what = "a TIFF with " + std::to_string(pages) + " pages";
  }
  if (!what.empty())
    throw Error(ErrorKind::Input, name + ": is " + what +
                                      "; Cloak protects one still picture a file (export each "
                                      "frame or page as its own image first)");
}

// The ICC profile must describe the decoded pixels: CMYK or Lab data (converted naively by the
// decoder) would get wrong colours, and its profile would lie about the output.
void check_profile_matches(const std::vector<std::uint8_t>& icc, int channels,
                           const std::string& name) {
  if (icc.size() < 20) return;
  const std::string space(icc.begin() + 16, icc.begin() + 20);
  const std::string expected = channels == 1 ? "GRAY" : "RGB ";
  if (space != expected)
    throw Error(ErrorKind::Input,
                name + ": colour space " + space.substr(0, space.find_last_not_of(' ') + 1) +
                    " (from its ICC profile) is not supported; convert it to RGB (sRGB) first");
}

// OpenCV prints decoder failures to std::cerr; Cloak reports them in one line of its own.
cv::Mat quiet_imdecode(const std::vector<std::uint8_t>& bytes) {
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  std::ostringstream sink;
  std::streambuf* saved = std::cerr.rdbuf(sink.rdbuf());
  cv::Mat m;
  try {
    m = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception&) {
    m = cv::Mat();
  }
  std::cerr.rdbuf(saved);
  return m;
}

cv::Mat apply_orientation(cv::Mat m, int orientation) {
  cv::Mat out;
  switch (orientation) {
    case 2:
      cv::flip(m, out, 1);
      return out;
    case 3:
      cv::rotate(m, out, cv::ROTATE_180);
      return out;
    case 4:
      cv::flip(m, out, 0);
      return out;
    case 5:
      cv::transpose(m, out);
      return out;
    case 6:
      cv::rotate(m, out, cv::ROTATE_90_CLOCKWISE);
      return out;
    case 7:
      cv::transpose(m, out);
      cv::rotate(out, out, cv::ROTATE_180);
      return out;
    case 8:
      cv::rotate(m, out, cv::ROTATE_90_COUNTERCLOCKWISE);
      return out;
    default:
      return m;
  }
}

// OpenCV's BGR(A) order to the file order PNG uses (G, GA, RGB, RGBA).
cv::Mat to_file_order(const cv::Mat& m) {
  cv::Mat out;
  if (m.channels() == 3)
    cv::cvtColor(m, out, cv::COLOR_BGR2RGB);
  else if (m.channels() == 4)
    cv::cvtColor(m, out, cv::COLOR_BGRA2RGBA);
  else
    out = m;
  return out;
}

Image to_image(const cv::Mat& m, ImageFormat format, ImageMetadata metadata) {
  Image img;
  img.width = m.cols;
  img.height = m.rows;
  img.format = format;
  img.bit_depth = m.depth() == CV_16U ? 16 : 8;
  img.metadata = std::move(metadata);
  const bool has_alpha = m.channels() == 2 || m.channels() == 4;
  img.color_channels = m.channels() <= 2 ? 1 : 3;
  // Sample value = code / max, as one correctly rounded float division.
  const auto maxv = static_cast<float>(max_code(img.bit_depth));
  const std::size_t plane = static_cast<std::size_t>(m.rows) * static_cast<std::size_t>(m.cols);
  const int n = m.channels();
  img.color.resize(plane * static_cast<std::size_t>(img.color_channels));
  if (has_alpha) img.alpha.resize(plane);
  for (int y = 0; y < m.rows; ++y)
    for (int x = 0; x < m.cols; ++x)
      for (int c = 0; c < n; ++c) {
        const std::size_t i = static_cast<std::size_t>(y * m.cols + x);
        const std::size_t k = static_cast<std::size_t>((y * m.cols + x) * n + c);
        const float v = (img.bit_depth == 16 ? static_cast<float>(m.ptr<std::uint16_t>()[k])
                                             : static_cast<float>(m.ptr<std::uint8_t>()[k])) /
                        maxv;
        if (c < img.color_channels)
          img.color[plane * static_cast<std::size_t>(c) + i] = v;
        else
          img.alpha[i] = v;
      }
  return img;
}

// Interleaved file-order pixels at `depth` (CV_8U or CV_16U), gray expanded to RGB when `rgb`.
cv::Mat to_mat(const Image& img, int depth, bool rgb) {
  const double scale = max_code(depth == CV_16U ? 16 : 8);
  std::vector<cv::Mat> planes;
  const std::size_t plane =
      static_cast<std::size_t>(img.width) * static_cast<std::size_t>(img.height);
  auto wrap = [&](const float* p) {
    cv::Mat src(img.height, img.width, CV_32F, const_cast<float*>(p)), q;
    src.convertTo(q, depth, scale);  // saturating, rounds to nearest
    return q;
  };
  for (int c = 0; c < img.color_channels; ++c)
    planes.push_back(wrap(img.color.data() + plane * static_cast<std::size_t>(c)));
  if (rgb && img.color_channels == 1) planes = {planes[0], planes[0], planes[0]};
  if (!img.alpha.empty()) planes.push_back(wrap(img.alpha.data()));
  cv::Mat out;
  cv::merge(planes, out);
  return out;
}

ImageFormat output_format(const fs::path& file) {
  auto format = format_from_extension(file);
  if (!format)
    throw Error(ErrorKind::Usage, file.string() +
                                      ": unsupported output format (use .png, .jpg, .webp, .tif "
                                      "or .bmp)");
  return *format;
}

// Encodes to bytes in `format` without metadata.
std::vector<std::uint8_t> encode_pixels(const Image& image, ImageFormat format, int jpeg_quality,
                                        const std::string& name) {
  const bool alpha = !image.alpha.empty();
  const bool deep =
      image.bit_depth == 16 && (format == ImageFormat::Png || format == ImageFormat::Tiff);
  const bool rgb = format == ImageFormat::Webp || (alpha && format == ImageFormat::Tiff);
  cv::Mat pixels = to_mat(image, deep ? CV_16U : CV_8U, rgb);
  if (format == ImageFormat::Png) return encode_png(pixels, image.metadata, name);
  if (pixels.channels() == 3) cv::cvtColor(pixels, pixels, cv::COLOR_RGB2BGR);
  if (pixels.channels() == 4) cv::cvtColor(pixels, pixels, cv::COLOR_RGBA2BGRA);
  std::vector<int> params;
  if (format == ImageFormat::Jpeg) params = {cv::IMWRITE_JPEG_QUALITY, jpeg_quality};
  if (format == ImageFormat::Webp) params = {cv::IMWRITE_WEBP_QUALITY, 101};  // lossless
  static const char* kExt[] = {".png", ".jpg", ".webp", ".tif", ".bmp"};
  std::vector<std::uint8_t> out;
  if (!cv::imencode(kExt[static_cast<int>(format)], pixels, out, params))
    throw Error(ErrorKind::Output, name + ": " + format_name(format) + " encoding failed");
  return out;
}

}  // namespace

void check_can_write(const Image& image, const fs::path& file) {
  const ImageFormat format = output_format(file);
  if (!image.alpha.empty() && (format == ImageFormat::Jpeg || format == ImageFormat::Bmp))
    throw Error(ErrorKind::Output, file.string() + ": " + format_name(format) +
                                       " cannot store transparency; write PNG, WebP or TIFF");
}

Image read_image(const fs::path& file, const ReadOptions& options) {
  return decode_image(read_file(file), file, options);
}

Image decode_image(const std::vector<std::uint8_t>& bytes, const fs::path& file,
                   const ReadOptions& options) {
  const std::string name = file.string();
  if (bytes.empty()) throw Error(ErrorKind::Input, name + ": file is empty");
  auto format = sniff(bytes);
  if (!format)
    throw Error(ErrorKind::Input,
                name + ": unsupported format (Cloak reads PNG, JPEG, WebP, TIFF, BMP)");
  auto named = format_from_extension(file);
  if (named && *named != *format)
    throw Error(ErrorKind::Input, name + ": content is " + format_name(*format) +
                                      " but the extension says " + format_name(*named));
  check_complete(*format, bytes, name);
  refuse_several_pictures(*format, bytes, name);
  ImageMetadata metadata;
  // PNG's profile comes from libpng, WebP's from its ICCP chunk, the others' from exiv2.
  const bool icc_from_exiv2 = *format == ImageFormat::Jpeg || *format == ImageFormat::Tiff;
  ImageHeader header = read_metadata(bytes, name, icc_from_exiv2, metadata);
  if (*format == ImageFormat::Webp) metadata.icc = webp_icc_profile(bytes);
  const auto check_size = [&](int w, int h) {
    if (w > options.max_side || h > options.max_side)
      throw Error(ErrorKind::Input, name + ": " + std::to_string(w) + "x" + std::to_string(h) +
                                        " is larger than the limit of " +
                                        std::to_string(options.max_side) + " px a side");
    if (static_cast<std::int64_t>(w) * h > options.max_pixels) {
      char text[160];
      std::snprintf(text, sizeof text,
                    ": %dx%d (%.1f megapixels) is larger than the limit of %.1f megapixels "
                    "(--max-megapixels; memory grows with the area)",
                    w, h, w * 1e-6 * h, options.max_pixels * 1e-6);
      throw Error(ErrorKind::Input, name + text);
    }
  };
  check_size(header.width, header.height);
  cv::Mat pixels;
  if (*format == ImageFormat::Png) {
    pixels = decode_png(bytes, name, metadata, options.max_pixels);
  } else if (*format == ImageFormat::Jpeg) {
    pixels = decode_jpeg(bytes, name);
  } else {
    pixels = quiet_imdecode(bytes);
    if (pixels.empty())
      throw Error(ErrorKind::Input, name + ": corrupt " + format_name(*format) + ": cannot decode");
    if (pixels.depth() != CV_8U && pixels.depth() != CV_16U)
      throw Error(ErrorKind::Input,
                  name + ": unsupported sample type (only 8- and 16-bit integer)");
    pixels = to_file_order(pixels);
  }
  check_size(pixels.cols, pixels.rows);
  check_profile_matches(metadata.icc, pixels.channels() <= 2 ? 1 : 3, name);
  return to_image(apply_orientation(pixels, header.orientation), *format, std::move(metadata));
}

std::vector<std::uint8_t> encode_image(const Image& image, const fs::path& file, int jpeg_quality) {
  const std::string name = file.string();
  check_can_write(image, file);
  const ImageFormat format = output_format(file);
  auto bytes = encode_pixels(image, format, jpeg_quality, name);
  const ImageMetadata& md = image.metadata;
  // libpng and libwebpmux write the profile with the pixels; exiv2 writes it for JPEG and TIFF.
  // When exiv2 rewrites a PNG it drops an iCCP it was not given, so it is given PNG's too (exiv2
  // 0.27 would write WebP's under the wrong chunk name).
  const bool icc_with_pixels = format == ImageFormat::Png || format == ImageFormat::Webp;
  const bool has_metadata = !md.exif.empty() || !md.iptc.empty() || !md.xmp.empty() ||
                            (!md.icc.empty() && !icc_with_pixels);
  if (has_metadata && format != ImageFormat::Bmp)
    bytes = embed_metadata(bytes, md, format != ImageFormat::Webp, name);
  if (format == ImageFormat::Webp && !md.icc.empty())
    bytes = webp_with_icc_profile(bytes, md.icc, name);
  return bytes;
}

void write_image(const Image& image, const fs::path& file, const WriteOptions& options) {
  if (options.input) InputFiles({*options.input}).refuse_as_output(file);
  write_file_atomic(file, encode_image(image, file, options.jpeg_quality), options.overwrite);
}

}  // namespace cloak
