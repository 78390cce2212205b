#include "cloak/io/png_codec.h"

#include <png.h>

#include <cctype>
#include <cstring>

#include "cloak/core/error.h"

namespace cloak {
namespace {

// libpng reports errors by longjmp; the message is kept here and thrown after the jump.
struct PngState {
  const std::vector<std::uint8_t>* in = nullptr;
  std::size_t pos = 0;
  std::vector<std::uint8_t>* out = nullptr;
  std::string error;
};

void on_error(png_structp png, png_const_charp msg) {
  static_cast<PngState*>(png_get_error_ptr(png))->error = msg;
  png_longjmp(png, 1);
}
void on_warning(png_structp, png_const_charp) {}

void read_bytes(png_structp png, png_bytep data, png_size_t n) {
  auto* st = static_cast<PngState*>(png_get_io_ptr(png));
  if (st->pos + n > st->in->size()) png_error(png, "file is truncated");
  std::memcpy(data, st->in->data() + st->pos, n);
  st->pos += n;
}
void write_bytes(png_structp png, png_bytep data, png_size_t n) {
  auto* st = static_cast<PngState*>(png_get_io_ptr(png));
  st->out->insert(st->out->end(), data, data + n);
}
void flush(png_structp) {}

// Text chunks that carry EXIF/IPTC/XMP are exiv2's to read and write.
bool is_metadata_carrier(const std::string& key) {
  return key.rfind("Raw profile type", 0) == 0 || key == "XML:com.adobe.xmp";
}

// libpng's read or write struct with its info struct, destroyed however the scope is left
// (libpng's own errors longjmp out of png_try, never past this).
class PngHandle {
 public:
  PngHandle(bool write, PngState& st, const std::string& name, ErrorKind kind) : write_(write) {
    png_ = write ? png_create_write_struct(PNG_LIBPNG_VER_STRING, &st, on_error, on_warning)
                 : png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, on_error, on_warning);
    info_ = png_ ? png_create_info_struct(png_) : nullptr;
    if (!info_) {
      destroy();
      throw Error(kind, name + ": out of memory");
    }
  }
  ~PngHandle() { destroy(); }
  PngHandle(const PngHandle&) = delete;
  PngHandle& operator=(const PngHandle&) = delete;
  png_structp png() const { return png_; }
  png_infop info() const { return info_; }

 private:
  void destroy() {
    if (write_)
      png_destroy_write_struct(&png_, info_ ? &info_ : nullptr);
    else
      png_destroy_read_struct(&png_, info_ ? &info_ : nullptr, nullptr);
  }
  bool write_;
  png_structp png_ = nullptr;
  png_infop info_ = nullptr;
};

// Runs libpng calls; false when libpng reported an error (its message is in the PngState).
// setjmp lives here, in a frame with no locals, so nothing can be clobbered by the jump.
template <class F>
bool png_try(png_structp png, F&& calls) {
  if (setjmp(png_jmpbuf(png))) return false;
  calls();
  return true;
}

// libpng allocates each chunk's claimed length before it reads the chunk, so a chunk that claims
// more than the file holds is refused first.
void check_chunk_lengths(const std::vector<std::uint8_t>& b, const std::string& name) {
  for (std::size_t at = 8; at + 8 <= b.size();) {
    const std::uint64_t len =
        static_cast<std::uint64_t>(b[at]) << 24 | b[at + 1] << 16 | b[at + 2] << 8 | b[at + 3];
    if (len + 12 > b.size() - at) {
      std::string type(b.begin() + static_cast<long>(at) + 4,
                       b.begin() + static_cast<long>(at) + 8);
      for (char& c : type)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '?';
      throw Error(ErrorKind::Input,
                  name + ": corrupt PNG: chunk " + type + " claims more bytes than the file holds");
    }
    at += 12 + len;
  }
}

}  // namespace

cv::Mat decode_png(const std::vector<std::uint8_t>& bytes, const std::string& name,
                   ImageMetadata& metadata, std::int64_t max_pixels) {
  check_chunk_lengths(bytes, name);
  PngState st;
  st.in = &bytes;
  const PngHandle handle(false, st, name, ErrorKind::Input);
  png_structp png = handle.png();
  png_infop info = handle.info();
  cv::Mat mat;
  std::vector<png_bytep> rows;
  bool ok = png_try(png, [&] {
    png_set_read_fn(png, &st, read_bytes);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    // A chunk's claimed length (or a text chunk's inflated size) is allocated before it is read:
    // cap it, so a lying length cannot take gigabytes.
    png_set_chunk_malloc_max(png, 32u << 20);
    png_read_info(png, info);
    const int color_type = png_get_color_type(png, info);
    const int depth = png_get_bit_depth(png, info);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_swap(png);  // native little-endian 16-bit samples
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const int w = static_cast<int>(png_get_image_width(png, info));
    const int h = static_cast<int>(png_get_image_height(png, info));
    if (static_cast<std::int64_t>(w) * h > max_pixels) png_error(png, "image is too large");
    const int channels = png_get_channels(png, info);
    const int out_depth = png_get_bit_depth(png, info);
    mat.create(h, w, CV_MAKETYPE(out_depth == 16 ? CV_16U : CV_8U, channels));
    rows.resize(static_cast<std::size_t>(h));
    for (int y = 0; y < h; ++y) rows[static_cast<std::size_t>(y)] = mat.ptr(y);
    png_read_image(png, rows.data());
    png_read_end(png, info);
  });
  if (!ok) throw Error(ErrorKind::Input, name + ": corrupt PNG: " + st.error);

  png_charp icc_name;
  int compression;
  png_bytep profile;
  png_uint_32 profile_len;
  if (png_get_iCCP(png, info, &icc_name, &compression, &profile, &profile_len))
    metadata.icc.assign(profile, profile + profile_len);
  png_textp text;
  int num_text = 0;
  png_get_text(png, info, &text, &num_text);
  for (int i = 0; i < num_text; ++i) {
    std::string key = text[i].key;
    if (is_metadata_carrier(key)) continue;
    std::size_t len = text[i].compression >= PNG_ITXT_COMPRESSION_NONE ? text[i].itxt_length
                                                                       : text[i].text_length;
    metadata.png_text.push_back({key, std::string(text[i].text, len),
                                 text[i].compression == PNG_TEXT_COMPRESSION_zTXt ||
                                     text[i].compression == PNG_ITXT_COMPRESSION_zTXt});
  }
  return mat;
}

std::vector<std::uint8_t> encode_png(const cv::Mat& pixels, const ImageMetadata& metadata,
                                     const std::string& name) {
  static const int kColorTypes[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                    PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  std::vector<std::uint8_t> out;
  PngState st;
  st.out = &out;
  std::vector<png_bytep> rows(static_cast<std::size_t>(pixels.rows));
  for (int y = 0; y < pixels.rows; ++y)
    rows[static_cast<std::size_t>(y)] = const_cast<png_bytep>(pixels.ptr(y));
  // Text chunks are kept as iTXt (UTF-8), zTXt-compressed where they were compressed.
  std::vector<png_text> text(metadata.png_text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto& t = metadata.png_text[i];
    text[i] = png_text{};
    text[i].compression = t.compressed ? PNG_ITXT_COMPRESSION_zTXt : PNG_ITXT_COMPRESSION_NONE;
    text[i].key = const_cast<png_charp>(t.key.c_str());
    text[i].text = const_cast<png_charp>(t.text.c_str());
    text[i].itxt_length = t.text.size();
  }
  const PngHandle handle(true, st, name, ErrorKind::Output);
  png_structp png = handle.png();
  png_infop info = handle.info();
  bool ok = png_try(png, [&] {
    png_set_write_fn(png, &st, write_bytes, flush);
    const int depth = pixels.depth() == CV_16U ? 16 : 8;
    png_set_IHDR(png, info, static_cast<png_uint_32>(pixels.cols),
                 static_cast<png_uint_32>(pixels.rows), depth, kColorTypes[pixels.channels() - 1],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (!metadata.icc.empty())
      png_set_iCCP(png, info, "ICC profile", PNG_COMPRESSION_TYPE_BASE, metadata.icc.data(),
                   static_cast<png_uint_32>(metadata.icc.size()));
    if (!text.empty()) png_set_text(png, info, text.data(), static_cast<int>(text.size()));
    png_write_info(png, info);
    if (depth == 16) png_set_swap(png);
    png_write_image(png, rows.data());
    png_write_end(png, info);
  });
  if (!ok) throw Error(ErrorKind::Output, name + ": PNG encoding failed: " + st.error);
  return out;
}

}  // namespace cloak
