//===- TensorTest.cpp - modrt::Tensor and dtype helpers -------------------===//

#include "modrt/Tensor.h"
#include "TestUtil.h"

#include <cmath>
#include <cstdint>
#include <limits>

using namespace modrt;
using modrt::test::throwsError;

namespace {

const DType kAllDTypes[] = {DType::F32, DType::F64, DType::F16,
                            DType::BF16, DType::I32, DType::I64,
                            DType::I8,  DType::U8,  DType::Bool};

TEST(TensorTest, DTypeNamesRoundTrip) {
  for (DType dtype : kAllDTypes) {
    EXPECT_EQ(dtypeFromSafetensorsName(safetensorsDTypeName(dtype)), dtype);
    EXPECT_EQ(dtypeFromManifestName(manifestDTypeName(dtype)), dtype);
  }
  EXPECT_STREQ(safetensorsDTypeName(DType::BF16), "BF16");
  EXPECT_STREQ(safetensorsDTypeName(DType::Bool), "BOOL");
  EXPECT_STREQ(manifestDTypeName(DType::BF16), "bf16");
  EXPECT_STREQ(manifestDTypeName(DType::I32), "i32");
  EXPECT_EQ(dtypeFromManifestName("u8"), DType::U8);
  EXPECT_EQ(dtypeFromManifestName("bool"), DType::Bool);
  EXPECT_EQ(dtypeFromSafetensorsName("f32"), std::nullopt);
  EXPECT_EQ(dtypeFromSafetensorsName("F8_E4M3"), std::nullopt);
  EXPECT_EQ(dtypeFromManifestName("F32"), std::nullopt);
}

TEST(TensorTest, SizesAndAlignment) {
  Tensor t(DType::BF16, {2, 3, 4});
  EXPECT_EQ(t.rank(), 3);
  EXPECT_EQ(t.numElements(), 24);
  EXPECT_EQ(t.byteSize(), 48u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.rawData()) % 64, 0u);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(t.data<uint16_t>()[i], 0);

  Tensor scalar(DType::F64, {});
  EXPECT_EQ(scalar.numElements(), 1);
  EXPECT_EQ(scalar.byteSize(), 8u);

  Tensor empty(DType::I32, {0, 5});
  EXPECT_EQ(empty.numElements(), 0);
  EXPECT_EQ(empty.byteSize(), 0u);
  EXPECT_NE(empty.rawData(), nullptr);
}

TEST(TensorTest, RejectsInvalidShapes) {
  EXPECT_TRUE(throwsError([] { Tensor(DType::F32, {2, -1}); },
                          {"invalid tensor shape [2x-1]"}));
  EXPECT_TRUE(throwsError([] { Tensor(DType::F32, {int64_t(1) << 40, int64_t(1) << 30}); },
                          {"overflow"}));
  // The element count fits in int64 but its byte size does not.
  EXPECT_TRUE(throwsError([] { Tensor(DType::F64, {int64_t(1) << 61}); },
                          {"overflow"}));
  EXPECT_EQ(checkedNumElements({int64_t(1) << 62}, DType::I8), int64_t(1) << 62);
  EXPECT_EQ(checkedNumElements({int64_t(1) << 62}, DType::I32), std::nullopt);
  EXPECT_EQ(checkedNumElements({0, INT64_MAX}), 0);
}

TEST(TensorTest, TypedAccessChecksTheElementType) {
  Tensor t = Tensor::fromValues<float>(DType::F32, {3}, {1.f, 2.f, 3.f});
  EXPECT_EQ(t.data<float>()[2], 3.f);
  EXPECT_TRUE(throwsError([&] { t.data<int32_t>(); }, {"cannot view a f32"}));
  EXPECT_TRUE(throwsError(
      [] { Tensor::fromValues<float>(DType::F32, {2}, {1.f}); },
      {"got 1 values", "[2]"}));
  EXPECT_TRUE(throwsError(
      [] { Tensor::fromValues<double>(DType::F32, {1}, {1.0}); },
      {"does not match"}));
}

TEST(TensorTest, CopiesAreDeep) {
  Tensor a = Tensor::fromValues<int32_t>(DType::I32, {2}, {7, 8});
  Tensor b = a;
  b.data<int32_t>()[0] = 9;
  EXPECT_EQ(a.data<int32_t>()[0], 7);
  EXPECT_FALSE(a.identical(b));
  b = a;
  EXPECT_TRUE(a.identical(b));
}

TEST(TensorTest, HalfToFloatKnownValues) {
  EXPECT_EQ(halfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(halfToFloat(0xC000), -2.0f);
  EXPECT_EQ(halfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(halfToFloat(0x7BFF), 65504.0f);            // largest finite
  EXPECT_EQ(halfToFloat(0x0400), std::ldexp(1.0f, -14)); // smallest normal
  EXPECT_EQ(halfToFloat(0x0001), std::ldexp(1.0f, -24)); // smallest subnormal
  EXPECT_EQ(halfToFloat(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(halfToFloat(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(halfToFloat(0x0000), 0.0f);
  EXPECT_TRUE(std::signbit(halfToFloat(0x8000)));
  EXPECT_EQ(halfToFloat(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(halfToFloat(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(halfToFloat(0x7E00)));
  EXPECT_TRUE(std::isnan(halfToFloat(0x7C01))); // signalling NaN stays NaN
}

TEST(TensorTest, BFloat16ToFloatKnownValues) {
  EXPECT_EQ(bfloat16ToFloat(0x3F80), 1.0f);
  EXPECT_EQ(bfloat16ToFloat(0xC000), -2.0f);
  EXPECT_EQ(bfloat16ToFloat(0x4049), 3.140625f);
  EXPECT_EQ(bfloat16ToFloat(0x7F7F), 3.38953139e38f); // largest finite
  EXPECT_EQ(bfloat16ToFloat(0x0001), std::ldexp(1.0f, -133)); // subnormal
  EXPECT_TRUE(std::signbit(bfloat16ToFloat(0x8000)));
  EXPECT_EQ(bfloat16ToFloat(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bfloat16ToFloat(0xFF80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bfloat16ToFloat(0x7FC0)));
}

TEST(TensorTest, FloatToHalfRoundsToNearestEven) {
  EXPECT_EQ(floatToHalf(1.0f), 0x3C00);
  EXPECT_EQ(floatToHalf(-2.0f), 0xC000);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7BFF);
  EXPECT_EQ(floatToHalf(65519.0f), 0x7BFF); // below the halfway point
  EXPECT_EQ(floatToHalf(65520.0f), 0x7C00); // halfway to 2^16: rounds to inf
  EXPECT_EQ(floatToHalf(1e10f), 0x7C00);
  EXPECT_EQ(floatToHalf(-1e10f), 0xFC00);
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -25)), 0x0000); // tie to even (0)
  EXPECT_EQ(floatToHalf(std::ldexp(3.0f, -25)), 0x0002); // tie to even (2)
  EXPECT_EQ(floatToHalf(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3C00); // tie: even
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(3.0f, -11)), 0x3C02); // tie: even
  EXPECT_EQ(floatToHalf(-0.0f), 0x8000);
  EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(std::nanf("")))));
}

TEST(TensorTest, FloatToBFloat16RoundsToNearestEven) {
  EXPECT_EQ(floatToBFloat16(1.0f), 0x3F80);
  EXPECT_EQ(floatToBFloat16(3.14159265f), 0x4049);
  EXPECT_EQ(floatToBFloat16(1.0f + std::ldexp(1.0f, -8)), 0x3F80); // tie: even
  EXPECT_EQ(floatToBFloat16(1.0f + std::ldexp(3.0f, -8)), 0x3F82); // tie: even
  EXPECT_EQ(floatToBFloat16(3.4e38f), 0x7F80); // rounds past the max to inf
  EXPECT_TRUE(std::isnan(bfloat16ToFloat(floatToBFloat16(std::nanf("")))));
}

TEST(TensorTest, EveryHalfValueRoundTrips) {
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    float f = halfToFloat(uint16_t(bits));
    float b = bfloat16ToFloat(uint16_t(bits));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(f))));
    } else {
      ASSERT_EQ(floatToHalf(f), bits) << "f16 bits " << bits;
    }
    if (std::isnan(b)) {
      EXPECT_TRUE(std::isnan(bfloat16ToFloat(floatToBFloat16(b))));
    } else {
      ASSERT_EQ(floatToBFloat16(b), bits) << "bf16 bits " << bits;
    }
  }
}

TEST(TensorTest, ToF32ConvertsEveryDType) {
  Tensor half = Tensor::fromValues<uint16_t>(DType::F16, {2, 2},
                                             {0x3C00, 0x0001, 0xFC00, 0xB800});
  Tensor f = half.toF32();
  EXPECT_EQ(f.dtype(), DType::F32);
  EXPECT_EQ(f.shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(f.data<float>()[0], 1.0f);
  EXPECT_EQ(f.data<float>()[1], std::ldexp(1.0f, -24));
  EXPECT_EQ(f.data<float>()[2], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(f.data<float>()[3], -0.5f);

  Tensor bf = Tensor::fromValues<uint16_t>(DType::BF16, {2}, {0x4049, 0xBF80});
  EXPECT_EQ(bf.toF32().data<float>()[0], 3.140625f);
  EXPECT_EQ(bf.toF32().data<float>()[1], -1.0f);

  EXPECT_EQ(Tensor::fromValues<int8_t>(DType::I8, {1}, {-5}).toF32().data<float>()[0], -5.0f);
  EXPECT_EQ(Tensor::fromValues<uint8_t>(DType::U8, {1}, {200}).toF32().data<float>()[0], 200.0f);
  EXPECT_EQ(Tensor::fromValues<int64_t>(DType::I64, {1}, {-3}).toF32().data<float>()[0], -3.0f);
  EXPECT_EQ(Tensor::fromValues<double>(DType::F64, {1}, {0.25}).toF32().data<float>()[0], 0.25f);
  EXPECT_EQ(Tensor::fromValues<uint8_t>(DType::Bool, {2}, {0, 7}).toF32().data<float>()[1], 1.0f);
  EXPECT_EQ(Tensor(DType::I32, {0}).toF32().numElements(), 0);
}

} // namespace
