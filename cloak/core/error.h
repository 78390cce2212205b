// Errors Cloak reports to people: one line naming the file and the problem.
#pragma once

#include <stdexcept>
#include <string>

namespace cloak {

// What went wrong decides the exit code a front end gives.
// NoSpace: the disk (or the quota) is full: the run stops, since every file after would fail too.
enum class ErrorKind { Input, Output, Model, Usage, Cancelled, NoSpace };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace cloak
