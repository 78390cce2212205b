#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cloak/error.h"
#include "cloak/file_io.h"
#include "cloak/image.h"
#include "cloak/metadata.h"
#include "cloak/png_codec.h"
#include "cloak/webp_icc.h"

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

// Decoders that repair truncated data silently (libjpeg fills in grey) are checked first.
void check_complete(ImageFormat format, const std::vector<std::uint8_t>& b,
                    const std::string& name) {
  // Whether `marker` occurs in the last `tail` bytes.
  const auto ends_with_marker = [&](const char* marker, std::size_t len, std::size_t tail) {
    std::size_t from = b.size() > tail ? b.size() - tail : 0;
    for (std::size_t i = from; i + len <= b.size(); ++i)
      if (std::memcmp(b.data() + i, marker, len) == 0) return true;
    return false;
  };
  bool complete = true;
  if (format == ImageFormat::Png) {
    complete = ends_with_marker("IEND", 4, 1024);
  } else if (format == ImageFormat::Jpeg) {
    // Entropy-coded data never holds FF D9 (0xFF bytes are stuffed), so it marks the real end.
    complete = ends_with_marker("\xff\xd9", 2, 4096);
  } else if (format == ImageFormat::Webp) {
    std::uint32_t riff = b[4] | b[5] << 8 | b[6] << 16 | static_cast<std::uint32_t>(b[7]) << 24;
    complete = static_cast<std::uint64_t>(riff) + 8 <= b.size();
  }
  if (!complete)
    throw Error(ErrorKind::Input,
                name + ": corrupt " + format_name(format) + ": file is truncated");
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
  const float maxv = img.bit_depth == 16 ? 65535.0f : 255.0f;
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
  const double scale = depth == CV_16U ? 65535.0 : 255.0;
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

// Encodes to bytes in `format` without metadata.
std::vector<std::uint8_t> encode_pixels(const Image& image, ImageFormat format, int jpeg_quality,
                                        const std::string& name) {
  const bool alpha = !image.alpha.empty();
  if (alpha && (format == ImageFormat::Jpeg || format == ImageFormat::Bmp))
    throw Error(ErrorKind::Usage, name + ": " + format_name(format) +
                                      " cannot store transparency; write PNG, WebP or TIFF");
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

Image read_image(const fs::path& file, const ReadOptions& options) {
  const std::string name = file.string();
  auto bytes = read_file(file);
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
  };
  check_size(header.width, header.height);
  cv::Mat pixels;
  if (*format == ImageFormat::Png) {
    pixels = decode_png(bytes, name, metadata);
  } else {
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
    pixels = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
    if (pixels.empty())
      throw Error(ErrorKind::Input, name + ": corrupt " + format_name(*format) + ": cannot decode");
    if (pixels.depth() != CV_8U && pixels.depth() != CV_16U)
      throw Error(ErrorKind::Input,
                  name + ": unsupported sample type (only 8- and 16-bit integer)");
    pixels = to_file_order(pixels);
  }
  check_size(pixels.cols, pixels.rows);
  return to_image(apply_orientation(pixels, header.orientation), *format, std::move(metadata));
}

void write_image(const Image& image, const fs::path& file, const WriteOptions& options) {
  const std::string name = file.string();
  auto format = format_from_extension(file);
  if (!format)
    throw Error(ErrorKind::Usage,
                name + ": unsupported output format (use .png, .jpg, .webp, .tif or .bmp)");
  std::error_code ec;
  if (options.input && fs::equivalent(file, *options.input, ec))
    throw Error(ErrorKind::Output, name + ": is the input file; originals are never written over");
  auto bytes = encode_pixels(image, *format, options.jpeg_quality, name);
  const ImageMetadata& md = image.metadata;
  const bool icc_by_exiv2 = *format == ImageFormat::Jpeg || *format == ImageFormat::Tiff;
  const bool has_metadata =
      !md.exif.empty() || !md.iptc.empty() || !md.xmp.empty() || (!md.icc.empty() && icc_by_exiv2);
  if (has_metadata && *format != ImageFormat::Bmp)
    bytes = embed_metadata(bytes, md, icc_by_exiv2, name);
  if (*format == ImageFormat::Webp && !md.icc.empty())
    bytes = webp_with_icc_profile(bytes, md.icc, image.width, image.height, !image.alpha.empty());
  write_file_atomic(file, bytes, options.overwrite);
}

}  // namespace cloak
