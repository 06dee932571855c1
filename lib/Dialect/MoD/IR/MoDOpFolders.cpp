//===- MoDOpFolders.cpp - MoD dialect folders ------------------------------===//

#include "mod/Dialect/MoD/IR/MoDOps.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Matchers.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::mod;

/// True when every row of the [B,S] i32 constant is exactly 0..S-1.
static bool isIdentityIndices(DenseIntElementsAttr attr) {
  auto type = cast<RankedTensorType>(attr.getType());
  int64_t s = type.getDimSize(1);
  int64_t i = 0;
  for (const APInt &v : attr.getValues<APInt>()) {
    if (v.getSExtValue() != i % s)
      return false;
    ++i;
  }
  return true;
}

/// The largest index constant TopKOp::fold materializes. A folder must not
/// build unbounded data: a [B,S] iota for a large model would be gigabytes
/// (or more than a SmallVector can hold). Larger top-ks over every token
/// stay, and a gather through them still folds (see GatherOp::fold).
static constexpr int64_t kMaxFoldedIndices = 1 << 16;

/// True when `topk` selects every token (k == S), so its indices are
/// 0..S-1 in every row.
static bool selectsEveryToken(TopKOp topk) {
  auto inType = cast<RankedTensorType>(topk.getInput().getType());
  return inType.hasStaticShape() &&
         static_cast<int64_t>(topk.getK()) == inType.getDimSize(1);
}

/// With k == S every token is selected; in ascending order the indices are
/// 0..S-1 in every row and the values are the scores themselves.
LogicalResult TopKOp::fold(FoldAdaptor, SmallVectorImpl<OpFoldResult> &results) {
  if (!selectsEveryToken(*this))
    return failure();
  auto inType = cast<RankedTensorType>(getInput().getType());
  int64_t b = inType.getDimSize(0), s = inType.getDimSize(1), count;
  if (llvm::MulOverflow(b, s, count) || count > kMaxFoldedIndices)
    return failure();
  SmallVector<int32_t> iota;
  iota.reserve(count);
  for (int64_t row = 0; row < b; ++row)
    for (int64_t i = 0; i < s; ++i)
      iota.push_back(static_cast<int32_t>(i));
  auto idxType = cast<RankedTensorType>(getIndices().getType());
  results.push_back(DenseIntElementsAttr::get(idxType, ArrayRef(iota)));
  results.push_back(getInput());
  return success();
}

/// Gathering every row in order is the identity.
OpFoldResult GatherOp::fold(FoldAdaptor adaptor) {
  auto inType = cast<RankedTensorType>(getInput().getType());
  if (getResult().getType() != inType)
    return {};
  // Indices of a top-k over every token, whether or not that top-k folded.
  if (auto topk = getIndices().getDefiningOp<TopKOp>())
    if (topk.getIndices() == getIndices() && selectsEveryToken(topk))
      return getInput();
  auto idx = dyn_cast_if_present<DenseIntElementsAttr>(adaptor.getIndices());
  if (!idx || !isIdentityIndices(idx))
    return {};
  return getInput();
}
