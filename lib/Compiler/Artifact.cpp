//===- Artifact.cpp - build a directory aside, then swap it in ------------===//

#include "mod/Compiler/Artifact.h"
#include "mod/Compiler/Compile.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>

using namespace mlir;
using namespace mlir::mod;
namespace fs = llvm::sys::fs;
namespace path = llvm::sys::path;

LogicalResult StagedDirectory::fail(const Twine &message) const {
  llvm::errs() << toolName_ << ": error: " << message << "\n";
  return failure();
}

FailureOr<StagedDirectory> StagedDirectory::create(StringRef destination,
                                                   StringRef toolName) {
  auto error = [&](const Twine &message) {
    llvm::errs() << toolName << ": error: " << message << "\n";
    return failure();
  };
  // An absolute path without "." or ".." or trailing separators, so that
  // its parent (where the staging directory goes) is well defined.
  SmallString<256> dest(destination);
  if (std::error_code ec = fs::make_absolute(dest))
    return error("cannot resolve " + destination + ": " + ec.message());
  path::remove_dots(dest, /*remove_dot_dot=*/true);
  while (dest.size() > 1 && path::is_separator(dest.back()))
    dest.pop_back();
  StringRef parent = path::parent_path(dest);
  if (parent.empty() || path::filename(dest).empty())
    return error("cannot use " + destination + " as the output directory");

  fs::file_status status;
  if (!fs::status(dest, status, /*follow=*/false)) {
    if (status.type() == fs::file_type::symlink_file)
      return error(destination + " is a symbolic link; the output directory "
                                 "is replaced as a whole, so give the path it "
                                 "points to");
    if (status.type() != fs::file_type::directory_file)
      return error(destination + " exists and is not a directory");
  }
  if (std::error_code ec = fs::create_directories(parent))
    return error("cannot create " + parent + ": " + ec.message());
  SmallString<256> staging;
  SmallString<256> prefix(parent);
  path::append(prefix, "." + path::filename(dest) + ".staging");
  if (std::error_code ec = fs::createUniqueDirectory(prefix, staging))
    return error("cannot create a staging directory next to " + destination +
                 ": " + ec.message());
  return StagedDirectory(std::string(dest), std::string(staging),
                         toolName.str());
}

StagedDirectory::StagedDirectory(StagedDirectory &&other) noexcept
    : destination_(std::move(other.destination_)),
      staging_(std::move(other.staging_)),
      toolName_(std::move(other.toolName_)) {
  other.staging_.clear();
}

StagedDirectory::~StagedDirectory() {
  if (!staging_.empty())
    (void)fs::remove_directories(staging_, /*IgnoreErrors=*/true);
}

std::string StagedDirectory::path(StringRef name) const {
  SmallString<256> p(staging_);
  path::append(p, name);
  return std::string(p);
}

LogicalResult StagedDirectory::writeFile(StringRef name, StringRef contents) {
  std::string file = path(name);
  std::error_code ec;
  llvm::raw_fd_ostream os(file, ec, fs::OF_None);
  if (ec)
    return fail("cannot write " + file + ": " + ec.message());
  os << contents;
  os.close();
  if (os.has_error()) {
    std::string message = os.error().message();
    os.clear_error();
    return fail("writing " + file + " failed: " + message);
  }
  return success();
}

/// Swaps two directory entries atomically; false with errno set when the
/// kernel or file system cannot.
static bool exchangeEntries(const std::string &a, const std::string &b) {
#ifdef RENAME_EXCHANGE
  return ::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(),
                     RENAME_EXCHANGE) == 0;
#else
  errno = ENOSYS;
  return false;
#endif
}

LogicalResult StagedDirectory::commit() {
  if (staging_.empty())
    return fail("internal error: staging directory committed twice");
  // The simple case: nothing to replace.
  if (::rename(staging_.c_str(), destination_.c_str()) == 0) {
    staging_.clear();
    return success();
  }
  if (errno != EEXIST && errno != ENOTEMPTY)
    return fail("cannot move " + staging_ + " to " + destination_ + ": " +
                std::strerror(errno));
  // `old` ends up holding the previous artifact directory.
  std::string old;
  if (exchangeEntries(staging_, destination_)) {
    old = staging_;
  } else {
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
      return fail("cannot replace " + destination_ + ": " +
                  std::strerror(errno));
    // No atomic exchange here: move the old directory aside first. Between
    // the two renames the destination is missing, but it never holds a mix
    // of two artifacts.
    SmallString<256> aside;
    if (std::error_code ec =
            fs::createUniqueDirectory(destination_ + ".old", aside))
      return fail("cannot replace " + destination_ + ": " + ec.message());
    old = std::string(aside);
    if (::rename(destination_.c_str(), old.c_str()) != 0 ||
        ::rename(staging_.c_str(), destination_.c_str()) != 0) {
      int saved = errno;
      // Put the old directory back if it was moved.
      if (!fs::exists(destination_))
        (void)::rename(old.c_str(), destination_.c_str());
      (void)fs::remove(old);
      return fail("cannot replace " + destination_ + ": " +
                  std::strerror(saved));
    }
  }
  staging_.clear();

  // Keep what the user put next to the old artifact; drop its files.
  llvm::StringSet<> artifactFiles;
  for (StringRef name : getArtifactFileNames())
    artifactFiles.insert(name);
  std::vector<std::string> kept;
  std::error_code ec;
  for (fs::directory_iterator it(old, ec), end; !ec && it != end;
       it.increment(ec))
    if (!artifactFiles.contains(path::filename(it->path())))
      kept.push_back(it->path());
  LogicalResult result = success();
  if (ec)
    result = fail("cannot list the previous " + destination_ + " (now " + old +
                  "): " + ec.message());
  for (const std::string &entry : kept) {
    SmallString<256> target(destination_);
    path::append(target, path::filename(entry));
    if (::rename(entry.c_str(), target.c_str()) != 0)
      result = fail("cannot move " + entry + " into the new " + destination_ +
                    ": " + std::strerror(errno) + " (it stays in " + old + ")");
  }
  if (succeeded(result))
    (void)fs::remove_directories(old, /*IgnoreErrors=*/true);
  return result;
}
