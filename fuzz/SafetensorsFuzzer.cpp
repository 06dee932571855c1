//===- SafetensorsFuzzer.cpp - libFuzzer target: the safetensors reader ---===//
//
// Feeds arbitrary bytes to modrt::readSafetensors through an in-memory file
// (memfd). Whatever it accepts must survive a write/read round trip
// unchanged; anything else must be rejected with modrt::Error.
//
//===----------------------------------------------------------------------===//

#include "modrt/Safetensors.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

namespace {
/// An anonymous in-memory file holding `size` bytes, named by its
/// /proc/self/fd path. Closed on destruction.
struct MemFile {
  int fd = -1;
  std::string path;
  MemFile(const uint8_t *data, size_t size) {
    fd = ::memfd_create("modc-fuzz", MFD_CLOEXEC);
    if (fd < 0)
      std::abort();
    for (size_t done = 0; done < size;) {
      ssize_t n = ::write(fd, data + done, size - done);
      if (n <= 0)
        std::abort();
      done += size_t(n);
    }
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  ~MemFile() { ::close(fd); }
};
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MemFile in(data, size);
  modrt::SafetensorsFile file;
  try {
    file = modrt::readSafetensors(in.path);
  } catch (const modrt::Error &) {
    return 0;
  }
  // Accepted: writing it back and reading that again gives the same tensors.
  static const std::string outPath = [] {
    const char *dir = std::getenv("TMPDIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/modc-fuzz-safetensors-" +
           std::to_string(::getpid());
  }();
  modrt::writeSafetensors(outPath, file.tensors, file.metadata);
  modrt::SafetensorsFile again = modrt::readSafetensors(outPath);
  ::unlink(outPath.c_str());
  if (again.tensors.size() != file.tensors.size() ||
      again.metadata != file.metadata)
    std::abort();
  for (const auto &[name, tensor] : file.tensors) {
    auto it = again.tensors.find(name);
    if (it == again.tensors.end() || !it->second.identical(tensor))
      std::abort();
  }
  return 0;
}
