#include "cloak/io/jpeg_codec.h"

#include <csetjmp>
#include <cstdio>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

#include "cloak/core/error.h"

namespace cloak {
namespace {

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
};

void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  err->mgr.format_message(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Level -1 is a warning about corrupt data: libjpeg would carry on and fill in grey.
void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) on_error(cinfo);
}

// setjmp lives here, in a frame with no locals, so nothing can be clobbered by the jump.
template <class F>
bool jpeg_try(JpegError& err, F&& calls) {
  if (setjmp(err.jump)) return false;
  calls();
  return true;
}

}  // namespace

cv::Mat decode_jpeg(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = on_error;
  err.mgr.emit_message = on_message;
  jpeg_create_decompress(&cinfo);
  cv::Mat mat;
  bool cmyk = false;
  const bool ok = jpeg_try(err, [&] {
    jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK ||
        cinfo.num_components == 4) {
      cmyk = true;
      return;
    }
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    mat.create(static_cast<int>(cinfo.output_height), static_cast<int>(cinfo.output_width),
               CV_8UC(cinfo.output_components));
    while (cinfo.output_scanline < cinfo.output_height) {
      JSAMPROW row = mat.ptr(static_cast<int>(cinfo.output_scanline));
      jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
  });
  jpeg_destroy_decompress(&cinfo);
  if (!ok) throw Error(ErrorKind::Input, name + ": corrupt JPEG: " + err.message);
  if (cmyk)
    throw Error(ErrorKind::Input,
                name + ": CMYK JPEG is not supported; convert it to RGB (sRGB) first");
  return mat;
}

}  // namespace cloak
