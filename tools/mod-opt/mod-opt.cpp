//===- mod-opt.cpp - modc's optimizer driver -------------------------------===//
//
// mlir-opt with the `mod` dialect, modc's passes and pipelines, and the
// upstream dialects and passes those pipelines are built from.
//
//===----------------------------------------------------------------------===//

#include "mod/InitAllModc.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::mod::registerModcPasses();
  mlir::DialectRegistry registry;
  mlir::mod::registerModcDialects(registry);
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "modc optimizer driver (Mixture-of-Depths passes)\n",
      registry));
}
