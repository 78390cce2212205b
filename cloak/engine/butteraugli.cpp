#include "cloak/engine/butteraugli.h"

#include <jxl/butteraugli.h>
#include <jxl/thread_parallel_runner.h>
#include <torch/torch.h>

#include <memory>

#include "cloak/core/error.h"
#include "cloak/engine/cancel.h"
#include "cloak/engine/codecs.h"
#include "cloak/engine/vision.h"

namespace cloak {

namespace {

constexpr float kIntensityTarget = 80, kHfAsymmetry = 0.8f;
// Below a megapixel (under a second on 2 cores) Butteraugli runs on the caller's thread: a cancel
// waits for it, and a small image's many measures pay no thread start.
constexpr int64_t kCancellablePixels = 1 << 20;

// Interleaved RGB 16-bit code values, as libjxl reads them (sRGB).
torch::Tensor interleaved_u16(const torch::Tensor& image) {
  return (as_rgb(image)[0].permute({1, 2, 0}).to(torch::kFloat32).clamp(0, 1) * 65535)
      .round()
      .to(torch::kInt32)
      .to(torch::kInt16)  // two's complement of codes above 32767: the same 16 bits
      .contiguous();
}

template <class T, void (*Destroy)(T*)>
struct Deleter {
  void operator()(T* p) const { Destroy(p); }
};

// Butteraugli of two interleaved 16-bit RGB images, on `threads` threads.
Visibility compare(const torch::Tensor& a, const torch::Tensor& b, bool with_distmap, int threads) {
  const auto h = static_cast<uint32_t>(a.size(0)), w = static_cast<uint32_t>(a.size(1));
  const size_t bytes = static_cast<size_t>(a.numel()) * 2;
  std::unique_ptr<JxlButteraugliApi, Deleter<JxlButteraugliApi, JxlButteraugliApiDestroy>> api(
      JxlButteraugliApiCreate(nullptr));
  std::unique_ptr<void, Deleter<void, JxlThreadParallelRunnerDestroy>> runner(
      JxlThreadParallelRunnerCreate(nullptr, static_cast<size_t>(threads)));
  if (!api || !runner) throw Error(ErrorKind::Input, "Butteraugli could not start");
  JxlButteraugliApiSetParallelRunner(api.get(), JxlThreadParallelRunner, runner.get());
  // libjxl's own butteraugli_main's settings: a display of 80 nits, where about 1 is just
  // visible, and its weight of high-frequency change added against change taken away.
  JxlButteraugliApiSetIntensityTarget(api.get(), kIntensityTarget);
  JxlButteraugliApiSetHFAsymmetry(api.get(), kHfAsymmetry);
  const JxlPixelFormat format{3, JXL_TYPE_UINT16, JXL_NATIVE_ENDIAN, 0};
  std::unique_ptr<JxlButteraugliResult, Deleter<JxlButteraugliResult, JxlButteraugliResultDestroy>>
      result(JxlButteraugliCompute(api.get(), w, h, &format, a.data_ptr(), bytes, &format,
                                   b.data_ptr(), bytes));
  if (!result)
    throw Error(ErrorKind::Input, "Butteraugli failed on a " + std::to_string(w) + "x" +
                                      std::to_string(h) + " image");
  Visibility v;
  v.max = JxlButteraugliResultGetMaxDistance(result.get());
  v.norm3 = JxlButteraugliResultGetDistance(result.get(), 3.0f);
  if (with_distmap) {
    const float* map = nullptr;
    uint32_t stride = 0;
    JxlButteraugliResultGetDistmap(result.get(), &map, &stride);
    v.distmap =
        torch::from_blob(const_cast<float*>(map), {h, w}, {stride, 1}, torch::kFloat32).clone();
  }
  return v;
}

}  // namespace

Visibility butteraugli(const torch::Tensor& reference, const torch::Tensor& distorted,
                       bool with_distmap) {
  torch::NoGradGuard no_grad;
  const auto a = interleaved_u16(reference), b = interleaved_u16(distorted);
  const int threads = at::get_num_threads();  // this thread's: a new one has the default
  if (a.size(0) * a.size(1) < kCancellablePixels) return compare(a, b, with_distmap, threads);
  // A large image's takes seconds: under a cancel check it runs beside this thread, which stops
  // waiting for it when the run is cancelled (it owns its copies of the pixels).
  auto v = std::make_shared<Visibility>();
  run_cancellable([a, b, with_distmap, threads, v] { *v = compare(a, b, with_distmap, threads); });
  return *v;
}

Visibility jpeg_visibility(const torch::Tensor& image, int quality, bool with_distmap) {
  return butteraugli(image, opencv_jpeg(image, quality), with_distmap);
}

std::optional<int> jpeg_equivalent(const torch::Tensor& image, const Visibility& v, int from) {
  auto as_visible = [&](int q) {
    const auto j = jpeg_visibility(image, q);
    return j.max >= v.max && j.norm3 >= v.norm3;
  };
  // JPEG's distance falls as its quality rises: bisect for the last quality still as visible.
  int lo = from, hi = 100;
  if (!as_visible(lo)) return std::nullopt;
  if (as_visible(hi)) return hi;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    (as_visible(mid) ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace cloak
