//===- Tensor.h - Owning host tensor ----------------------------*- C++ -*-===//
//
// A dense, row-major host tensor that owns 64-byte-aligned storage (the
// alignment compiled code assumes for vector loads). Its shape and size are
// validated on construction, so every Tensor in existence has a byte size
// that fits in int64 and matches its storage.
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_TENSOR_H
#define MODRT_TENSOR_H

#include "modrt/Error.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace modrt {

enum class DType : uint8_t { F32, F64, F16, BF16, I32, I64, I8, U8, Bool };

/// Bytes per element (Bool is stored as one byte, like MLIR's i1 in memory).
size_t dtypeSize(DType dtype);
/// Safetensors spelling: "F32", "F64", "F16", "BF16", "I32", "I64", "I8",
/// "U8", "BOOL".
const char *safetensorsDTypeName(DType dtype);
std::optional<DType> dtypeFromSafetensorsName(std::string_view name);
/// Manifest spelling, which is the MLIR element type: "f32", "f64", "f16",
/// "bf16", "i32", "i64", "i8", "ui8", "i1". Parsing also accepts "u8" and
/// "bool".
const char *manifestDTypeName(DType dtype);
std::optional<DType> dtypeFromManifestName(std::string_view name);

/// IEEE binary16 / bfloat16 <-> binary32. Widening is exact (subnormals, inf
/// and NaN included); narrowing rounds to nearest even and keeps NaN a NaN.
float halfToFloat(uint16_t bits);
float bfloat16ToFloat(uint16_t bits);
uint16_t floatToHalf(float value);
uint16_t floatToBFloat16(float value);

/// Product of the dimensions, or nullopt when a dimension is negative or the
/// product (or its size in bytes for `dtype`) overflows int64.
std::optional<int64_t> checkedNumElements(const std::vector<int64_t> &shape,
                                          DType dtype = DType::U8);
/// "2x3x4" ("" for a scalar), as used in messages and in printed output.
std::string formatShape(const std::vector<int64_t> &shape);

/// Maps a C++ element type to the dtypes whose storage it may view.
template <typename T> struct DTypeTraits;
template <> struct DTypeTraits<float> { static bool matches(DType d) { return d == DType::F32; } };
template <> struct DTypeTraits<double> { static bool matches(DType d) { return d == DType::F64; } };
template <> struct DTypeTraits<int32_t> { static bool matches(DType d) { return d == DType::I32; } };
template <> struct DTypeTraits<int64_t> { static bool matches(DType d) { return d == DType::I64; } };
template <> struct DTypeTraits<int8_t> { static bool matches(DType d) { return d == DType::I8; } };
template <> struct DTypeTraits<uint8_t> { static bool matches(DType d) { return d == DType::U8 || d == DType::Bool; } };
template <> struct DTypeTraits<bool> { static bool matches(DType d) { return d == DType::Bool; } };
/// Raw 16-bit patterns of f16 and bf16 values.
template <> struct DTypeTraits<uint16_t> { static bool matches(DType d) { return d == DType::F16 || d == DType::BF16; } };

class Tensor {
public:
  /// A scalar f32 zero.
  Tensor() : Tensor(DType::F32, {}) {}
  /// Zero-initialized tensor; throws Error for a negative dimension or a size
  /// that overflows.
  Tensor(DType dtype, std::vector<int64_t> shape);

  /// A tensor whose contents are unspecified (not zeroed): for buffers that
  /// are about to be overwritten completely, such as an entry point's
  /// outputs. Same errors as the zero-initialized constructor.
  static Tensor uninitialized(DType dtype, std::vector<int64_t> shape);

  Tensor(const Tensor &other);
  Tensor &operator=(const Tensor &other);
  Tensor(Tensor &&other) noexcept = default;
  Tensor &operator=(Tensor &&other) noexcept = default;

  /// Builds a tensor from typed values; `values.size()` must match the shape.
  template <typename T>
  static Tensor fromValues(DType dtype, std::vector<int64_t> shape,
                           const std::vector<T> &values) {
    Tensor t(dtype, std::move(shape));
    if (!DTypeTraits<T>::matches(dtype))
      throw Error("element type does not match dtype " +
                  std::string(manifestDTypeName(dtype)));
    if (int64_t(values.size()) != t.numElements())
      throw Error("got " + std::to_string(values.size()) +
                  " values for a tensor of shape [" + formatShape(t.shape()) +
                  "]");
    if (!values.empty())
      std::memcpy(t.rawData(), values.data(), t.byteSize());
    return t;
  }

  DType dtype() const { return dtype_; }
  const std::vector<int64_t> &shape() const { return shape_; }
  int64_t rank() const { return int64_t(shape_.size()); }
  int64_t numElements() const { return numElements_; }
  size_t byteSize() const { return size_t(numElements_) * dtypeSize(dtype_); }

  /// Never null, even for zero-size tensors.
  void *rawData() { return storage_.get(); }
  const void *rawData() const { return storage_.get(); }

  /// Typed view; throws Error when T cannot view this dtype.
  template <typename T> T *data() {
    checkElementType<T>();
    return reinterpret_cast<T *>(storage_.get());
  }
  template <typename T> const T *data() const {
    checkElementType<T>();
    return reinterpret_cast<const T *>(storage_.get());
  }

  /// Converts every element to f32 (integers and f64 by value conversion,
  /// f16/bf16 exactly). Returns a copy when already f32.
  Tensor toF32() const;

  /// Element `index` (flat, row-major) converted to double, for printing and
  /// comparisons.
  double elementAsDouble(int64_t index) const;

  /// Same dtype, shape and bytes.
  bool identical(const Tensor &other) const;

private:
  struct AlignedFree {
    void operator()(std::byte *p) const;
  };
  template <typename T> void checkElementType() const {
    if (!DTypeTraits<T>::matches(dtype_))
      throw Error(std::string("cannot view a ") + manifestDTypeName(dtype_) +
                  " tensor with this element type");
  }
  struct NoInit {};
  Tensor(DType dtype, std::vector<int64_t> shape, NoInit);
  void allocate();

  DType dtype_;
  std::vector<int64_t> shape_;
  int64_t numElements_ = 0;
  std::unique_ptr<std::byte[], AlignedFree> storage_;
};

} // namespace modrt

#endif // MODRT_TENSOR_H
