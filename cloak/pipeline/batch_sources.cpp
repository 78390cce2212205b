#include "cloak/pipeline/batch_sources.h"

#include <algorithm>
#include <sstream>

#include "cloak/core/error.h"
#include "cloak/io/file_io.h"
#include "cloak/io/image_io.h"

namespace cloak {

namespace fs = std::filesystem;

namespace {

// Absolute and normal, without a trailing separator: "in/" and "./in" are the folder "in".
fs::path absolute_normal(const fs::path& p) {
  const auto n = fs::absolute(p).lexically_normal();
  return n.has_filename() || n == n.root_path() ? n : n.parent_path();
}

// The deepest folder holding both.
fs::path common_folder(const fs::path& a, const fs::path& b) {
  fs::path common;
  for (auto i = a.begin(), j = b.begin(); i != a.end() && j != b.end() && *i == *j; ++i, ++j)
    common /= *i;
  return common;
}

// A list's entries, absolute ('#' starts a comment; blank lines and a Windows line end allowed).
std::vector<fs::path> list_entries(const fs::path& list) {
  const auto bytes = read_file(list);
  std::istringstream lines(std::string(bytes.begin(), bytes.end()));
  std::vector<fs::path> entries;
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    entries.push_back((list.parent_path() / line).lexically_normal());
  }
  return entries;
}

// A folder's image files. With its sub-folders, a link to a folder is followed unless it leads
// back into the folder itself (those files are found by their own path) or up around itself.
std::vector<fs::path> folder_entries(const fs::path& folder, bool recursive) {
  std::vector<fs::path> files;
  std::error_code ec;
  const auto consider = [&](const fs::directory_entry& e) {
    if (e.is_regular_file(ec) && format_from_extension(e.path()))
      files.push_back(absolute_normal(e.path()));
  };
  if (!recursive) {
    for (const auto& e : fs::directory_iterator(folder)) consider(e);
    return files;
  }
  const fs::path root = fs::canonical(folder);
  for (fs::recursive_directory_iterator it(folder, fs::directory_options::follow_directory_symlink),
       end;
       it != end; ++it) {
    if (it->is_symlink(ec) && it->is_directory(ec)) {
      const fs::path target = fs::canonical(it->path(), ec);
      if (ec || is_inside(target, root) ||
          is_inside(fs::canonical(it->path().parent_path(), ec), target))
        it.disable_recursion_pending();
      continue;
    }
    consider(*it);
  }
  return files;
}

}  // namespace

BatchSources BatchSources::of(const fs::path& source, bool recursive) {
  BatchSources s;
  s.path = absolute_normal(source);
  std::error_code ec;
  s.is_list = !fs::is_directory(source, ec);
  s.recursive = recursive && !s.is_list;
  s.base = s.is_list ? s.path.parent_path() : s.path;
  if (s.is_list)
    for (const auto& entry : list_entries(s.path))
      if (!is_inside(entry, s.base)) s.base = common_folder(s.base, entry.parent_path());
  return s;
}

nlohmann::json BatchSources::to_json() const {
  return {{"kind", is_list ? "list" : "folder"},
          {"path", printable(path.string())},
          {"recursive", recursive},
          {"base", printable(base.string())}};
}

BatchSources BatchSources::from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string() || !j.contains("path") ||
      !j["path"].is_string() || !j.contains("base") || !j["base"].is_string())
    throw Error(ErrorKind::Input, "the batch's sources are not recorded as kind, path and base");
  BatchSources s;
  s.is_list = j["kind"] == "list";
  s.path = j["path"].get<std::string>();
  s.recursive = j.value("recursive", false);
  s.base = j["base"].get<std::string>();
  return s;
}

std::string BatchSources::describe() const {
  return (is_list ? "the list " : "the folder ") + printable(path.string()) +
         (recursive ? " with its sub-folders" : "");
}

bool BatchSources::same_as(const BatchSources& o) const {
  return is_list == o.is_list && printable(path.string()) == printable(o.path.string()) &&
         recursive == o.recursive;
}

std::vector<BatchInput> list_inputs(const BatchSources& sources, const fs::path& outdir) {
  std::vector<fs::path> files = sources.is_list ? list_entries(sources.path)
                                                : folder_entries(sources.path, sources.recursive);
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  std::error_code ec;
  const fs::path out_abs = absolute_normal(fs::weakly_canonical(outdir, ec));
  std::vector<BatchInput> inputs;
  for (const auto& file : files) {
    if (is_inside(absolute_normal(fs::weakly_canonical(file, ec)), out_abs)) continue;
    BatchInput in;
    in.file = file;
    in.relative = file.lexically_relative(sources.base);
    if (!is_inside(file, sources.base))
      in.error = "lies outside " + printable(sources.base.string()) +
                 ", the folder this batch's names are relative to (the list gained it after the "
                 "batch began); protect it in a batch of its own";
    in.key = printable(in.relative.generic_string());
    inputs.push_back(std::move(in));
  }
  return inputs;
}

}  // namespace cloak
