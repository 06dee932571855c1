//===- Import.h - dense transformer front end --------------------*- C++ -*-===//
//
// Builds `func.func @forward` for a Hugging Face style transformer config in
// upstream dialects (func, linalg, tensor, arith, math):
//
//   func.func @forward(<parameters>,
//                      %tokens: tensor<BxSxi32> {mod.name = "tokens"},
//                      %positions: tensor<BxSxi32> {mod.name = "positions"})
//       -> (tensor<BxSxVxf32> {mod.name = "logits"})
//
// Every parameter argument carries `mod.name` (its Hugging Face tensor name),
// `mod.kind = "parameter"` and `mod.init` (`normal:<std>`, `zeros`, `ones`).
//
//===----------------------------------------------------------------------===//

#ifndef MOD_FRONTEND_IMPORT_H
#define MOD_FRONTEND_IMPORT_H

#include "mod/Frontend/Config.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace mlir {
class DialectRegistry;
class MLIRContext;
} // namespace mlir

namespace mlir::mod::frontend {

/// The dialects imported modules use.
void registerImportDialects(DialectRegistry &registry);

/// Builds and verifies the module for `batch` sequences of `seq` tokens.
/// `config` must have passed checkInstanceShape. Returns null (after
/// emitting a diagnostic) only if the built IR fails to verify, which is a
/// bug in the importer.
OwningOpRef<ModuleOp> importTransformer(MLIRContext &context,
                                        const TransformerConfig &config,
                                        int64_t batch, int64_t seq);

} // namespace mlir::mod::frontend

#endif // MOD_FRONTEND_IMPORT_H
