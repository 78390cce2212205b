// Writes the fuzz harnesses' seed corpora, every file made by Cloak's own code:
//   make_seeds OUT_DIR [SHARED_MODELS_DIR]
// OUT_DIR/{image,png,metadata,weights,manifest}/... The weights corpus gets a small safetensors
// file and, when the models folder is given, a .pth repacked from the upstream taesana encoder
// with its tensors cut to a few bytes (the pickle and zip structure are what is fuzzed).
#include <zip.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "cloak/io/file_io.h"
#include "cloak/io/image_io.h"
#include "cloak/io/metadata.h"

namespace fs = std::filesystem;

namespace {

cloak::Image picture(int w, int h, int channels, bool alpha, int depth) {
  cloak::Image img;
  img.width = w;
  img.height = h;
  img.color_channels = channels;
  img.bit_depth = depth;
  for (int i = 0; i < w * h * channels; ++i) img.color.push_back(static_cast<float>(i % 17) / 16);
  if (alpha)
    for (int i = 0; i < w * h; ++i) img.alpha.push_back(i % 3 ? 1.0f : 0.0f);
  return img;
}

void save(const fs::path& file, const std::vector<std::uint8_t>& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<long>(bytes.size()));
}

void save_text(const fs::path& file, const std::string& text) {
  save(file, std::vector<std::uint8_t>(text.begin(), text.end()));
}

// The upstream .pth with each tensor's storage cut to 16 bytes.
void small_pth(const fs::path& from, const fs::path& to) {
  int err = 0;
  zip_t* in = zip_open(from.c_str(), ZIP_RDONLY, &err);
  if (!in) return;
  fs::create_directories(to.parent_path());
  zip_t* out = zip_open(to.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  std::vector<std::vector<char>> kept;
  for (zip_int64_t i = 0; i < zip_get_num_entries(in, 0); ++i) {
    zip_stat_t st;
    zip_stat_index(in, static_cast<zip_uint64_t>(i), 0, &st);
    const std::string name = st.name;
    const bool storage = name.find("/data/") != std::string::npos;
    std::vector<char> data(storage ? std::min<zip_uint64_t>(st.size, 16) : st.size);
    zip_file_t* f = zip_fopen_index(in, static_cast<zip_uint64_t>(i), 0);
    zip_fread(f, data.data(), data.size());
    zip_fclose(f);
    kept.push_back(std::move(data));
    zip_source_t* src = zip_source_buffer(out, kept.back().data(), kept.back().size(), 0);
    zip_file_add(out, name.c_str(), src, ZIP_FL_OVERWRITE);
  }
  zip_close(out);
  zip_close(in);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: make_seeds OUT_DIR [SHARED_MODELS_DIR]\n";
    return 2;
  }
  const fs::path out = argv[1];
  cloak::Image tagged = picture(24, 16, 3, false, 8);
  cloak::set_xmp_properties(tagged.metadata, {{"Xmp.dc.rights", "All rights reserved"}});
  tagged.metadata.png_text = {{"Author", "A. Painter", false}};
  const std::vector<std::pair<std::string, cloak::Image>> images = {
      {"rgb8.png", picture(24, 16, 3, false, 8)},
      {"ga16.png", picture(9, 7, 1, true, 16)},
      {"rgba8.png", picture(12, 12, 3, true, 8)},
      {"tagged.png", tagged},
      {"tagged.jpg", tagged},
      {"gray.jpg", picture(16, 16, 1, false, 8)},
      {"rgba.webp", picture(12, 12, 3, true, 8)},
      {"rgb16.tif", picture(10, 6, 3, false, 16)},
      {"rgb.bmp", picture(8, 8, 3, false, 8)}};
  for (const auto& [name, img] : images) {
    const auto bytes = cloak::encode_image(img, name, 90);
    save(out / "image" / name, bytes);
    save(out / "metadata" / name, bytes);
    if (fs::path(name).extension() == ".png") save(out / "png" / name, bytes);
  }
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("h":{"dtype":"F16","shape":[2],"data_offsets":[16,20]}})";
  std::vector<std::uint8_t> st(8);
  for (int i = 0; i < 8; ++i)
    st[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(header.size() >> (8 * i));
  st.insert(st.end(), header.begin(), header.end());
  st.resize(st.size() + 20, 0x3c);
  save(out / "weights" / "small.safetensors", st);
  if (argc > 2) small_pth(fs::path(argv[2]) / "taesana_encoder.pth", out / "weights" / "small.pth");
  save_text(out / "manifest" / "manifest.json",
            R"({"version":2,"shard":"1/4","images":3,"batch_images":11,"files":{"a.png":)"
            R"({"status":"done","input_sha256":"ab","settings":{"mode":"guard","seed":0},)"
            R"("output":"a.png","output_sha256":"cd","megapixels":0.25,"seconds":4.5,)"
            R"("psnr":41.5,"shift_jpeg75":0.31},)"
            R"("b/c.jpg":{"status":"failed","error":"b/c.jpg: corrupt JPEG"}}})");
  // Since the manifest records its batch: the manifest, a NUL, then its journal's lines.
  const std::string batch =
      R"({"version":3,"batch":{"shards":4,"settings":{"strength":"high"},"sources":)"
      R"({"kind":"list","path":"/art/l.txt","recursive":false,"base":"/art"}},"shard":"1/4",)"
      R"("images":2,"batch_images":9,"files":{"a.png":{"status":"started"}}})" +
      std::string(1, '\0') +
      R"({"key":"a.png","entry":{"status":"done","output_sha256":"cd","psnr":40.5}})"
      "\n"
      R"({"key":"caf\\xE9.png","entry":{"status":"writing","pending_sha256":"ef"}})"
      "\n"
      R"({"key":"cut.png","entry":{"sta)";
  save(out / "manifest" / "with-journal", std::vector<std::uint8_t>(batch.begin(), batch.end()));
  return 0;
}
