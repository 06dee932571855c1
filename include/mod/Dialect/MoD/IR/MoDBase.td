//===- MoDBase.td - MoD dialect definition -----------------*- tablegen -*-===//
//
// The `mod` dialect models Mixture-of-Depths routing (Raposo et al., 2024) on
// ranked tensors with static shapes.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_DIALECT_MOD_IR_MODBASE_TD
#define MOD_DIALECT_MOD_IR_MODBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def MoD_Dialect : Dialect {
  let name = "mod";
  let cppNamespace = "::mlir::mod";
  let summary = "Mixture-of-Depths routing on static-shape tensors";
  let description = [{
    The `mod` dialect expresses Mixture-of-Depths (MoD) transformer blocks:
    a per-token router scores every token of a sequence, a static-size top-k
    picks the `K` highest-scoring tokens of each sequence (ascending token
    order, ties to the lower index), the block runs on the gathered `[B,K,...]`
    tokens only, and its output, scaled by the gate of the router score, is
    added back at the chosen positions. Every other token skips the block on
    the residual path.

    Because `K` is a static capacity, every op has static shapes. All ops are
    free of side effects and work on tensors; they are lowered to `linalg`,
    `tensor`, `arith` and `scf` by `--mod-lower-to-linalg`.
  }];
  let useDefaultAttributePrinterParser = 1;
  let hasConstantMaterializer = 1;
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::tensor::TensorDialect"];
}

// How the router score scales the block output on the residual path.
def MoD_GateKind : I32EnumAttr<"GateKind", "router score gate", [
    I32EnumAttrCase<"Identity", 0, "identity">,
    I32EnumAttrCase<"Sigmoid", 1, "sigmoid">
  ]> {
  let cppNamespace = "::mlir::mod";
  let genSpecializedAttr = 0;
}

def MoD_GateKindAttr : EnumAttr<MoD_Dialect, MoD_GateKind, "gate"> {
  let assemblyFormat = "$value";
}

class MoD_Op<string mnemonic, list<Trait> traits = []>
    : Op<MoD_Dialect, mnemonic, traits>;

#endif // MOD_DIALECT_MOD_IR_MODBASE_TD
