//===- InitAllModc.h - register everything modc tools use -------*- C++ -*-===//

#ifndef MOD_INITALLMODC_H
#define MOD_INITALLMODC_H

#include "mlir/IR/DialectRegistry.h"

namespace mlir::mod {

/// The `mod` dialect plus every upstream dialect (and its interface
/// implementations) that modc's inputs and lowerings use.
void registerModcDialects(DialectRegistry &registry);

/// modc's own passes and pipelines plus the upstream passes they are
/// built from, so mod-opt can replay any step of a pipeline.
void registerModcPasses();

} // namespace mlir::mod

#endif // MOD_INITALLMODC_H
