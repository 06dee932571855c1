//===- FileUtil.cpp - Whole-file reads and atomic writes ------------------===//

#include "modrt/FileUtil.h"

#include "modrt/Error.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace modrt {

static std::string errnoText() { return std::strerror(errno); }

static void writeAllTo(int fd, std::string_view bytes, const std::string &what) {
  const char *p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      throw Error(what + ": write failed: " + errnoText());
    }
    p += n;
    left -= size_t(n);
  }
}

void writeFileAtomically(const std::string &path, std::string_view bytes) {
  writeFileAtomically(path, std::vector<std::string_view>{bytes});
}

std::optional<std::string>
tryWriteFileAtomically(const std::string &path, std::string_view bytes) noexcept {
  try {
    writeFileAtomically(path, bytes);
    return std::nullopt;
  } catch (const std::exception &e) {
    return std::string(e.what());
  } catch (...) {
    return path + ": write failed";
  }
}

void writeFileAtomically(const std::string &path,
                         const std::vector<std::string_view> &pieces) {
  auto writePieces = [&](int fd, const std::string &what) {
    for (std::string_view piece : pieces) writeAllTo(fd, piece, what);
  };
  if (path == "-") {
    writePieces(STDOUT_FILENO, "standard output");
    return;
  }
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode))
      throw Error(path + ": is a directory");
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
      throw Error(path + ": cannot open for writing: " + errnoText());
    try {
      writePieces(fd, path);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
    return;
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw Error(path + ": cannot create temporary file " + tmp + ": " +
                errnoText());
  try {
    writePieces(fd, tmp);
    if (::fsync(fd) != 0)
      throw Error(tmp + ": fsync failed: " + errnoText());
    int rc = ::close(fd);
    fd = -1;
    if (rc != 0)
      throw Error(tmp + ": close failed: " + errnoText());
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      throw Error(path + ": cannot rename " + tmp + " into place: " +
                  errnoText());
  } catch (...) {
    if (fd >= 0)
      ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
}

std::string readFile(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error(path + ": cannot open: " + errnoText());
  std::string data;
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int saved = errno;
      ::close(fd);
      throw Error(path + ": read failed: " + std::strerror(saved));
    }
    if (n == 0)
      break;
    data.append(buffer, size_t(n));
  }
  ::close(fd);
  return data;
}

} // namespace modrt
