#include "samples/digital_art.h"

#include <opencv2/imgproc.hpp>

#include <cmath>

namespace cloak::samples {

namespace {

using cv::Point;
using cv::Scalar;

// BGR(A) 8-bit to an Image (RGB planes, alpha when there are four channels).
Image to_image(const cv::Mat& m) {
  Image img;
  img.width = m.cols;
  img.height = m.rows;
  const std::size_t n = static_cast<std::size_t>(m.rows) * m.cols;
  img.color.resize(3 * n);
  if (m.channels() == 4) img.alpha.resize(n);
  for (int y = 0; y < m.rows; ++y)
    for (int x = 0; x < m.cols; ++x) {
      const auto* p = m.ptr<std::uint8_t>(y) + x * m.channels();
      const std::size_t i = static_cast<std::size_t>(y) * m.cols + x;
      for (int c = 0; c < 3; ++c) img.color[c * n + i] = p[2 - c] / 255.0f;
      if (m.channels() == 4) img.alpha[i] = p[3] / 255.0f;
    }
  return img;
}

// A vertical blend from `top` to `bottom` (BGR).
cv::Mat linear_gradient(int s, Scalar top, Scalar bottom) {
  cv::Mat m(s, s, CV_8UC3);
  for (int y = 0; y < s; ++y) {
    const double t = static_cast<double>(y) / (s - 1);
    m.row(y).setTo(top * (1 - t) + bottom * t);
  }
  return m;
}

// Fills `poly` over `m` with `color` at `opacity`, anti-aliased.
void translucent(cv::Mat& m, const std::vector<Point>& poly, Scalar color, double opacity) {
  cv::Mat layer = m.clone();
  cv::fillPoly(layer, std::vector<std::vector<Point>>{poly}, color, cv::LINE_AA);
  cv::addWeighted(layer, opacity, m, 1 - opacity, 0, m);
}

Point at(int s, double u, double v) {
  return {static_cast<int>(std::lround(u * s)), static_cast<int>(std::lround(v * s))};
}

cv::Mat flat_fills(int s) {
  cv::Mat m(s, s, CV_8UC3, Scalar(90, 160, 235));
  cv::rectangle(m, at(s, 0.1, 0.1), at(s, 0.55, 0.5), Scalar(200, 120, 40), cv::FILLED);
  cv::circle(m, at(s, 0.65, 0.62), s / 4, Scalar(60, 60, 200), cv::FILLED, cv::LINE_AA);
  cv::fillPoly(
      m, std::vector<std::vector<Point>>{{at(s, 0.1, 0.9), at(s, 0.45, 0.55), at(s, 0.5, 0.95)}},
      Scalar(80, 170, 90), cv::LINE_AA);
  return m;
}

cv::Mat gradients(int s) {
  cv::Mat m = linear_gradient(s, Scalar(235, 190, 120), Scalar(120, 60, 200));
  const Point c = at(s, 0.62, 0.4);
  for (int y = 0; y < s; ++y)
    for (int x = 0; x < s; ++x) {
      const double r = std::hypot(x - c.x, y - c.y) / (0.35 * s);
      if (r >= 1) continue;
      auto& p = m.at<cv::Vec3b>(y, x);
      const double t = 1 - r * r;
      for (int k = 0; k < 3; ++k)
        p[k] = cv::saturate_cast<std::uint8_t>(p[k] * (1 - t) + (k == 0 ? 200 : 250) * t);
    }
  return m;
}

cv::Mat vector_shapes(int s) {
  cv::Mat m = linear_gradient(s, Scalar(170, 150, 40), Scalar(90, 60, 10));
  translucent(m, {at(s, 0.1, 0.2), at(s, 0.7, 0.1), at(s, 0.5, 0.6)}, Scalar(220, 240, 250), 0.5);
  translucent(m, {at(s, 0.3, 0.5), at(s, 0.9, 0.35), at(s, 0.8, 0.9), at(s, 0.25, 0.85)},
              Scalar(120, 200, 90), 0.6);
  translucent(m, {at(s, 0.05, 0.95), at(s, 0.45, 0.4), at(s, 0.6, 0.98)}, Scalar(30, 30, 30), 0.35);
  return m;
}

cv::Mat line_art(int s) {
  cv::Mat m(s, s, CV_8UC3, Scalar(236, 244, 248));  // paper white
  const int t = std::max(1, s / 170);
  cv::ellipse(m, at(s, 0.5, 0.42), cv::Size(s / 4, s / 3), 0, 0, 360, Scalar(40, 30, 30), t,
              cv::LINE_AA);
  cv::line(m, at(s, 0.3, 0.45), at(s, 0.45, 0.4), Scalar(40, 30, 30), t, cv::LINE_AA);
  cv::line(m, at(s, 0.55, 0.4), at(s, 0.7, 0.45), Scalar(40, 30, 30), t, cv::LINE_AA);
  cv::ellipse(m, at(s, 0.5, 0.58), cv::Size(s / 10, s / 20), 0, 10, 170, Scalar(40, 30, 30), t,
              cv::LINE_AA);
  const double scale = s / 300.0;
  cv::putText(m, "Cloak", at(s, 0.2, 0.92), cv::FONT_HERSHEY_TRIPLEX, 1.6 * scale,
              Scalar(60, 40, 160), std::max(1, s / 200), cv::LINE_AA);
  return m;
}

cv::Mat cel_shading(int s) {
  cv::Mat m(s, s, CV_8UC3, Scalar(245, 225, 200));
  cv::circle(m, at(s, 0.5, 0.5), s / 3, Scalar(70, 110, 230), cv::FILLED, cv::LINE_AA);
  // The shadow band: the same disc's colour one tone darker, cut by a second disc.
  cv::Mat shade(s, s, CV_8UC1, Scalar(0));
  cv::circle(shade, at(s, 0.5, 0.5), s / 3, Scalar(255), cv::FILLED, cv::LINE_AA);
  cv::circle(shade, at(s, 0.4, 0.4), s / 3, Scalar(0), cv::FILLED, cv::LINE_AA);
  m.setTo(Scalar(40, 70, 170), shade);
  cv::circle(m, at(s, 0.4, 0.35), s / 14, Scalar(230, 240, 255), cv::FILLED, cv::LINE_AA);
  cv::circle(m, at(s, 0.5, 0.5), s / 3, Scalar(30, 20, 20), std::max(1, s / 128), cv::LINE_AA);
  return m;
}

cv::Mat pixel_art(int s) {
  // A 16x16 sprite, each of its pixels a hard-edged block.
  const char* sprite[16] = {
      "................", "....RRRRRR......", "...RRRRRRRRRR...", "...BBBSSKS......",
      "..BSBSSSKSSS....", "..BSBBSSSKSSS...", "..BBSSSSKKKK....", "....SSSSSSS.....",
      "...RRGRRRGRR....", "..RRRGRRRGRRR...", ".RRRRGGGGGRRRR..", ".SSRGYGGYGRSS...",
      ".SSSGGGGGGSSS...", ".SSGGGGGGGGSS...", "...GGG...GGG....", "..BBB.....BBB..."};
  const std::pair<char, Scalar> colors[] = {
      {'.', Scalar(250, 200, 150)}, {'R', Scalar(40, 40, 210)}, {'B', Scalar(30, 60, 110)},
      {'S', Scalar(130, 180, 250)}, {'K', Scalar(20, 20, 20)},  {'G', Scalar(200, 90, 40)},
      {'Y', Scalar(60, 220, 240)}};
  cv::Mat small(16, 16, CV_8UC3);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x)
      for (const auto& [k, c] : colors)
        if (sprite[y][x] == k) small.at<cv::Vec3b>(y, x) = cv::Vec3b(c[0], c[1], c[2]);
  cv::Mat m;
  cv::resize(small, m, cv::Size(s, s), 0, 0, cv::INTER_NEAREST);
  return m;
}

cv::Mat sticker(int s) {
  cv::Mat m(s, s, CV_8UC4, Scalar(0, 0, 0, 0));
  cv::circle(m, at(s, 0.5, 0.5), s * 2 / 5, Scalar(255, 255, 255, 255), cv::FILLED, cv::LINE_AA);
  cv::circle(m, at(s, 0.5, 0.5), s * 7 / 20, Scalar(80, 200, 250, 255), cv::FILLED, cv::LINE_AA);
  cv::ellipse(m, at(s, 0.5, 0.55), cv::Size(s / 6, s / 8), 0, 20, 160, Scalar(30, 30, 30, 255),
              std::max(1, s / 60), cv::LINE_AA);
  cv::circle(m, at(s, 0.42, 0.42), s / 24, Scalar(30, 30, 30, 255), cv::FILLED, cv::LINE_AA);
  cv::circle(m, at(s, 0.58, 0.42), s / 24, Scalar(30, 30, 30, 255), cv::FILLED, cv::LINE_AA);
  return m;
}

}  // namespace

std::vector<Artwork> digital_art(int side) {
  return {{"flat-fills", to_image(flat_fills(side))},
          {"gradients", to_image(gradients(side))},
          {"vector-shapes", to_image(vector_shapes(side))},
          {"line-art", to_image(line_art(side))},
          {"cel-shading", to_image(cel_shading(side))},
          {"pixel-art", to_image(pixel_art(side))},
          {"sticker", to_image(sticker(side))}};
}

}  // namespace cloak::samples
