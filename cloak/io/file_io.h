// Whole-file reads and atomic, never-clobbering writes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cloak/core/error.h"

namespace cloak {

// Whether `path` is `dir` or lies in it, by their spelling alone (no link is followed): both
// absolute, or both relative to the same folder.
bool is_inside(const std::filesystem::path& path, const std::filesystem::path& dir);

// Reads a whole regular file (a folder, FIFO or device is refused before it is opened, so nothing
// can hang); throws cloak::Error (Input) naming the file when it cannot.
std::vector<std::uint8_t> read_file(const std::filesystem::path& file);

// Writes bytes to a temporary file in the destination folder, flushes it to disk and moves it into
// place. Without `overwrite`, an existing destination is never replaced (the check and the move are
// one atomic step). Temporaries left in that folder by killed Cloak processes are removed first.
// Throws cloak::Error (Output) naming the file on failure; nothing is left behind.
void write_file_atomic(const std::filesystem::path& file, const std::vector<std::uint8_t>& bytes,
                       bool overwrite);

// Opens `file` (open(2) `flags`, O_CREAT allowed) without following a link and only when it is a
// plain file, for the files Cloak keeps in an output folder (locks, manifests): a link planted
// there never leads a write outside it. Returns the descriptor; throws cloak::Error (Output), one
// line naming the file as `what` and why (a link, a folder, no permission, ...).
int open_plain_file(const std::filesystem::path& file, int flags, const std::string& what);

// Writes all of `data` to `fd` (retrying short writes); throws cloak::Error naming `file`: NoSpace
// when the disk or quota is full, else Output.
void write_all(int fd, const void* data, std::size_t size, const std::filesystem::path& file);

// The error for a write to `file` that failed with errno `err`: disk_full's when the disk or
// quota is full, else Output ("FILE: write failed: WHY").
Error write_failed(const std::filesystem::path& file, int err);

// The error for a write to `file` that failed with ENOSPC or EDQUOT (errno `err`): NoSpace, which
// stops a run rather than failing one file.
Error disk_full(const std::filesystem::path& file, int err);

// The first line of a small text file (a /proc or /sys entry), without its newline; "" when it
// cannot be read.
std::string read_first_line(const std::filesystem::path& file);

// `text` as valid UTF-8, for messages and JSON: each byte that is not part of a UTF-8 character
// (a Latin-1 file name's "\xe9") written as the four characters \xE9; valid text is unchanged.
std::string printable(const std::string& text);

// This machine's name (gethostname).
std::string host_name();

// Removes the temporary files that Cloak processes no longer running left in `dir` (one level):
// those of this machine whose process is gone, and any over an hour old (a writer that died on
// another machine sharing the folder; a live write takes seconds).
void remove_stale_temporaries(const std::filesystem::path& dir);

// The files a run reads, by identity (device and inode), so that no path Cloak writes can reach
// one of them: not through `..`, a symbolic link or a hard link.
class InputFiles {
 public:
  explicit InputFiles(const std::vector<std::filesystem::path>& inputs);
  // Throws cloak::Error (Output) naming `output` when it is one of the inputs.
  void refuse_as_output(const std::filesystem::path& output) const;

 private:
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::filesystem::path> ids_;
};

}  // namespace cloak
