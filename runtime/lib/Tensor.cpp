//===- Tensor.cpp - Owning host tensor ------------------------------------===//

#include "modrt/Tensor.h"

#include <cmath>
#include <cstdlib>

using namespace modrt;

namespace {
struct DTypeInfo {
  DType dtype;
  size_t size;
  const char *safetensorsName;
  const char *manifestName;
};
} // namespace

static const DTypeInfo kDTypes[] = {
    {DType::F32, 4, "F32", "f32"},   {DType::F64, 8, "F64", "f64"},
    {DType::F16, 2, "F16", "f16"},   {DType::BF16, 2, "BF16", "bf16"},
    {DType::I32, 4, "I32", "i32"},   {DType::I64, 8, "I64", "i64"},
    {DType::I8, 1, "I8", "i8"},      {DType::U8, 1, "U8", "ui8"},
    {DType::Bool, 1, "BOOL", "i1"},
};

static const DTypeInfo &info(DType dtype) {
  for (const DTypeInfo &i : kDTypes)
    if (i.dtype == dtype) return i;
  throw Error("invalid dtype value " + std::to_string(int(dtype)));
}

size_t modrt::dtypeSize(DType dtype) { return info(dtype).size; }
const char *modrt::safetensorsDTypeName(DType dtype) {
  return info(dtype).safetensorsName;
}
const char *modrt::manifestDTypeName(DType dtype) {
  return info(dtype).manifestName;
}

std::optional<DType> modrt::dtypeFromSafetensorsName(std::string_view name) {
  for (const DTypeInfo &i : kDTypes)
    if (name == i.safetensorsName) return i.dtype;
  return std::nullopt;
}

std::optional<DType> modrt::dtypeFromManifestName(std::string_view name) {
  for (const DTypeInfo &i : kDTypes)
    if (name == i.manifestName) return i.dtype;
  if (name == "u8") return DType::U8;
  if (name == "bool") return DType::Bool;
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Half-precision conversions
//===----------------------------------------------------------------------===//

static uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static float bitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float modrt::halfToFloat(uint16_t bits) {
  uint32_t sign = uint32_t(bits & 0x8000) << 16;
  uint32_t exponent = (bits >> 10) & 0x1F;
  uint32_t mantissa = bits & 0x3FF;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in f32.
    float magnitude = std::ldexp(float(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1F) // Inf, or NaN with its payload kept.
    return bitsToFloat(sign | 0x7F800000u | (mantissa << 13));
  return bitsToFloat(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

float modrt::bfloat16ToFloat(uint16_t bits) {
  return bitsToFloat(uint32_t(bits) << 16);
}

uint16_t modrt::floatToHalf(float value) {
  // Round-to-nearest-even via integer arithmetic on the f32 bits, with the
  // subnormal range handled by letting the FPU round an aligned addition.
  const uint32_t f32Infinity = 255u << 23;
  const uint32_t f16Overflow = (127u + 16) << 23; // 2^16: rounds to inf
  const uint32_t denormMagic = ((127u - 15) + (23 - 10) + 1) << 23;
  uint32_t x = floatBits(value);
  uint32_t sign = x & 0x80000000u;
  x ^= sign;
  uint16_t out;
  if (x >= f16Overflow) {
    out = x > f32Infinity ? 0x7E00 : 0x7C00;
  } else if (x < (113u << 23)) { // below 2^-14: subnormal or zero in f16
    float sum = bitsToFloat(x) + bitsToFloat(denormMagic);
    out = uint16_t(floatBits(sum) - denormMagic);
  } else {
    uint32_t mantissaOdd = (x >> 13) & 1;
    x += (uint32_t(15 - 127) << 23) + 0xFFF + mantissaOdd;
    out = uint16_t(x >> 13);
  }
  return uint16_t(out | (sign >> 16));
}

uint16_t modrt::floatToBFloat16(float value) {
  uint32_t x = floatBits(value);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) // NaN: keep it quiet and a NaN
    return uint16_t((x >> 16) | 0x40);
  x += 0x7FFFu + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}

//===----------------------------------------------------------------------===//
// Shapes
//===----------------------------------------------------------------------===//

std::optional<int64_t>
modrt::checkedNumElements(const std::vector<int64_t> &shape, DType dtype) {
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) return std::nullopt;
    if (__builtin_mul_overflow(count, dim, &count)) return std::nullopt;
  }
  int64_t bytes;
  if (__builtin_mul_overflow(count, int64_t(dtypeSize(dtype)), &bytes))
    return std::nullopt;
  return count;
}

std::string modrt::formatShape(const std::vector<int64_t> &shape) {
  std::string out;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += 'x';
    out += std::to_string(shape[i]);
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Tensor
//===----------------------------------------------------------------------===//

void Tensor::AlignedFree::operator()(std::byte *p) const { std::free(p); }

Tensor::Tensor(DType dtype, std::vector<int64_t> shape, NoInit)
    : dtype_(dtype), shape_(std::move(shape)) {
  (void)info(dtype_); // reject out-of-range enum values early
  std::optional<int64_t> count = checkedNumElements(shape_, dtype_);
  if (!count)
    throw Error("invalid tensor shape [" + formatShape(shape_) +
                "]: negative dimension or size overflow");
  numElements_ = *count;
  allocate();
}

Tensor::Tensor(DType dtype, std::vector<int64_t> shape)
    : Tensor(dtype, std::move(shape), NoInit{}) {
  std::memset(storage_.get(), 0, byteSize());
}

Tensor Tensor::uninitialized(DType dtype, std::vector<int64_t> shape) {
  return Tensor(dtype, std::move(shape), NoInit{});
}

void Tensor::allocate() {
  // aligned_alloc wants a multiple of the alignment; zero-size tensors still
  // get a real block so rawData() is never null.
  size_t bytes = byteSize();
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void *p = std::aligned_alloc(64, rounded);
  if (!p)
    throw Error("out of memory allocating " + std::to_string(bytes) +
                " bytes for a tensor of shape [" + formatShape(shape_) + "]");
  storage_.reset(static_cast<std::byte *>(p));
}

Tensor::Tensor(const Tensor &other)
    : dtype_(other.dtype_), shape_(other.shape_),
      numElements_(other.numElements_) {
  allocate();
  if (other.storage_) std::memcpy(storage_.get(), other.storage_.get(), byteSize());
}

Tensor &Tensor::operator=(const Tensor &other) {
  if (this != &other) {
    Tensor copy(other);
    *this = std::move(copy);
  }
  return *this;
}

template <typename T> static T load(const std::byte *base, int64_t index) {
  T value;
  std::memcpy(&value, base + size_t(index) * sizeof(T), sizeof(T));
  return value;
}

double Tensor::elementAsDouble(int64_t index) const {
  if (index < 0 || index >= numElements_)
    throw Error("element index " + std::to_string(index) +
                " out of range for tensor of shape [" + formatShape(shape_) +
                "]");
  const std::byte *base = storage_.get();
  switch (dtype_) {
  case DType::F32: return load<float>(base, index);
  case DType::F64: return load<double>(base, index);
  case DType::F16: return halfToFloat(load<uint16_t>(base, index));
  case DType::BF16: return bfloat16ToFloat(load<uint16_t>(base, index));
  case DType::I32: return load<int32_t>(base, index);
  case DType::I64: return double(load<int64_t>(base, index));
  case DType::I8: return load<int8_t>(base, index);
  case DType::U8: return load<uint8_t>(base, index);
  case DType::Bool: return load<uint8_t>(base, index) != 0 ? 1.0 : 0.0;
  }
  return 0.0;
}

Tensor Tensor::toF32() const {
  if (dtype_ == DType::F32) return *this;
  Tensor out(DType::F32, shape_);
  float *dst = out.data<float>();
  const std::byte *src = storage_.get();
  switch (dtype_) {
  case DType::F16:
    for (int64_t i = 0; i < numElements_; ++i)
      dst[i] = halfToFloat(load<uint16_t>(src, i));
    break;
  case DType::BF16:
    for (int64_t i = 0; i < numElements_; ++i)
      dst[i] = bfloat16ToFloat(load<uint16_t>(src, i));
    break;
  default:
    for (int64_t i = 0; i < numElements_; ++i)
      dst[i] = float(elementAsDouble(i));
    break;
  }
  return out;
}

bool Tensor::identical(const Tensor &other) const {
  return dtype_ == other.dtype_ && shape_ == other.shape_ &&
         std::memcmp(storage_.get(), other.storage_.get(), byteSize()) == 0;
}
