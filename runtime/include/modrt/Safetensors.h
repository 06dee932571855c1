//===- Safetensors.h - Read and write .safetensors files --------*- C++ -*-===//
//
// The safetensors layout: an 8-byte little-endian header length N, N bytes of
// JSON mapping tensor names to {"dtype", "shape", "data_offsets"} (plus an
// optional "__metadata__" string map), then the data buffer that the offsets
// index into.
//
// Files come from anywhere, so the reader validates everything before it
// allocates or copies: sizes are overflow-checked, offsets must lie inside
// the file and must not overlap, and each tensor's byte span must match its
// dtype and shape. Every problem is a modrt::Error naming file and tensor.
//
// The writer never leaves a half-written file behind: it writes to
// "<path>.tmp.<pid>" and renames that over <path> only once it is complete.
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_SAFETENSORS_H
#define MODRT_SAFETENSORS_H

#include "modrt/Tensor.h"

#include <map>
#include <string>

namespace modrt {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

/// Largest header the reader accepts; real headers are a few hundred KiB.
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

SafetensorsFile readSafetensors(const std::string &path);

/// Writes tensors in name order with a space-padded header whose length is a
/// multiple of 8, so every tensor's data starts 8-byte aligned. Throws Error
/// (leaving any existing file at `path` untouched) for a name that is empty,
/// "__metadata__" or not valid UTF-8, or for an I/O failure.
void writeSafetensors(const std::string &path,
                      const std::map<std::string, Tensor> &tensors,
                      const std::map<std::string, std::string> &metadata = {});

} // namespace modrt

#endif // MODRT_SAFETENSORS_H
