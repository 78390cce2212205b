#include "web/zip_archive.h"

#include <zip.h>

#include "cloak/core/error.h"

namespace cloak::web {

std::vector<std::uint8_t> zip_archive(const std::vector<ZipEntry>& entries) {
  const auto fail = [](const std::string& why) {
    throw Error(ErrorKind::Output, "cloak-results.zip: " + why);
  };
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &err);
  if (!buffer) fail("out of memory");
  zip_source_keep(buffer);  // read back after zip_close
  zip_t* archive = zip_open_from_source(buffer, ZIP_TRUNCATE, &err);
  if (!archive) {
    zip_source_free(buffer);
    fail("cannot create the archive");
  }
  for (const auto& e : entries) {
    zip_source_t* src = zip_source_buffer(archive, e.bytes->data(), e.bytes->size(), 0);
    const zip_int64_t index =
        src ? zip_file_add(archive, e.name.c_str(), src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE) : -1;
    if (index < 0) {
      if (src) zip_source_free(src);
      zip_discard(archive);
      zip_source_free(buffer);
      fail("cannot add " + e.name);
    }
    zip_set_file_compression(archive, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0);
  }
  if (zip_close(archive) != 0) {
    zip_discard(archive);
    zip_source_free(buffer);
    fail("cannot write the archive");
  }
  std::vector<std::uint8_t> bytes;
  zip_stat_t st;
  if (zip_source_stat(buffer, &st) == 0 && zip_source_open(buffer) == 0) {
    bytes.resize(st.size);
    const zip_int64_t n = zip_source_read(buffer, bytes.data(), st.size);
    zip_source_close(buffer);
    if (n != static_cast<zip_int64_t>(st.size)) bytes.clear();
  }
  zip_source_free(buffer);
  if (bytes.empty() && !entries.empty()) fail("cannot read the archive back");
  return bytes;
}

}  // namespace cloak::web
