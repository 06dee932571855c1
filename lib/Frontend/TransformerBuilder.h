//===- TransformerBuilder.h - IR building blocks for mod-import -*- C++ -*-===//
//
// Emits the pieces every dense transformer is made of (projections,
// normalisations, attention, activations) as upstream func/linalg/tensor/
// arith/math IR on static f32 tensors. The family builders (GPT2.cpp,
// Llama.cpp) compose these; they never create ops themselves, so the IR
// conventions that later passes rely on live in one place:
//   - elementwise maps and reductions are linalg.generic, GEMMs are
//     linalg.matmul / linalg.batch_matmul, weight transposes are
//     linalg.transpose;
//   - anything derived from positions (masks, RoPE angles, position-table
//     reads) reads the positions tensor, never linalg.index on a token axis.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_LIB_FRONTEND_TRANSFORMERBUILDER_H
#define MOD_LIB_FRONTEND_TRANSFORMERBUILDER_H

#include "mlir/Dialect/Utils/ReshapeOpsUtils.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringMap.h"

#include <string>

namespace mlir::mod::frontend::detail {

/// One `@forward` parameter: its Hugging Face name, shape and the runtime's
/// initialisation rule (`normal:<std>`, `zeros` or `ones`).
struct ParameterSpec {
  std::string name;
  SmallVector<int64_t> shape;
  std::string init;
};

/// The parameters of a model in signature order, and once the function
/// exists, the block argument bound to each name.
class ParameterList {
public:
  void add(StringRef name, ArrayRef<int64_t> shape, std::string init);
  ArrayRef<ParameterSpec> specs() const { return entries; }
  void bind(ArrayRef<BlockArgument> arguments);
  /// The argument named `name`; the family builders only ask for names they
  /// declared, so a miss is a bug in mod-import.
  Value get(StringRef name) const;

private:
  SmallVector<ParameterSpec> entries;
  llvm::StringMap<Value> values;
};

/// `normal:<std>` with std printed as %.9g.
std::string normalInit(double stddev);

/// How a projection weight is stored: GPT-2's Conv1D keeps [in, out],
/// torch.nn.Linear keeps [out, in].
enum class WeightLayout { InOut, OutIn };

class TransformerBuilder {
public:
  TransformerBuilder(OpBuilder &builder, int64_t batch, int64_t seq);

  /// Names the ops created next after the Hugging Face module they belong
  /// to (e.g. `transformer.h.3.attn`), so diagnostics can point at a block.
  void setScope(const Twine &moduleName);

  int64_t batch() const { return batchSize; }
  int64_t seq() const { return seqLen; }

  //===--- Tensors --------------------------------------------------------===//
  RankedTensorType f32Type(ArrayRef<int64_t> shape);
  Value empty(ArrayRef<int64_t> shape, Type elementType);
  Value filled(ArrayRef<int64_t> shape, double value);
  Value f32Constant(double value);
  Value f32VectorConstant(ArrayRef<float> values);
  Value transpose(Value input, ArrayRef<int64_t> permutation);
  Value collapse(Value input, ArrayRef<ReassociationIndices> groups);
  Value expand(Value input, ArrayRef<int64_t> shape,
               ArrayRef<ReassociationIndices> groups);
  /// input[..., offset : offset + size] along the last dimension.
  Value sliceLast(Value input, int64_t offset, int64_t size);

  //===--- Linear algebra -------------------------------------------------===//
  /// x[B,S,in] · W (+ bias[out]) -> [B,S,out].
  Value linear(Value x, Value weight, WeightLayout layout,
               Value bias = nullptr);
  Value add(Value lhs, Value rhs);

  //===--- Embeddings and normalisation -----------------------------------===//
  /// table[ids[b,s], :] -> [B,S,D]. Ids are clamped into the table so that a
  /// bad id cannot read outside it.
  Value gatherRows(Value table, Value ids);
  /// (x - mean) / sqrt(var + eps) * weight + bias over the last dimension,
  /// with the biased variance (torch.nn.LayerNorm).
  Value layerNorm(Value x, Value weight, Value bias, double eps);
  /// x / sqrt(mean(x^2) + eps) * weight over the last dimension.
  Value rmsNorm(Value x, Value weight, double eps);

  //===--- Activations ----------------------------------------------------===//
  /// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
  Value geluTanh(Value x);
  /// silu(gate) * up, silu(g) = g / (1 + exp(-g)).
  Value swiGLU(Value gate, Value up);

  //===--- Attention ------------------------------------------------------===//
  /// cos and sin of position * inv_freq, each [B,S,2*invFreq.size()] and
  /// multiplied by `scaling` (YaRN's attention factor; 1 emits no multiply),
  /// with the frequencies duplicated over both halves as Hugging Face does.
  std::pair<Value, Value> ropeTables(Value positions,
                                     ArrayRef<double> invFreq,
                                     double scaling);
  /// x * cos + rotate_half(x) * sin for x[B,S,N,hd] and tables [B,S,hd],
  /// rotate_half(x) = cat(-x[..., hd/2:], x[..., :hd/2]).
  Value applyRope(Value x, Value cos, Value sin);
  /// Causal softmax attention of q[B,S,H,hd] over k, v [B,S,KV,hd]; query
  /// head h reads kv head h / (H / KV). Query i sees key j iff
  /// positions[b,j] <= positions[b,i]. Returns [B,S,H*hd].
  Value attention(Value q, Value k, Value v, Value positions);

private:
  using BodyFn = function_ref<void(OpBuilder &, Location, ValueRange)>;
  /// A linalg.generic reading `inputs` and updating `inits`, one map per
  /// operand; the last `numReductions` loops are reductions.
  SmallVector<Value> generic(ArrayRef<Value> inputs, ArrayRef<Value> inits,
                             ArrayRef<AffineMap> maps, unsigned numReductions,
                             BodyFn body);
  /// Elementwise over `shape`: each input read through its map, one f32
  /// output with the identity map.
  Value map(ArrayRef<Value> inputs, ArrayRef<AffineMap> inputMaps,
            ArrayRef<int64_t> shape, BodyFn body);
  /// Sums `term(x, extras...)` over the last dimension of x; `extras` are
  /// read with the result's (leading-dimension) map.
  Value sumLast(Value x, ArrayRef<Value> extras,
                function_ref<Value(OpBuilder &, Location, ValueRange)> term);
  Value maxLast(Value x);
  /// The identity map of rank n, or the map keeping only `dims`.
  AffineMap identity(unsigned n);
  AffineMap project(unsigned n, ArrayRef<unsigned> dims);
  /// Broadcasts k/v heads [B,S,KV,hd] to [B,S,KV*groups,hd].
  Value repeatKV(Value x, int64_t groups);
  /// [B,S,S] i1: key j visible to query i.
  Value causalMask(Value positions);
  Value softmaxLast(Value scores);

  OpBuilder &b;
  Location loc;
  int64_t batchSize, seqLen;
};

} // namespace mlir::mod::frontend::detail

#endif // MOD_LIB_FRONTEND_TRANSFORMERBUILDER_H
