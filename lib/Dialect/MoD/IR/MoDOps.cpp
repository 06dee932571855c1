//===- MoDOps.cpp - MoD dialect operation verifiers -----------------------===//
//
// Every diagnostic names the offending operand and prints the shapes involved,
// so a user can fix the IR without reading this file.
//
//===----------------------------------------------------------------------===//

#include "mod/Dialect/MoD/IR/MoDOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace mlir::mod;

namespace {
/// Checks shared by the operands of all `mod` ops: a static ranked tensor of
/// the expected rank (or at least `minRank` when `exactRank` is false).
LogicalResult verifyTensor(Operation *op, StringRef name, Type type,
                           int64_t rank, StringRef layout,
                           bool exactRank = true) {
  auto tensor = cast<RankedTensorType>(type);
  if (exactRank ? tensor.getRank() != rank : tensor.getRank() < rank)
    return op->emitOpError() << "expected " << name << " to be a "
                             << (exactRank ? "" : "tensor of rank >= ")
                             << (exactRank ? "rank-" + std::to_string(rank) +
                                                 " tensor"
                                           : std::to_string(rank))
                             << " " << layout << ", got " << type;
  if (!tensor.hasStaticShape())
    return op->emitOpError() << "expected " << name
                             << " to have a static shape, got " << type;
  return success();
}

LogicalResult verifyFloat(Operation *op, StringRef name, Type type) {
  if (!isa<FloatType>(cast<RankedTensorType>(type).getElementType()))
    return op->emitOpError() << "expected " << name
                             << " to have a floating-point element type, got "
                             << type;
  return success();
}

LogicalResult verifyExactType(Operation *op, StringRef name, Type actual,
                              Type expected, StringRef why) {
  if (actual != expected)
    return op->emitOpError() << "expected " << name << " of type " << expected
                             << " (" << why << "), got " << actual;
  return success();
}

/// Indices are `[B,K]` i32 with B equal to the batch of `input`.
LogicalResult verifyIndices(Operation *op, Value input, Value indices) {
  auto idxType = cast<RankedTensorType>(indices.getType());
  if (failed(verifyTensor(op, "indices", idxType, 2, "[B,K]")))
    return failure();
  if (!idxType.getElementType().isSignlessInteger(32))
    return op->emitOpError() << "expected indices to have element type i32, got "
                             << idxType;
  auto inType = cast<RankedTensorType>(input.getType());
  if (idxType.getDimSize(0) != inType.getDimSize(0))
    return op->emitOpError()
           << "indices batch size B=" << idxType.getDimSize(0) << " of "
           << idxType << " does not match input batch size B="
           << inType.getDimSize(0) << " of " << inType;
  return success();
}

/// `[B,S,rest...]` -> `[B,K,rest...]`.
RankedTensorType withTokenCount(RankedTensorType type, int64_t k) {
  SmallVector<int64_t> shape(type.getShape());
  shape[1] = k;
  return type.clone(shape);
}
} // namespace

//===----------------------------------------------------------------------===//
// Custom assembly: `gate(sigmoid)`, omitted for the default identity gate.
//===----------------------------------------------------------------------===//

static ParseResult parseGate(OpAsmParser &parser, GateKindAttr &gate) {
  GateKind kind = GateKind::Identity;
  if (succeeded(parser.parseOptionalKeyword("gate"))) {
    StringRef name;
    SMLoc loc = parser.getCurrentLocation();
    if (parser.parseLParen() || parser.parseKeyword(&name) ||
        parser.parseRParen())
      return failure();
    std::optional<GateKind> parsed = symbolizeGateKind(name);
    if (!parsed)
      return parser.emitError(loc) << "unknown gate '" << name
                                   << "' (expected identity or sigmoid)";
    kind = *parsed;
  }
  gate = GateKindAttr::get(parser.getContext(), kind);
  return success();
}

static void printGate(OpAsmPrinter &printer, Operation *, GateKindAttr gate) {
  if (gate && gate.getValue() != GateKind::Identity)
    printer << "gate(" << stringifyGateKind(gate.getValue()) << ")";
}

//===----------------------------------------------------------------------===//
// RouterOp
//===----------------------------------------------------------------------===//

LogicalResult RouterOp::verify() {
  Operation *op = getOperation();
  auto inType = cast<RankedTensorType>(getInput().getType());
  auto wType = cast<RankedTensorType>(getWeight().getType());
  if (failed(verifyTensor(op, "input", inType, 3, "[B,S,D]")) ||
      failed(verifyFloat(op, "input", inType)) ||
      failed(verifyTensor(op, "router weight", wType, 1, "[D]")))
    return failure();
  auto expectedW =
      RankedTensorType::get({inType.getDimSize(2)}, inType.getElementType());
  if (failed(verifyExactType(op, "router weight", wType, expectedW,
                             "hidden size D of input")))
    return failure();
  auto expectedR = RankedTensorType::get(inType.getShape().take_front(2),
                                         inType.getElementType());
  return verifyExactType(op, "result", getResult().getType(), expectedR,
                         "[B,S] of input");
}

//===----------------------------------------------------------------------===//
// TopKOp
//===----------------------------------------------------------------------===//

LogicalResult TopKOp::verify() {
  Operation *op = getOperation();
  auto inType = cast<RankedTensorType>(getInput().getType());
  if (failed(verifyTensor(op, "input", inType, 2, "[B,S]")) ||
      failed(verifyFloat(op, "input", inType)))
    return failure();
  int64_t k = getK();
  if (k > inType.getDimSize(1))
    return emitOpError() << "k = " << k << " exceeds the sequence length S = "
                         << inType.getDimSize(1) << " of input " << inType;
  Builder b(getContext());
  auto expectedIdx =
      RankedTensorType::get({inType.getDimSize(0), k}, b.getI32Type());
  if (failed(verifyExactType(op, "indices", getIndices().getType(), expectedIdx,
                             "[B,K] i32")))
    return failure();
  return verifyExactType(op, "values", getValues().getType(),
                         withTokenCount(inType, k), "[B,K] of input");
}

//===----------------------------------------------------------------------===//
// GatherOp
//===----------------------------------------------------------------------===//

LogicalResult GatherOp::verify() {
  Operation *op = getOperation();
  auto inType = cast<RankedTensorType>(getInput().getType());
  if (failed(verifyTensor(op, "input", inType, 2, "[B,S,...]",
                          /*exactRank=*/false)) ||
      failed(verifyIndices(op, getInput(), getIndices())))
    return failure();
  int64_t k = cast<RankedTensorType>(getIndices().getType()).getDimSize(1);
  return verifyExactType(op, "result", getResult().getType(),
                         withTokenCount(inType, k),
                         "input with its token axis resized to K");
}

//===----------------------------------------------------------------------===//
// ScatterAddOp
//===----------------------------------------------------------------------===//

LogicalResult ScatterAddOp::verify() {
  Operation *op = getOperation();
  auto inType = cast<RankedTensorType>(getInput().getType());
  if (failed(verifyTensor(op, "input", inType, 2, "[B,S,...]",
                          /*exactRank=*/false)) ||
      failed(verifyFloat(op, "input", inType)) ||
      failed(verifyIndices(op, getInput(), getIndices())))
    return failure();
  int64_t k = cast<RankedTensorType>(getIndices().getType()).getDimSize(1);
  RankedTensorType expectedUpdate = withTokenCount(inType, k);
  if (failed(verifyExactType(op, "update", getUpdate().getType(),
                             expectedUpdate,
                             "input with its token axis resized to K")))
    return failure();
  auto expectedScale = RankedTensorType::get(
      expectedUpdate.getShape().take_front(2), inType.getElementType());
  return verifyExactType(op, "scale", getScale().getType(), expectedScale,
                         "[B,K] of input's element type");
}

//===----------------------------------------------------------------------===//
// RoutedBlockOp
//===----------------------------------------------------------------------===//

LogicalResult RoutedBlockOp::verify() {
  Operation *op = getOperation();
  auto inType = cast<RankedTensorType>(getInput().getType());
  if (failed(verifyTensor(op, "input", inType, 3, "[B,S,D]")) ||
      failed(verifyFloat(op, "input", inType)))
    return failure();
  Builder b(getContext());
  auto expectedPos = RankedTensorType::get(inType.getShape().take_front(2),
                                           b.getI32Type());
  if (failed(verifyExactType(op, "positions", getPositions().getType(),
                             expectedPos, "[B,S] i32 of input")))
    return failure();
  auto expectedW =
      RankedTensorType::get({inType.getDimSize(2)}, inType.getElementType());
  if (failed(verifyExactType(op, "router weight", getRouterWeight().getType(),
                             expectedW, "hidden size D of input")))
    return failure();
  if (static_cast<int64_t>(getCapacity()) > inType.getDimSize(1))
    return emitOpError() << "capacity " << getCapacity()
                         << " exceeds the sequence length S = "
                         << inType.getDimSize(1) << " of input " << inType;
  return success();
}

LogicalResult RoutedBlockOp::verifyRegions() {
  Operation *op = getOperation();
  auto inType = cast<RankedTensorType>(getInput().getType());
  // The op verifier runs first, so the input shape is known to be valid here.
  int64_t k = getCapacity();
  Block &body = getBody().front();
  if (body.getNumArguments() != 2)
    return emitOpError() << "expected the body to take 2 arguments (xk, pk), got "
                         << body.getNumArguments();
  RankedTensorType expectedXk = withTokenCount(inType, k);
  auto expectedPk = RankedTensorType::get(
      {inType.getDimSize(0), k}, IntegerType::get(getContext(), 32));
  if (failed(verifyExactType(op, "body argument #0 (xk)",
                             body.getArgument(0).getType(), expectedXk,
                             "[B,K,D] of input")) ||
      failed(verifyExactType(op, "body argument #1 (pk)",
                             body.getArgument(1).getType(), expectedPk,
                             "[B,K] i32")))
    return failure();
  auto yield = body.empty() ? YieldOp() : dyn_cast<YieldOp>(body.back());
  if (!yield)
    return emitOpError() << "expected the body to end with mod.yield";
  return verifyExactType(op, "body to yield a value", yield.getValue().getType(),
                         expectedXk, "[B,K,D] of input");
}

#define GET_OP_CLASSES
#include "mod/Dialect/MoD/IR/MoDOps.cpp.inc"
