//===- Sha256.h - SHA-256 (FIPS 180-4) ---------------------------*- C++ -*-===//
//
// The runtime checks a model library against the digest its manifest records
// before dlopen runs any of its code. Implemented here so that libmodrt keeps
// no dependency beyond the C++ standard library and libdl.
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_SHA256_H
#define MODRT_SHA256_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace modrt {

class Sha256 {
public:
  using Digest = std::array<uint8_t, 32>;

  Sha256();
  /// Appends bytes to the message.
  void update(const void *data, size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  /// The digest of everything appended; the object must not be used after.
  Digest finish();

  /// Digest of `bytes` as 64 lowercase hex digits.
  static std::string hex(std::string_view bytes);
  static std::string toHex(const Digest &digest);

private:
  void block(const uint8_t *p);

  uint32_t state_[8];
  uint64_t length_ = 0; // bytes appended
  uint8_t buffer_[64];
  size_t buffered_ = 0;
};

/// Hex SHA-256 of the file at `path`, read through an already open file
/// descriptor `fd` (from its current offset to the end). Throws Error naming
/// `path` on a read error.
std::string sha256OfFile(int fd, const std::string &path);

} // namespace modrt

#endif // MODRT_SHA256_H
