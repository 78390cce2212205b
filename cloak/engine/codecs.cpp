#include "cloak/engine/codecs.h"
#include "cloak/core/pixel.h"

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace cloak {

namespace {

cv::Mat to_mat8(const torch::Tensor& image) {
  auto hwc =
      (image[0].permute({1, 2, 0}).clamp(0, 1) * kMaxCode8).round().to(torch::kUInt8).contiguous();
  cv::Mat m(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)),
            CV_8UC(static_cast<int>(hwc.size(2))), hwc.data_ptr());
  cv::Mat out;
  if (m.channels() == 3)
    cv::cvtColor(m, out, cv::COLOR_RGB2BGR);
  else
    out = m.clone();
  return out;
}

torch::Tensor from_mat8(const cv::Mat& m) {
  cv::Mat rgb;
  if (m.channels() == 3)
    cv::cvtColor(m, rgb, cv::COLOR_BGR2RGB);
  else
    rgb = m;
  auto t = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, rgb.channels()}, torch::kUInt8);
  return t.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32).div(255).contiguous();
}

}  // namespace

torch::Tensor opencv_jpeg(const torch::Tensor& image, int quality) {
  std::vector<std::uint8_t> buf;
  cv::imencode(".jpg", to_mat8(image), buf, {cv::IMWRITE_JPEG_QUALITY, quality});
  return from_mat8(cv::imdecode(buf, cv::IMREAD_UNCHANGED));
}

torch::Tensor opencv_resize(const torch::Tensor& image, double factor) {
  cv::Mat out;
  cv::resize(to_mat8(image), out, cv::Size(), factor, factor, cv::INTER_AREA);
  return from_mat8(out);
}

torch::Tensor opencv_resize_to(const torch::Tensor& image, int64_t h, int64_t w) {
  cv::Mat out;
  const bool shrink = h * w < image.size(2) * image.size(3);
  cv::resize(to_mat8(image), out, cv::Size(static_cast<int>(w), static_cast<int>(h)), 0, 0,
             shrink ? cv::INTER_AREA : cv::INTER_CUBIC);
  return from_mat8(out);
}

torch::Tensor opencv_blur(const torch::Tensor& image, double sigma) {
  cv::Mat out;
  cv::GaussianBlur(to_mat8(image), out, cv::Size(), sigma, sigma, cv::BORDER_REFLECT);
  return from_mat8(out);
}

}  // namespace cloak
