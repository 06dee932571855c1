//===- Artifact.h - build a directory aside, then swap it in -----*- C++ -*-===//
//
// A compiled model is a directory whose files only make sense together
// (model.so and the manifest.json describing it). StagedDirectory creates a
// fresh directory next to the destination; the compiler writes every file
// there, and commit() swaps it into place in one rename (renameat2
// RENAME_EXCHANGE where the file system supports it). Readers therefore see
// the old artifact or the new one, never a mix. Files in an existing
// destination that are not artifact files (see getArtifactFileNames) are
// moved into the new directory; the old artifact files are deleted. Without
// commit(), the destructor deletes the staging directory.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_COMPILER_ARTIFACT_H
#define MOD_COMPILER_ARTIFACT_H

#include "mlir/Support/LLVM.h"

#include <string>

namespace mlir::mod {

class StagedDirectory {
public:
  /// Creates the staging directory for `destination` (creating missing
  /// parent directories). Fails, with a message on stderr, when the
  /// destination exists and is not a directory or nothing can be created.
  static FailureOr<StagedDirectory> create(StringRef destination,
                                           StringRef toolName);

  StagedDirectory(StagedDirectory &&other) noexcept;
  StagedDirectory &operator=(StagedDirectory &&) = delete;
  StagedDirectory(const StagedDirectory &) = delete;
  ~StagedDirectory();

  /// Path of `name` inside the staging directory.
  std::string path(StringRef name) const;
  const std::string &destination() const { return destination_; }

  /// Writes `contents` to the file `name` in the staging directory.
  LogicalResult writeFile(StringRef name, StringRef contents);

  /// Moves the staging directory to the destination. After success the
  /// object owns nothing.
  LogicalResult commit();

private:
  StagedDirectory(std::string destination, std::string staging,
                  std::string toolName)
      : destination_(std::move(destination)), staging_(std::move(staging)),
        toolName_(std::move(toolName)) {}
  LogicalResult fail(const Twine &message) const;

  std::string destination_;
  std::string staging_; // empty once committed or moved from
  std::string toolName_;
};

} // namespace mlir::mod

#endif // MOD_COMPILER_ARTIFACT_H
