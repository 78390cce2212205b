// Errors Cloak reports to people: one line naming the file and the problem.
#pragma once

#include <stdexcept>
#include <string>

namespace cloak {

// What went wrong decides the exit code a front end gives.
enum class ErrorKind { Input, Output, Model, Usage, Cancelled };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace cloak
