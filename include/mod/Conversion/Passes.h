//===- Passes.h - MoD conversions -------------------------------*- C++ -*-===//

#ifndef MOD_CONVERSION_PASSES_H
#define MOD_CONVERSION_PASSES_H

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
namespace mod {

#define GEN_PASS_DECL
#include "mod/Conversion/Passes.h.inc"

/// Patterns lowering router, topk, gather and scatter_add to linalg/tensor/scf.
void populateMoDToLinalgPatterns(RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "mod/Conversion/Passes.h.inc"

} // namespace mod
} // namespace mlir

#endif // MOD_CONVERSION_PASSES_H
