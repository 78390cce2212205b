// What a batch protects and what each image is called in it: a folder (with its sub-folders when
// recursive) or a list file of paths. An image's key is its path relative to the batch's base
// folder: it names the output (mirrored inside the output folder), chooses the shard and keys the
// manifest, so it must never move while the batch lasts.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cloak {

struct BatchSources {
  bool is_list = false;
  std::filesystem::path path;  // absolute: the folder, or the list file
  bool recursive = false;
  // Absolute. A folder's own; for a list, its folder, or when entries lie outside it the deepest
  // folder that holds them all, as the batch's first run found it (the manifest keeps it, so that
  // keys stay put when the list grows).
  std::filesystem::path base;

  // Reads what `source` is; for a list, finds the base from its entries. Throws cloak::Error
  // (Input) naming an unreadable list.
  static BatchSources of(const std::filesystem::path& source, bool recursive);
  // As the manifest records it, and back (throws cloak::Error (Input) when it is not one).
  nlohmann::json to_json() const;
  static BatchSources from_json(const nlohmann::json& j);
  // The sources themselves (kind, path, recursion), in words, and whether two are the same.
  std::string describe() const;
  bool same_as(const BatchSources& other) const;
};

struct BatchInput {
  std::filesystem::path file;      // absolute
  std::filesystem::path relative;  // to the base, as the disk spells it: the output's path
  std::string key;                 // `relative` '/'-separated and printable (file_io.h)
  std::string error;               // why the image cannot be part of this batch, if it cannot
};

// Every image of the batch, sorted by path; files inside `outdir` are never inputs. A folder is
// walked through symbolic links to folders (each folder once: a link back up is not followed
// again). A list entry outside the base gets an error. Throws cloak::Error (Input) when the
// sources cannot be read.
std::vector<BatchInput> list_inputs(const BatchSources& sources,
                                    const std::filesystem::path& outdir);

}  // namespace cloak
