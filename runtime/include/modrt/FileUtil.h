//===- FileUtil.h - Whole-file writes that never leave half a file -*- C++ -*-===//

#ifndef MODRT_FILEUTIL_H
#define MODRT_FILEUTIL_H

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace modrt {

/// Writes `bytes` to `path`. A regular (or not yet existing) file is written
/// to a temporary next to it, flushed and renamed into place, so readers see
/// the old file or the new one, never a part. Devices and FIFOs (e.g.
/// /dev/null) are written directly, and "-" means standard output: renaming
/// over them would replace the special file. Throws Error naming the path.
void writeFileAtomically(const std::string &path, std::string_view bytes);

/// The same for a file made of several pieces written one after the other
/// (e.g. a safetensors header and the tensors' data, without a copy).
void writeFileAtomically(const std::string &path,
                         const std::vector<std::string_view> &pieces);

/// writeFileAtomically for callers built without exceptions (the MLIR
/// tools): returns the error message instead of throwing, nullopt on success.
std::optional<std::string>
tryWriteFileAtomically(const std::string &path, std::string_view bytes) noexcept;

/// Reads a whole file. Throws Error naming the path.
std::string readFile(const std::string &path);

} // namespace modrt

#endif // MODRT_FILEUTIL_H
