//===- ReverseAD.cpp - reverse-mode AD over linalg on tensors -------------===//
//
// Activity, adjoint accumulation and the rules for everything but
// linalg.generic (GenericAdjoint.cpp):
//  - matmuls get transposed-matmul adjoints so they stay BLAS calls.
//  - reshapes, slices, concat, transposes and the mod ops have direct rules.
//
//===----------------------------------------------------------------------===//

#include "ReverseAD.h"

#include "mod/Dialect/MoD/IR/MoDOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SmallBitVector.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::mod;
using namespace mlir::mod::detail;

//===----------------------------------------------------------------------===//
// Builders
//===----------------------------------------------------------------------===//

RankedTensorType mlir::mod::detail::tensorTypeOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

Value mlir::mod::detail::floatConstant(OpBuilder &b, Location loc, Type type,
                                       double value) {
  return arith::ConstantOp::create(b, loc, type, b.getFloatAttr(type, value));
}

Value mlir::mod::detail::filledTensor(OpBuilder &b, Location loc,
                                      RankedTensorType type, double value) {
  Value init = tensor::EmptyOp::create(b, loc, type.getShape(),
                                       type.getElementType());
  Value c = floatConstant(b, loc, type.getElementType(), value);
  return linalg::FillOp::create(b, loc, c, init).getResult(0);
}

Value mlir::mod::detail::buildGeneric(
    OpBuilder &b, Location loc, ValueRange inputs,
    ArrayRef<AffineMap> inputMaps, Value init, AffineMap outMap,
    ArrayRef<utils::IteratorType> iterators,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  SmallVector<AffineMap> maps(inputMaps);
  maps.push_back(outMap);
  return linalg::GenericOp::create(
             b, loc, TypeRange{init.getType()}, inputs, ValueRange{init}, maps,
             iterators,
             [&](OpBuilder &nb, Location nloc, ValueRange args) {
               linalg::YieldOp::create(nb, nloc, body(nb, nloc, args));
             })
      .getResult(0);
}

static SmallVector<utils::IteratorType> parallelLoops(int64_t n) {
  return SmallVector<utils::IteratorType>(n, utils::IteratorType::parallel);
}

Value mlir::mod::detail::addTensors(OpBuilder &b, Location loc, Value lhs,
                                    Value rhs) {
  RankedTensorType type = tensorTypeOf(lhs);
  AffineMap id = b.getMultiDimIdentityMap(type.getRank());
  Value init = tensor::EmptyOp::create(b, loc, type.getShape(),
                                       type.getElementType());
  return buildGeneric(b, loc, {lhs, rhs}, {id, id}, init, id,
                      parallelLoops(type.getRank()),
                      [](OpBuilder &nb, Location nloc, ValueRange args) {
                        return arith::AddFOp::create(nb, nloc, args[0], args[1])
                            .getResult();
                      });
}

Value mlir::mod::detail::transposeTensor(OpBuilder &b, Location loc,
                                         Value input,
                                         ArrayRef<int64_t> permutation) {
  RankedTensorType type = tensorTypeOf(input);
  SmallVector<int64_t> shape;
  for (int64_t d : permutation)
    shape.push_back(type.getDimSize(d));
  Value init = tensor::EmptyOp::create(b, loc, shape, type.getElementType());
  return linalg::TransposeOp::create(b, loc, input, init, permutation)
      .getResult()[0];
}

//===----------------------------------------------------------------------===//
// Activity and accumulation
//===----------------------------------------------------------------------===//

static bool isFloatTensor(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && isa<FloatType>(t.getElementType());
}

void ReverseAD::computeActivity(Block &block, ArrayRef<Value> seeds) {
  for (Value s : seeds)
    active.insert(s);
  for (Operation &op : block) {
    bool anyActive = llvm::any_of(op.getOperands(),
                                  [&](Value v) { return isActive(v); });
    if (!anyActive && op.getNumRegions()) {
      llvm::SetVector<Value> captured;
      getUsedValuesDefinedAbove(op.getRegions(), captured);
      anyActive = llvm::any_of(captured, [&](Value v) { return isActive(v); });
    }
    if (!anyActive)
      continue;
    for (Value r : op.getResults())
      if (isFloatTensor(r))
        active.insert(r);
  }
}

void ReverseAD::addAdjoint(Value v, Value contribution) {
  if (!isActive(v) || stopped.contains(v))
    return;
  auto it = adjoints.find(v);
  if (it == adjoints.end()) {
    adjoints[v] = contribution;
    return;
  }
  it->second = addTensors(b, v.getLoc(), it->second, contribution);
}

//===----------------------------------------------------------------------===//
// Matmuls
//===----------------------------------------------------------------------===//

/// C = init + A B: dA = dC B^T, dB = A^T dC, dInit = dC. Transposes are
/// explicit linalg.transpose ops so the products stay plain (batch) matmuls.
LogicalResult ReverseAD::differentiateMatmul(linalg::LinalgOp op,
                                             bool batched) {
  Location loc = op.getLoc();
  Value dC = getAdjoint(op->getResult(0));
  if (!dC)
    return success();
  Value a = op.getDpsInputOperand(0)->get(), bm = op.getDpsInputOperand(1)->get();
  Value init = op.getDpsInitOperand(0)->get();
  SmallVector<int64_t> perm =
      batched ? SmallVector<int64_t>{0, 2, 1} : SmallVector<int64_t>{1, 0};
  auto product = [&](Value lhs, Value rhs, RankedTensorType type) -> Value {
    Value zeros = filledTensor(b, loc, type, 0.0);
    if (batched)
      return linalg::BatchMatmulOp::create(b, loc, ValueRange{lhs, rhs},
                                           ValueRange{zeros})
          .getResult(0);
    return linalg::MatmulOp::create(b, loc, ValueRange{lhs, rhs},
                                    ValueRange{zeros})
        .getResult(0);
  };
  if (isActive(a))
    addAdjoint(a, product(dC, transposeTensor(b, loc, bm, perm),
                          tensorTypeOf(a)));
  if (isActive(bm))
    addAdjoint(bm, product(transposeTensor(b, loc, a, perm), dC,
                           tensorTypeOf(bm)));
  addAdjoint(init, dC);
  return success();
}

//===----------------------------------------------------------------------===//
// Dispatch
//===----------------------------------------------------------------------===//

/// Static slice geometry, or nullopt when an offset, size or stride is
/// dynamic.
struct SliceGeometry {
  SmallVector<int64_t> offsets, sizes, strides;
  llvm::SmallBitVector dropped; // source dims the slice type drops
};
template <typename SliceOp>
static std::optional<SliceGeometry> sliceGeometry(SliceOp op) {
  SliceGeometry g{SmallVector<int64_t>(op.getStaticOffsets()),
                  SmallVector<int64_t>(op.getStaticSizes()),
                  SmallVector<int64_t>(op.getStaticStrides()),
                  op.getDroppedDims()};
  if (ShapedType::isDynamicShape(g.offsets) ||
      ShapedType::isDynamicShape(g.sizes) ||
      ShapedType::isDynamicShape(g.strides))
    return std::nullopt;
  return g;
}

/// A tensor of `type` (the slice's type) holding `big` read at the slice:
/// element d is big[offset + d * stride] (dropped dims at their offset).
/// A generic over the slice reading with tensor.extract: an indexing map
/// could not express a window that starts at 0 and ends early.
static Value readSlice(OpBuilder &b, Location loc, Value big,
                       RankedTensorType type, const SliceGeometry &g) {
  int64_t rank = type.getRank();
  Value init =
      tensor::EmptyOp::create(b, loc, type.getShape(), type.getElementType());
  return linalg::GenericOp::create(
             b, loc, TypeRange{type}, ValueRange{}, ValueRange{init},
             ArrayRef<AffineMap>{b.getMultiDimIdentityMap(rank)},
             parallelLoops(rank),
             [&](OpBuilder &nb, Location nloc, ValueRange) {
               SmallVector<Value> coords;
               unsigned loop = 0;
               for (size_t i = 0; i < g.offsets.size(); ++i) {
                 Value off = arith::ConstantIndexOp::create(nb, nloc, g.offsets[i]);
                 if (g.dropped.test(i)) {
                   coords.push_back(off);
                   continue;
                 }
                 Value idx = linalg::IndexOp::create(nb, nloc, loop++);
                 Value st = arith::ConstantIndexOp::create(nb, nloc, g.strides[i]);
                 coords.push_back(arith::AddIOp::create(
                     nb, nloc, off, arith::MulIOp::create(nb, nloc, idx, st)));
               }
               Value v = tensor::ExtractOp::create(nb, nloc, big, coords);
               linalg::YieldOp::create(nb, nloc, v);
             })
      .getResult(0);
}

/// A tensor of `type` (the slice's source) that holds `small` (the slice's
/// adjoint) at the slice and `outside` (or zero) everywhere else.
static Value writeSlice(OpBuilder &b, Location loc, Value small, Value outside,
                        RankedTensorType type, const SliceGeometry &g) {
  int64_t rank = type.getRank();
  AffineMap id = b.getMultiDimIdentityMap(rank);
  Value init =
      tensor::EmptyOp::create(b, loc, type.getShape(), type.getElementType());
  SmallVector<Value> ins;
  SmallVector<AffineMap> maps;
  if (outside) {
    ins.push_back(outside);
    maps.push_back(id);
  }
  maps.push_back(id);
  return linalg::GenericOp::create(
             b, loc, TypeRange{type}, ins, ValueRange{init}, maps,
             parallelLoops(rank),
             [&](OpBuilder &nb, Location nloc, ValueRange args) {
               Value inside = arith::ConstantIntOp::create(nb, nloc, 1, 1);
               SmallVector<Value> coords;
               for (int64_t i = 0; i < rank; ++i) {
                 Value idx = linalg::IndexOp::create(nb, nloc, i);
                 Value off = arith::ConstantIndexOp::create(nb, nloc, g.offsets[i]);
                 Value rel = arith::SubIOp::create(nb, nloc, idx, off);
                 Value zeroI = arith::ConstantIndexOp::create(nb, nloc, 0);
                 Value last = arith::ConstantIndexOp::create(
                     nb, nloc, (g.sizes[i] - 1) * g.strides[i]);
                 Value st = arith::ConstantIndexOp::create(nb, nloc, g.strides[i]);
                 Value ok = arith::AndIOp::create(
                     nb, nloc,
                     arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::sge,
                                           rel, zeroI),
                     arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::sle,
                                           rel, last));
                 if (g.strides[i] != 1)
                   ok = arith::AndIOp::create(
                       nb, nloc, ok,
                       arith::CmpIOp::create(
                           nb, nloc, arith::CmpIPredicate::eq,
                           arith::RemSIOp::create(nb, nloc, rel, st), zeroI));
                 inside = arith::AndIOp::create(nb, nloc, inside, ok);
                 if (g.dropped.test(i))
                   continue;
                 // Clamped so that the read stays in bounds where unused.
                 Value q = arith::DivSIOp::create(nb, nloc, rel, st);
                 q = arith::MaxSIOp::create(nb, nloc, q, zeroI);
                 q = arith::MinSIOp::create(
                     nb, nloc, q,
                     arith::ConstantIndexOp::create(nb, nloc, g.sizes[i] - 1));
                 coords.push_back(q);
               }
               Value v = tensor::ExtractOp::create(nb, nloc, small, coords);
               Value other =
                   outside ? args[0]
                           : floatConstant(nb, nloc, v.getType(), 0.0);
               linalg::YieldOp::create(
                   nb, nloc,
                   arith::SelectOp::create(nb, nloc, inside, v, other)
                       .getResult());
             })
      .getResult(0);
}

/// `sigmoid` when a scatter_add scales its update by sigmoid(scale) itself.
static bool hasSigmoidGate(ScatterAddOp op) {
  auto gate = op->getAttrOfType<GateKindAttr>("gate");
  return gate && gate.getValue() == GateKind::Sigmoid;
}

LogicalResult ReverseAD::differentiate(Operation *op) {
  bool anyAdjoint = llvm::any_of(op->getResults(),
                                 [&](Value r) { return getAdjoint(r); });
  if (!anyAdjoint)
    return success();
  Location loc = op->getLoc();
  auto ones = [&](RankedTensorType type) {
    return filledTensor(b, loc, type, 1.0);
  };
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](linalg::GenericOp g) { return differentiateGeneric(g); })
      .Case([&](linalg::MatmulOp m) { return differentiateMatmul(m, false); })
      .Case([&](linalg::BatchMatmulOp m) {
        return differentiateMatmul(m, true);
      })
      .Case([&](linalg::TransposeOp t) {
        ArrayRef<int64_t> perm = t.getPermutation();
        SmallVector<int64_t> inverse(perm.size());
        for (auto [i, p] : llvm::enumerate(perm))
          inverse[p] = i;
        addAdjoint(t.getInput(),
                   transposeTensor(b, loc, getAdjoint(t.getResult()[0]),
                                   inverse));
        return success();
      })
      // The init is overwritten and the value is a scalar, which is never
      // differentiable here.
      .Case([&](linalg::FillOp) { return success(); })
      .Case([&](tensor::CollapseShapeOp c) {
        addAdjoint(c.getSrc(), tensor::ExpandShapeOp::create(
                                   b, loc, c.getSrcType(),
                                   getAdjoint(c.getResult()),
                                   c.getReassociationIndices()));
        return success();
      })
      .Case([&](tensor::ExpandShapeOp e) {
        addAdjoint(e.getSrc(), tensor::CollapseShapeOp::create(
                                   b, loc, e.getSrcType(),
                                   getAdjoint(e.getResult()),
                                   e.getReassociationIndices()));
        return success();
      })
      .Case([&](tensor::ExtractSliceOp s) -> LogicalResult {
        std::optional<SliceGeometry> g = sliceGeometry(s);
        if (!g)
          return s.emitError("mod-generate-grad: cannot differentiate a "
                             "tensor.extract_slice with a dynamic offset, "
                             "size or stride");
        addAdjoint(s.getSource(), writeSlice(b, loc, getAdjoint(s.getResult()),
                                             Value(), s.getSourceType(), *g));
        return success();
      })
      .Case([&](tensor::InsertSliceOp s) -> LogicalResult {
        std::optional<SliceGeometry> g = sliceGeometry(s);
        if (!g)
          return s.emitError("mod-generate-grad: cannot differentiate a "
                             "tensor.insert_slice with a dynamic offset, "
                             "size or stride");
        Value d = getAdjoint(s.getResult());
        if (isActive(s.getSource()))
          addAdjoint(s.getSource(),
                     readSlice(b, loc, d, s.getSourceType(), *g));
        if (isActive(s.getDest())) {
          // Zero where the slice overwrote the destination.
          Value zeros = filledTensor(b, loc, s.getSourceType(), 0.0);
          addAdjoint(s.getDest(), writeSlice(b, loc, zeros, d, s.getType(), *g));
        }
        return success();
      })
      .Case([&](tensor::ConcatOp c) {
        Value d = getAdjoint(c.getResult());
        int64_t dim = c.getDim(), offset = 0;
        for (Value in : c.getInputs()) {
          RankedTensorType inType = tensorTypeOf(in);
          int64_t rank = inType.getRank();
          SliceGeometry g{SmallVector<int64_t>(rank, 0),
                          SmallVector<int64_t>(inType.getShape()),
                          SmallVector<int64_t>(rank, 1),
                          llvm::SmallBitVector(rank)};
          g.offsets[dim] = offset;
          offset += inType.getDimSize(dim);
          if (isActive(in))
            addAdjoint(in, readSlice(b, loc, d, inType, g));
        }
        return success();
      })
      .Case([&](mod::RouterOp r) {
        // r[b,s] = sum_d x[b,s,d] w[d].
        Value dr = getAdjoint(r.getResult());
        Value x = r.getInput(), w = r.getWeight();
        MLIRContext *ctx = b.getContext();
        AffineExpr d0 = b.getAffineDimExpr(0), d1 = b.getAffineDimExpr(1),
                   d2 = b.getAffineDimExpr(2);
        auto bs = AffineMap::get(3, 0, {d0, d1}, ctx);
        auto dd = AffineMap::get(3, 0, {d2}, ctx);
        auto id = b.getMultiDimIdentityMap(3);
        auto mulBody = [](OpBuilder &nb, Location nloc, ValueRange args) {
          Value p = arith::MulFOp::create(nb, nloc, args[0], args[1]);
          return arith::AddFOp::create(nb, nloc, args[2], p).getResult();
        };
        if (isActive(x))
          addAdjoint(x, buildGeneric(b, loc, {dr, w}, {bs, dd},
                                     filledTensor(b, loc, tensorTypeOf(x), 0.0),
                                     id, parallelLoops(3), mulBody));
        if (isActive(w))
          addAdjoint(
              w, buildGeneric(b, loc, {dr, x}, {bs, id},
                              filledTensor(b, loc, tensorTypeOf(w), 0.0), dd,
                              {utils::IteratorType::reduction,
                               utils::IteratorType::reduction,
                               utils::IteratorType::parallel},
                              mulBody));
        return success();
      })
      .Case([&](mod::TopKOp t) {
        // values[b,j] = input[b, idx[b,j]]; the indices carry no gradient.
        Value d = getAdjoint(t.getValues());
        if (!d)
          return success();
        Value zeros = filledTensor(b, loc, tensorTypeOf(t.getInput()), 0.0);
        addAdjoint(t.getInput(),
                   ScatterAddOp::create(b, loc, zeros.getType(), zeros,
                                        t.getIndices(), d,
                                        ones(tensorTypeOf(d))));
        return success();
      })
      .Case([&](mod::GatherOp g) {
        Value d = getAdjoint(g.getResult());
        Value zeros = filledTensor(b, loc, tensorTypeOf(g.getInput()), 0.0);
        auto idxType = tensorTypeOf(g.getIndices());
        auto scaleType = RankedTensorType::get(
            idxType.getShape(), tensorTypeOf(d).getElementType());
        addAdjoint(g.getInput(),
                   ScatterAddOp::create(b, loc, zeros.getType(), zeros,
                                        g.getIndices(), d, ones(scaleType)));
        return success();
      })
      .Case([&](mod::ScatterAddOp s) {
        // out = x; out[b, idx[b,j]] += gate(g[b,j]) * u[b,j].
        Value d = getAdjoint(s.getResult());
        addAdjoint(s.getInput(), d);
        if (!isActive(s.getUpdate()) && !isActive(s.getScale()))
          return success();
        RankedTensorType uType = tensorTypeOf(s.getUpdate());
        int64_t rank = uType.getRank();
        Value dRows = GatherOp::create(b, loc, uType, d, s.getIndices());
        MLIRContext *ctx = b.getContext();
        auto bk = AffineMap::get(
            rank, 0, {b.getAffineDimExpr(0), b.getAffineDimExpr(1)}, ctx);
        auto id = b.getMultiDimIdentityMap(rank);
        bool sigmoid = hasSigmoidGate(s);
        auto gateOf = [&](OpBuilder &nb, Location nloc, Value g) -> Value {
          if (!sigmoid)
            return g;
          Value one = floatConstant(nb, nloc, g.getType(), 1.0);
          Value e = math::ExpOp::create(nb, nloc,
                                        arith::NegFOp::create(nb, nloc, g));
          return arith::DivFOp::create(
              nb, nloc, one, arith::AddFOp::create(nb, nloc, one, e));
        };
        if (isActive(s.getUpdate()))
          addAdjoint(s.getUpdate(),
                     buildGeneric(b, loc, {dRows, s.getScale()}, {id, bk},
                                  tensor::EmptyOp::create(
                                      b, loc, uType.getShape(),
                                      uType.getElementType()),
                                  id, parallelLoops(rank),
                                  [&](OpBuilder &nb, Location nloc,
                                      ValueRange args) -> Value {
                                    return arith::MulFOp::create(
                                        nb, nloc, args[0],
                                        gateOf(nb, nloc, args[1]));
                                  }));
        if (isActive(s.getScale())) {
          SmallVector<utils::IteratorType> its(rank,
                                               utils::IteratorType::reduction);
          its[0] = its[1] = utils::IteratorType::parallel;
          Value dot = buildGeneric(
              b, loc, {dRows, s.getUpdate()}, {id, id},
              filledTensor(b, loc, tensorTypeOf(s.getScale()), 0.0), bk, its,
              [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                Value p = arith::MulFOp::create(nb, nloc, args[0], args[1]);
                return arith::AddFOp::create(nb, nloc, args[2], p);
              });
          if (sigmoid) {
            // sigmoid' = s (1 - s).
            RankedTensorType gType = tensorTypeOf(s.getScale());
            AffineMap gid = b.getMultiDimIdentityMap(2);
            dot = buildGeneric(
                b, loc, {dot, s.getScale()}, {gid, gid},
                tensor::EmptyOp::create(b, loc, gType.getShape(),
                                        gType.getElementType()),
                gid, parallelLoops(2),
                [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                  Value sg = gateOf(nb, nloc, args[1]);
                  Value one = floatConstant(nb, nloc, sg.getType(), 1.0);
                  Value dsg = arith::MulFOp::create(
                      nb, nloc, sg, arith::SubFOp::create(nb, nloc, one, sg));
                  return arith::MulFOp::create(nb, nloc, args[0], dsg);
                });
          }
          addAdjoint(s.getScale(), dot);
        }
        return success();
      })
      .Case([&](tensor::EmptyOp) { return success(); })
      .Default([&](Operation *other) -> LogicalResult {
        bool anyActive = llvm::any_of(other->getOperands(),
                                      [&](Value v) { return isActive(v); });
        if (!anyActive && other->getNumRegions()) {
          llvm::SetVector<Value> captured;
          getUsedValuesDefinedAbove(other->getRegions(), captured);
          anyActive =
              llvm::any_of(captured, [&](Value v) { return isActive(v); });
        }
        if (!anyActive)
          return success();
        return other->emitError("mod-generate-grad: cannot differentiate '")
               << other->getName() << "' (no adjoint rule)";
      });
}
