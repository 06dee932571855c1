//===- TransformerBuilder.cpp - IR building blocks for mod-import ---------===//

#include "TransformerBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinAttributes.h"

#include <cassert>
#include <cmath>
#include <cstdio>
#include <limits>

using namespace mlir;
using namespace mlir::mod::frontend::detail;

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

void ParameterList::add(StringRef name, ArrayRef<int64_t> shape,
                        std::string init) {
  entries.push_back({name.str(), SmallVector<int64_t>(shape), std::move(init)});
}

void ParameterList::bind(ArrayRef<BlockArgument> arguments) {
  assert(arguments.size() >= entries.size() && "too few arguments");
  for (auto [spec, arg] : llvm::zip(entries, arguments))
    values[spec.name] = arg;
}

Value ParameterList::get(StringRef name) const {
  auto it = values.find(name);
  assert(it != values.end() && "parameter was never declared");
  return it->second;
}

std::string mlir::mod::frontend::detail::normalInit(double stddev) {
  char text[64];
  std::snprintf(text, sizeof(text), "normal:%.9g", stddev);
  return text;
}

//===----------------------------------------------------------------------===//
// Tensors
//===----------------------------------------------------------------------===//

TransformerBuilder::TransformerBuilder(OpBuilder &builder, int64_t batch,
                                       int64_t seq)
    : b(builder), loc(builder.getUnknownLoc()), batchSize(batch),
      seqLen(seq) {}

void TransformerBuilder::setScope(const Twine &moduleName) {
  loc = NameLoc::get(b.getStringAttr(moduleName));
}

RankedTensorType TransformerBuilder::f32Type(ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, b.getF32Type());
}

Value TransformerBuilder::empty(ArrayRef<int64_t> shape, Type elementType) {
  return tensor::EmptyOp::create(b, loc, shape, elementType);
}

Value TransformerBuilder::filled(ArrayRef<int64_t> shape, double value) {
  Value init = empty(shape, b.getF32Type());
  return linalg::FillOp::create(b, loc, f32Constant(value), init).getResult(0);
}

Value TransformerBuilder::f32Constant(double value) {
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(value));
}

Value TransformerBuilder::f32VectorConstant(ArrayRef<float> values) {
  auto type = f32Type({static_cast<int64_t>(values.size())});
  return arith::ConstantOp::create(b, loc, DenseElementsAttr::get(type, values));
}

Value TransformerBuilder::transpose(Value input,
                                    ArrayRef<int64_t> permutation) {
  ArrayRef<int64_t> inShape = cast<RankedTensorType>(input.getType()).getShape();
  SmallVector<int64_t> outShape;
  for (int64_t dim : permutation)
    outShape.push_back(inShape[dim]);
  Value init = empty(outShape, b.getF32Type());
  return linalg::TransposeOp::create(b, loc, input, init, permutation)
      .getResult()[0];
}

Value TransformerBuilder::collapse(Value input,
                                   ArrayRef<ReassociationIndices> groups) {
  return tensor::CollapseShapeOp::create(b, loc, input, groups);
}

Value TransformerBuilder::expand(Value input, ArrayRef<int64_t> shape,
                                 ArrayRef<ReassociationIndices> groups) {
  return tensor::ExpandShapeOp::create(b, loc, f32Type(shape), input, groups);
}

Value TransformerBuilder::sliceLast(Value input, int64_t offset,
                                    int64_t size) {
  ArrayRef<int64_t> shape = cast<RankedTensorType>(input.getType()).getShape();
  SmallVector<OpFoldResult> offsets(shape.size(), b.getIndexAttr(0));
  SmallVector<OpFoldResult> sizes, strides(shape.size(), b.getIndexAttr(1));
  for (int64_t dim : shape)
    sizes.push_back(b.getIndexAttr(dim));
  offsets.back() = b.getIndexAttr(offset);
  sizes.back() = b.getIndexAttr(size);
  return tensor::ExtractSliceOp::create(b, loc, input, offsets, sizes, strides);
}

//===----------------------------------------------------------------------===//
// linalg.generic helpers
//===----------------------------------------------------------------------===//

AffineMap TransformerBuilder::identity(unsigned n) {
  return AffineMap::getMultiDimIdentityMap(n, b.getContext());
}

AffineMap TransformerBuilder::project(unsigned n, ArrayRef<unsigned> dims) {
  SmallVector<AffineExpr> results;
  for (unsigned dim : dims)
    results.push_back(b.getAffineDimExpr(dim));
  return AffineMap::get(n, 0, results, b.getContext());
}

SmallVector<Value> TransformerBuilder::generic(ArrayRef<Value> inputs,
                                               ArrayRef<Value> inits,
                                               ArrayRef<AffineMap> maps,
                                               unsigned numReductions,
                                               BodyFn body) {
  unsigned numLoops = maps.front().getNumDims();
  SmallVector<utils::IteratorType> iterators(numLoops,
                                             utils::IteratorType::parallel);
  for (unsigned i = numLoops - numReductions; i < numLoops; ++i)
    iterators[i] = utils::IteratorType::reduction;
  SmallVector<Type> resultTypes;
  for (Value init : inits)
    resultTypes.push_back(init.getType());
  auto op = linalg::GenericOp::create(b, loc, resultTypes, inputs, inits, maps,
                                      iterators, body);
  return SmallVector<Value>(op.getResults());
}

Value TransformerBuilder::map(ArrayRef<Value> inputs,
                              ArrayRef<AffineMap> inputMaps,
                              ArrayRef<int64_t> shape, BodyFn body) {
  SmallVector<AffineMap> maps(inputMaps);
  maps.push_back(identity(shape.size()));
  return generic(inputs, {empty(shape, b.getF32Type())}, maps, 0, body)[0];
}

Value TransformerBuilder::sumLast(
    Value x, ArrayRef<Value> extras,
    function_ref<Value(OpBuilder &, Location, ValueRange)> term) {
  ArrayRef<int64_t> shape = cast<RankedTensorType>(x.getType()).getShape();
  unsigned rank = shape.size();
  SmallVector<unsigned> lead;
  for (unsigned i = 0; i + 1 < rank; ++i)
    lead.push_back(i);
  AffineMap leadMap = project(rank, lead);
  SmallVector<Value> inputs{x};
  inputs.append(extras.begin(), extras.end());
  SmallVector<AffineMap> maps{identity(rank)};
  maps.append(extras.size(), leadMap);
  maps.push_back(leadMap);
  Value init = filled(shape.drop_back(), 0.0);
  return generic(inputs, {init}, maps, 1,
                 [&](OpBuilder &nb, Location nl, ValueRange args) {
                   Value t = term(nb, nl, args.drop_back());
                   Value sum = arith::AddFOp::create(nb, nl, args.back(), t);
                   linalg::YieldOp::create(nb, nl, sum);
                 })[0];
}

Value TransformerBuilder::maxLast(Value x) {
  ArrayRef<int64_t> shape = cast<RankedTensorType>(x.getType()).getShape();
  unsigned rank = shape.size();
  SmallVector<unsigned> lead;
  for (unsigned i = 0; i + 1 < rank; ++i)
    lead.push_back(i);
  Value init =
      filled(shape.drop_back(), -std::numeric_limits<double>::infinity());
  return generic({x}, {init}, {identity(rank), project(rank, lead)}, 1,
                 [](OpBuilder &nb, Location nl, ValueRange args) {
                   Value m = arith::MaximumFOp::create(nb, nl, args[0], args[1]);
                   linalg::YieldOp::create(nb, nl, m);
                 })[0];
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

Value TransformerBuilder::linear(Value x, Value weight, WeightLayout layout,
                                 Value bias) {
  ArrayRef<int64_t> xShape = cast<RankedTensorType>(x.getType()).getShape();
  if (layout == WeightLayout::OutIn)
    weight = transpose(weight, {1, 0});
  int64_t rows = xShape[0] * xShape[1];
  int64_t out = cast<RankedTensorType>(weight.getType()).getDimSize(1);
  // One GEMM over all B*S tokens rather than a batched one per sequence.
  Value flat = collapse(x, {{0, 1}, {2}});
  Value acc = filled({rows, out}, 0.0);
  Value product =
      linalg::MatmulOp::create(b, loc, ValueRange{flat, weight}, ValueRange{acc})
          .getResult(0);
  Value y = expand(product, {xShape[0], xShape[1], out}, {{0, 1}, {2}});
  if (!bias)
    return y;
  return map({y, bias}, {identity(3), project(3, {2})},
             {xShape[0], xShape[1], out},
             [](OpBuilder &nb, Location nl, ValueRange args) {
               Value sum = arith::AddFOp::create(nb, nl, args[0], args[1]);
               linalg::YieldOp::create(nb, nl, sum);
             });
}

Value TransformerBuilder::add(Value lhs, Value rhs) {
  ArrayRef<int64_t> shape = cast<RankedTensorType>(lhs.getType()).getShape();
  unsigned rank = shape.size();
  return map({lhs, rhs}, {identity(rank), identity(rank)}, shape,
             [](OpBuilder &nb, Location nl, ValueRange args) {
               Value sum = arith::AddFOp::create(nb, nl, args[0], args[1]);
               linalg::YieldOp::create(nb, nl, sum);
             });
}

//===----------------------------------------------------------------------===//
// Embeddings and normalisation
//===----------------------------------------------------------------------===//

Value TransformerBuilder::gatherRows(Value table, Value ids) {
  ArrayRef<int64_t> tableShape =
      cast<RankedTensorType>(table.getType()).getShape();
  int64_t rows = tableShape[0], width = tableShape[1];
  // The index on dim 2 walks the embedding width, not a token axis; the row
  // comes from the ids tensor itself.
  return map({ids}, {project(3, {0, 1})}, {batchSize, seqLen, width},
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value lo = arith::ConstantIntOp::create(nb, nl, 0, 32);
               Value hi = arith::ConstantIntOp::create(nb, nl, rows - 1, 32);
               Value id = arith::MaxSIOp::create(nb, nl, args[0], lo);
               id = arith::MinSIOp::create(nb, nl, id, hi);
               Value row = arith::IndexCastOp::create(nb, nl,
                                                      nb.getIndexType(), id);
               Value col = linalg::IndexOp::create(nb, nl, 2);
               Value v = tensor::ExtractOp::create(nb, nl, table,
                                                   ValueRange{row, col});
               linalg::YieldOp::create(nb, nl, v);
             });
}

Value TransformerBuilder::layerNorm(Value x, Value weight, Value bias,
                                    double eps) {
  ArrayRef<int64_t> shape = cast<RankedTensorType>(x.getType()).getShape();
  Value width = f32Constant(static_cast<double>(shape.back()));
  Value epsilon = f32Constant(eps);
  Value sum = sumLast(x, {}, [](OpBuilder &, Location, ValueRange args) {
    return args[0];
  });
  Value mean = map({sum}, {identity(2)}, shape.drop_back(),
                   [&](OpBuilder &nb, Location nl, ValueRange args) {
                     Value m = arith::DivFOp::create(nb, nl, args[0], width);
                     linalg::YieldOp::create(nb, nl, m);
                   });
  Value squares =
      sumLast(x, {mean}, [](OpBuilder &nb, Location nl, ValueRange args) {
        Value d = arith::SubFOp::create(nb, nl, args[0], args[1]);
        return arith::MulFOp::create(nb, nl, d, d).getResult();
      });
  return map({x, mean, squares, weight, bias},
             {identity(3), project(3, {0, 1}), project(3, {0, 1}),
              project(3, {2}), project(3, {2})},
             shape, [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value var = arith::DivFOp::create(nb, nl, args[2], width);
               Value sd = math::SqrtOp::create(
                   nb, nl, arith::AddFOp::create(nb, nl, var, epsilon));
               Value centered = arith::SubFOp::create(nb, nl, args[0], args[1]);
               Value normed = arith::DivFOp::create(nb, nl, centered, sd);
               Value scaled = arith::MulFOp::create(nb, nl, normed, args[3]);
               Value out = arith::AddFOp::create(nb, nl, scaled, args[4]);
               linalg::YieldOp::create(nb, nl, out);
             });
}

Value TransformerBuilder::rmsNorm(Value x, Value weight, double eps) {
  ArrayRef<int64_t> shape = cast<RankedTensorType>(x.getType()).getShape();
  Value width = f32Constant(static_cast<double>(shape.back()));
  Value epsilon = f32Constant(eps);
  Value squares =
      sumLast(x, {}, [](OpBuilder &nb, Location nl, ValueRange args) {
        return arith::MulFOp::create(nb, nl, args[0], args[0]).getResult();
      });
  return map({x, squares, weight},
             {identity(3), project(3, {0, 1}), project(3, {2})}, shape,
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value meanSq = arith::DivFOp::create(nb, nl, args[1], width);
               Value rms = math::SqrtOp::create(
                   nb, nl, arith::AddFOp::create(nb, nl, meanSq, epsilon));
               Value normed = arith::DivFOp::create(nb, nl, args[0], rms);
               Value out = arith::MulFOp::create(nb, nl, normed, args[2]);
               linalg::YieldOp::create(nb, nl, out);
             });
}

//===----------------------------------------------------------------------===//
// Activations
//===----------------------------------------------------------------------===//

Value TransformerBuilder::geluTanh(Value x) {
  ArrayRef<int64_t> shape = cast<RankedTensorType>(x.getType()).getShape();
  Value half = f32Constant(0.5), one = f32Constant(1.0);
  Value cubic = f32Constant(0.044715);
  Value scale = f32Constant(std::sqrt(2.0 / M_PI));
  return map({x}, {identity(shape.size())}, shape,
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value v = args[0];
               Value v3 = arith::MulFOp::create(
                   nb, nl, arith::MulFOp::create(nb, nl, v, v), v);
               Value inner = arith::AddFOp::create(
                   nb, nl, v, arith::MulFOp::create(nb, nl, cubic, v3));
               Value t = math::TanhOp::create(
                   nb, nl, arith::MulFOp::create(nb, nl, scale, inner));
               Value halfV = arith::MulFOp::create(nb, nl, half, v);
               Value out = arith::MulFOp::create(
                   nb, nl, halfV, arith::AddFOp::create(nb, nl, one, t));
               linalg::YieldOp::create(nb, nl, out);
             });
}

Value TransformerBuilder::swiGLU(Value gate, Value up) {
  ArrayRef<int64_t> shape = cast<RankedTensorType>(gate.getType()).getShape();
  Value one = f32Constant(1.0);
  unsigned rank = shape.size();
  return map({gate, up}, {identity(rank), identity(rank)}, shape,
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value g = args[0];
               Value e = math::ExpOp::create(
                   nb, nl, arith::NegFOp::create(nb, nl, g));
               Value silu = arith::DivFOp::create(
                   nb, nl, g, arith::AddFOp::create(nb, nl, one, e));
               Value out = arith::MulFOp::create(nb, nl, silu, args[1]);
               linalg::YieldOp::create(nb, nl, out);
             });
}
