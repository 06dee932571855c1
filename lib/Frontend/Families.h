//===- Families.h - per-family model definitions ----------------*- C++ -*-===//
//
// Each supported model family declares its parameters (Hugging Face names,
// shapes, init rules, in named_parameters() order) and builds the body of
// @forward from them. Import.cpp owns the function and module around it.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_LIB_FRONTEND_FAMILIES_H
#define MOD_LIB_FRONTEND_FAMILIES_H

#include "TransformerBuilder.h"
#include "mod/Frontend/Config.h"

namespace mlir::mod::frontend::detail {

void declareGPT2Parameters(const TransformerConfig &config,
                           ParameterList &params);
/// Returns the logits [B,S,V].
Value buildGPT2Forward(TransformerBuilder &tb, const TransformerConfig &config,
                       const ParameterList &params, Value tokens,
                       Value positions);

void declareLlamaParameters(const TransformerConfig &config,
                            ParameterList &params);
/// Returns the logits [B,S,V].
Value buildLlamaForward(TransformerBuilder &tb, const TransformerConfig &config,
                        const ParameterList &params, Value tokens,
                        Value positions);

/// Std of the projections that write into the residual stream: GPT-2 scales
/// them by 1/sqrt(2 * n_layer) so the stream's variance does not grow with
/// depth.
double residualProjectionStd(const TransformerConfig &config);

/// Std of every other weight matrix and of the embeddings.
inline constexpr double kInitStd = 0.02;

} // namespace mlir::mod::frontend::detail

#endif // MOD_LIB_FRONTEND_FAMILIES_H
