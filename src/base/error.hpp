// dfp::Error: the one exception type of the library. Its message names the file, tensor, layer
// or option at fault, so that a user can act on it without a debugger.
#pragma once

#include <stdexcept>
#include <string>

namespace dfp {

class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace dfp
