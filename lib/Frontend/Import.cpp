//===- Import.cpp - the @forward entry point of an imported model ---------===//

#include "mod/Frontend/Import.h"

#include "Families.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/Verifier.h"

#include <cmath>

using namespace mlir;
using namespace mlir::mod::frontend;
using namespace mlir::mod::frontend::detail;

double mlir::mod::frontend::detail::residualProjectionStd(
    const TransformerConfig &config) {
  return kInitStd / std::sqrt(2.0 * static_cast<double>(config.numLayers));
}

void mlir::mod::frontend::registerImportDialects(DialectRegistry &registry) {
  registry.insert<arith::ArithDialect, func::FuncDialect,
                  linalg::LinalgDialect, math::MathDialect,
                  tensor::TensorDialect>();
}

/// Argument and result attributes that mod-compile copies into the manifest.
static constexpr StringLiteral kNameAttr = "mod.name", kKindAttr = "mod.kind",
                               kInitAttr = "mod.init";

OwningOpRef<ModuleOp>
mlir::mod::frontend::importTransformer(MLIRContext &context,
                                       const TransformerConfig &config,
                                       int64_t batch, int64_t seq) {
  DialectRegistry registry;
  registerImportDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();

  ParameterList params;
  if (config.family == ModelFamily::GPT2)
    declareGPT2Parameters(config, params);
  else
    declareLlamaParameters(config, params);

  OpBuilder b(&context);
  Location loc = NameLoc::get(b.getStringAttr(
      Twine("mod-import.") + getModelTypeName(config.family)));
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());

  auto idsType = RankedTensorType::get({batch, seq}, b.getI32Type());
  auto logitsType = RankedTensorType::get({batch, seq, config.vocabSize},
                                          b.getF32Type());
  SmallVector<Type> argTypes;
  SmallVector<DictionaryAttr> argAttrs;
  for (const ParameterSpec &spec : params.specs()) {
    argTypes.push_back(RankedTensorType::get(spec.shape, b.getF32Type()));
    argAttrs.push_back(b.getDictionaryAttr(
        {b.getNamedAttr(kNameAttr, b.getStringAttr(spec.name)),
         b.getNamedAttr(kKindAttr, b.getStringAttr("parameter")),
         b.getNamedAttr(kInitAttr, b.getStringAttr(spec.init))}));
  }
  for (StringRef name : {"tokens", "positions"}) {
    argTypes.push_back(idsType);
    argAttrs.push_back(b.getDictionaryAttr(
        {b.getNamedAttr(kNameAttr, b.getStringAttr(name))}));
  }
  auto fnType = b.getFunctionType(argTypes, {logitsType});
  auto fn = func::FuncOp::create(b, loc, "forward", fnType);
  fn.setAllArgAttrs(argAttrs);
  fn.setResultAttr(0, kNameAttr, b.getStringAttr("logits"));

  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  params.bind(entry->getArguments());
  Value tokens = entry->getArgument(params.specs().size());
  Value positions = entry->getArgument(params.specs().size() + 1);

  TransformerBuilder tb(b, batch, seq);
  Value logits =
      config.family == ModelFamily::GPT2
          ? buildGPT2Forward(tb, config, params, tokens, positions)
          : buildLlamaForward(tb, config, params, tokens, positions);
  func::ReturnOp::create(b, loc, logits);

  if (failed(verify(*module)))
    return nullptr;
  return module;
}
