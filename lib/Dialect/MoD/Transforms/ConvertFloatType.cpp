//===- ConvertFloatType.cpp - replace one float element type by another ---===//
//
// Used to compile an f64 copy of a model for the gradient checks. The
// rewrite is structural (AttrTypeReplacer over every type and attribute in
// the module), so it needs no knowledge of the ops it passes through.
//
//===----------------------------------------------------------------------===//

#include "mod/Dialect/MoD/Transforms/Passes.h"

#include "mlir/IR/AttrTypeSubElements.h"
#include "mlir/IR/BuiltinAttributes.h"

namespace mlir::mod {
#define GEN_PASS_DEF_CONVERTFLOATTYPE
#include "mod/Dialect/MoD/Transforms/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

static FloatType parseFloatType(MLIRContext *ctx, StringRef name) {
  if (name == "f16")
    return Float16Type::get(ctx);
  if (name == "bf16")
    return BFloat16Type::get(ctx);
  if (name == "f32")
    return Float32Type::get(ctx);
  if (name == "f64")
    return Float64Type::get(ctx);
  return nullptr;
}

static APFloat convertTo(APFloat value, FloatType type) {
  bool losesInfo = false;
  value.convert(type.getFloatSemantics(), APFloat::rmNearestTiesToEven,
                &losesInfo);
  return value;
}

namespace {
struct ConvertFloatTypePass
    : mod::impl::ConvertFloatTypeBase<ConvertFloatTypePass> {
  using Base::Base;
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    FloatType fromType = parseFloatType(ctx, from), toType = parseFloatType(ctx, to);
    if (!fromType || !toType) {
      getOperation().emitError()
          << "--mod-convert-float-type: unknown float type '"
          << (fromType ? to : from) << "' (expected f16, bf16, f32 or f64)";
      return signalPassFailure();
    }
    if (fromType == toType)
      return;

    AttrTypeReplacer replacer;
    replacer.addReplacement([&](FloatType t) -> std::optional<Type> {
      if (t == fromType)
        return Type(toType);
      return std::nullopt;
    });
    // Values must be converted, not reinterpreted: the replacer alone would
    // keep an f32 APFloat under an f64 type.
    replacer.addReplacement([&](FloatAttr attr) -> std::optional<Attribute> {
      if (attr.getType() != fromType)
        return std::nullopt;
      return FloatAttr::get(toType, convertTo(attr.getValue(), toType));
    });
    replacer.addReplacement(
        [&](DenseFPElementsAttr attr) -> std::optional<Attribute> {
          auto type = attr.getType();
          if (type.getElementType() != fromType)
            return std::nullopt;
          return attr.mapValues(toType, [&](const APFloat &v) {
            return convertTo(v, toType).bitcastToAPInt();
          });
        });
    replacer.recursivelyReplaceElementsIn(getOperation(), /*replaceAttrs=*/true,
                                          /*replaceLocs=*/false,
                                          /*replaceTypes=*/true);
  }
};
} // namespace
