//===- Error.h - Runtime error type -----------------------------*- C++ -*-===//
//
// Every failure in libmodrt (malformed files, bad manifests, argument
// mismatches, dlopen problems) is reported as a modrt::Error whose message
// names the file, tensor or argument involved, so a tool can print it as is.
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_ERROR_H
#define MODRT_ERROR_H

#include <stdexcept>
#include <string>

namespace modrt {

class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

} // namespace modrt

#endif // MODRT_ERROR_H
