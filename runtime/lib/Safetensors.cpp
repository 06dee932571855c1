//===- Safetensors.cpp - Read and write .safetensors files ----------------===//

#include "modrt/Safetensors.h"
#include "modrt/FileUtil.h"
#include "modrt/Json.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

// Safetensors data is little-endian and is copied into tensors unchanged.
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "modrt assumes a little-endian host"
#endif

using namespace modrt;

namespace {
/// Closes the descriptor on every exit path.
class FileDescriptor {
public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor &) = delete;
  FileDescriptor &operator=(const FileDescriptor &) = delete;
  int get() const { return fd_; }
  /// Closes now so that a failing close() (e.g. delayed write errors on NFS)
  /// can be reported.
  int close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

private:
  int fd_;
};

struct Span {
  uint64_t begin, end;
  const std::string *name;
};
} // namespace

static std::string errnoText() { return std::strerror(errno); }

/// Reads exactly `size` bytes at `offset`; returns false on a short read
/// (EOF), throws on an I/O error.
static bool readAt(int fd, void *buffer, size_t size, uint64_t offset,
                   const std::string &path) {
  auto *out = static_cast<char *>(buffer);
  while (size > 0) {
    ssize_t n = ::pread(fd, out, size, off_t(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(path + ": read failed: " + errnoText());
    }
    if (n == 0) return false;
    out += n;
    size -= size_t(n);
    offset += uint64_t(n);
  }
  return true;
}

static std::vector<int64_t> parseShape(const Json &json, const std::string &where) {
  if (!json.isArray())
    throw Error(where + "\"shape\" must be an array of integers");
  std::vector<int64_t> shape;
  for (const Json &dim : json.asArray()) {
    if (!dim.isInteger())
      throw Error(where + "\"shape\" must be an array of integers, got " +
                  dim.dump());
    if (dim.asInt() < 0)
      throw Error(where + "negative dimension " + dim.dump() + " in \"shape\"");
    shape.push_back(dim.asInt());
  }
  return shape;
}

SafetensorsFile modrt::readSafetensors(const std::string &path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw Error(path + ": cannot open: " + errnoText());
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    throw Error(path + ": cannot stat: " + errnoText());
  if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
  const uint64_t fileSize = uint64_t(st.st_size);

  if (fileSize < 8)
    throw Error(path + ": file is too short (" + std::to_string(fileSize) +
                " bytes) to hold the 8-byte header length");
  unsigned char lengthBytes[8];
  if (!readAt(fd.get(), lengthBytes, 8, 0, path))
    throw Error(path + ": file is too short to hold the 8-byte header length");
  uint64_t headerLength = 0;
  for (int i = 7; i >= 0; --i) headerLength = (headerLength << 8) | lengthBytes[i];
  if (headerLength > kMaxSafetensorsHeaderBytes)
    throw Error(path + ": header length " + std::to_string(headerLength) +
                " exceeds the limit of 100 MiB");
  if (headerLength > fileSize - 8)
    throw Error(path + ": header length " + std::to_string(headerLength) +
                " exceeds the file size (" + std::to_string(fileSize) +
                " bytes)");

  std::string headerText(size_t(headerLength), '\0');
  if (!readAt(fd.get(), headerText.data(), headerText.size(), 8, path))
    throw Error(path + ": file truncated inside the header");
  Json header;
  try {
    header = Json::parse(headerText);
  } catch (const Error &e) {
    throw Error(path + ": header is not valid JSON: " + e.what());
  }
  if (!header.isObject())
    throw Error(path + ": header is not a JSON object");

  const uint64_t dataStart = 8 + headerLength;
  const uint64_t dataSize = fileSize - dataStart;
  SafetensorsFile result;
  struct Pending {
    const std::string *name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
  };
  std::vector<Pending> pending;

  for (const auto &[name, entry] : header.asObject()) {
    if (name == "__metadata__") {
      if (!entry.isObject())
        throw Error(path + ": \"__metadata__\" must be an object of strings");
      for (const auto &[key, value] : entry.asObject()) {
        if (!value.isString())
          throw Error(path + ": \"__metadata__\" value for key \"" + key +
                      "\" is not a string");
        result.metadata.emplace(key, value.asString());
      }
      continue;
    }
    const std::string where = path + ": tensor '" + name + "': ";
    if (!entry.isObject()) throw Error(where + "entry is not a JSON object");
    const Json *dtypeJson = entry.find("dtype");
    const Json *shapeJson = entry.find("shape");
    const Json *offsetsJson = entry.find("data_offsets");
    if (!dtypeJson || !shapeJson || !offsetsJson)
      throw Error(where + "entry needs \"dtype\", \"shape\" and \"data_offsets\"");
    if (!dtypeJson->isString())
      throw Error(where + "\"dtype\" is not a string");
    std::optional<DType> dtype = dtypeFromSafetensorsName(dtypeJson->asString());
    if (!dtype)
      throw Error(where + "unknown dtype \"" + dtypeJson->asString() + "\"");
    std::vector<int64_t> shape = parseShape(*shapeJson, where);
    std::optional<int64_t> count = checkedNumElements(shape, *dtype);
    if (!count)
      throw Error(where + "shape [" + formatShape(shape) +
                  "] overflows: too many elements");
    const uint64_t expectedBytes = uint64_t(*count) * dtypeSize(*dtype);

    if (!offsetsJson->isArray() || offsetsJson->asArray().size() != 2 ||
        !offsetsJson->asArray()[0].isInteger() ||
        !offsetsJson->asArray()[1].isInteger() ||
        offsetsJson->asArray()[0].asInt() < 0 ||
        offsetsJson->asArray()[1].asInt() < 0)
      throw Error(where + "\"data_offsets\" must be 2 non-negative integers, got " +
                  offsetsJson->dump());
    uint64_t begin = uint64_t(offsetsJson->asArray()[0].asInt());
    uint64_t end = uint64_t(offsetsJson->asArray()[1].asInt());
    if (begin > end)
      throw Error(where + "data_offsets begin " + std::to_string(begin) +
                  " is greater than end " + std::to_string(end));
    if (end > dataSize)
      throw Error(where + "data_offsets end " + std::to_string(end) +
                  " is beyond the data buffer (" + std::to_string(dataSize) +
                  " bytes): file truncated?");
    if (end - begin != expectedBytes)
      throw Error(where + "data_offsets span " + std::to_string(end - begin) +
                  " bytes but " + dtypeJson->asString() + "[" +
                  formatShape(shape) + "] needs " +
                  std::to_string(expectedBytes) + " bytes");
    pending.push_back({&name, *dtype, std::move(shape), begin, end});
  }

  // Overlapping spans would alias two tensors; empty spans cannot overlap.
  std::vector<Span> spans;
  for (const Pending &p : pending)
    if (p.begin != p.end) spans.push_back({p.begin, p.end, p.name});
  std::sort(spans.begin(), spans.end(), [](const Span &a, const Span &b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].begin < spans[i - 1].end)
      throw Error(path + ": tensors '" + *spans[i - 1].name + "' and '" +
                  *spans[i].name + "' overlap in the data buffer");

  for (Pending &p : pending) {
    Tensor tensor(p.dtype, std::move(p.shape));
    if (!readAt(fd.get(), tensor.rawData(), tensor.byteSize(), dataStart + p.begin,
                path))
      throw Error(path + ": tensor '" + *p.name +
                  "': data truncated (file shrank while reading)");
    result.tensors.emplace(*p.name, std::move(tensor));
  }
  return result;
}

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

static std::string buildHeader(const std::string &path,
                               const std::map<std::string, Tensor> &tensors,
                               const std::map<std::string, std::string> &metadata) {
  Json::Object header;
  uint64_t offset = 0;
  for (const auto &[name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__")
      throw Error(path + ": invalid tensor name \"" + name + "\"");
    try {
      (void)Json(name).dump();
    } catch (const Error &e) {
      throw Error(path + ": invalid tensor name: " + e.what());
    }
    uint64_t end;
    if (__builtin_add_overflow(offset, uint64_t(tensor.byteSize()), &end) ||
        end > uint64_t(INT64_MAX))
      throw Error(path + ": tensor '" + name + "': total data size overflows");
    Json::Array shape;
    for (int64_t dim : tensor.shape()) shape.emplace_back(dim);
    Json::Object entry;
    entry.emplace("dtype", safetensorsDTypeName(tensor.dtype()));
    entry.emplace("shape", std::move(shape));
    entry.emplace("data_offsets", Json::Array{Json(offset), Json(end)});
    header.emplace(name, std::move(entry));
    offset = end;
  }
  if (!metadata.empty()) {
    Json::Object meta;
    for (const auto &[key, value] : metadata) meta.emplace(key, value);
    header.emplace("__metadata__", std::move(meta));
  }
  std::string text;
  try {
    text = Json(std::move(header)).dump();
  } catch (const Error &e) {
    throw Error(path + ": invalid metadata: " + e.what());
  }
  // Padding keeps the data buffer (and so every tensor) 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

void modrt::writeSafetensors(const std::string &path,
                             const std::map<std::string, Tensor> &tensors,
                             const std::map<std::string, std::string> &metadata) {
  // Validate everything before touching the file system.
  const std::string header = buildHeader(path, tensors, metadata);

  // Regular files go through a temporary and a rename; devices, FIFOs and
  // "-" are written directly (renaming over /dev/null would replace it).
  char lengthBytes[8];
  uint64_t length = header.size();
  for (int i = 0; i < 8; ++i) lengthBytes[i] = char(uint8_t(length >> (8 * i)));
  std::vector<std::string_view> pieces{std::string_view(lengthBytes, 8), header};
  for (const auto &[name, tensor] : tensors)
    pieces.emplace_back(static_cast<const char *>(tensor.rawData()),
                        tensor.byteSize());
  writeFileAtomically(path, pieces);
}
