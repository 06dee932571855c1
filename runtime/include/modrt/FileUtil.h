//===- FileUtil.h - Whole-file writes that never leave half a file -*- C++ -*-===//

#ifndef MODRT_FILEUTIL_H
#define MODRT_FILEUTIL_H

#include <string>
#include <string_view>

namespace modrt {

/// Writes `bytes` to `path`. A regular (or not yet existing) file is written
/// to a temporary next to it, flushed and renamed into place, so readers see
/// the old file or the new one, never a part. Devices and FIFOs (e.g.
/// /dev/null) are written directly, and "-" means standard output: renaming
/// over them would replace the special file. Throws Error naming the path.
void writeFileAtomically(const std::string &path, std::string_view bytes);

/// Reads a whole file. Throws Error naming the path.
std::string readFile(const std::string &path);

} // namespace modrt

#endif // MODRT_FILEUTIL_H
