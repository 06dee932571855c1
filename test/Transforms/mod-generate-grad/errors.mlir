// RUN: mod-opt %s --split-input-file --verify-diagnostics --mod-generate-grad
// RUN: not mod-opt %s --split-input-file --mod-generate-grad="func=nope" 2>&1 | FileCheck %s --check-prefix=NOFUNC
// RUN: not mod-opt %s --split-input-file --mod-generate-grad="predictor-hidden=0" 2>&1 | FileCheck %s --check-prefix=HIDDEN
// RUN: not mod-opt %s --split-input-file --mod-convert-float-type="from=f32 to=f128" 2>&1 | FileCheck %s --check-prefix=FLOAT
// NOFUNC: error: mod-generate-grad: no function @nope with a body to differentiate
// HIDDEN: error: mod-generate-grad: predictor-hidden must be >= 1
// FLOAT: error: --mod-convert-float-type: unknown float type 'f128' (expected f16, bf16, f32 or f64)

// A body op without a rule is named; nothing is added to the module.
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @forward(%a: tensor<1x2x3xf32> {mod.name = "a", mod.kind = "parameter"}) -> tensor<1x2x3xf32> {
  %e = tensor.empty() : tensor<1x2x3xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a : tensor<1x2x3xf32>) outs(%e : tensor<1x2x3xf32>) {
  ^bb0(%x: f32, %o: f32):
    // expected-error@+1 {{mod-generate-grad: cannot differentiate 'math.atan' in the body of a linalg.generic}}
    %y = math.atan %x : f32
    linalg.yield %y : f32
  } -> tensor<1x2x3xf32>
  return %r : tensor<1x2x3xf32>
}

// -----

func.func @forward(%a: tensor<1x2x3xf32> {mod.name = "a", mod.kind = "parameter"}) -> tensor<1x2x3xf32> {
  %c = arith.constant 0.0 : f32
  // expected-error@+1 {{mod-generate-grad: cannot differentiate 'tensor.pad' (no adjoint rule)}}
  %p = tensor.pad %a low[0, 0, 1] high[0, 0, 0] {
  ^bb0(%i: index, %j: index, %k: index):
    tensor.yield %c : f32
  } : tensor<1x2x3xf32> to tensor<1x2x4xf32>
  %s = tensor.extract_slice %p[0, 0, 0] [1, 2, 3] [1, 1, 1] : tensor<1x2x4xf32> to tensor<1x2x3xf32>
  return %s : tensor<1x2x3xf32>
}

// -----

// A product reduction has no rule.
func.func @forward(%a: tensor<1x2x3xf32> {mod.name = "a", mod.kind = "parameter"}) -> tensor<1x2x3xf32> {
  %one = arith.constant 1.0 : f32
  %e = tensor.empty() : tensor<1x2xf32>
  %f = linalg.fill ins(%one : f32) outs(%e : tensor<1x2xf32>) -> tensor<1x2xf32>
  // expected-error@+1 {{mod-generate-grad: cannot differentiate this reduction: result #0 must be `acc + term`, `max(acc, term)` or `min(acc, term)` with a term that does not read an accumulator}}
  %p = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>],
                       iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a : tensor<1x2x3xf32>) outs(%f : tensor<1x2xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %y = arith.mulf %acc, %x : f32
    linalg.yield %y : f32
  } -> tensor<1x2xf32>
  %e3 = tensor.empty() : tensor<1x2x3xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p : tensor<1x2xf32>) outs(%e3 : tensor<1x2x3xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  } -> tensor<1x2x3xf32>
  return %r : tensor<1x2x3xf32>
}

// -----

// A max reduction whose initial value is differentiable.
func.func @forward(%a: tensor<1x2x3xf32> {mod.name = "a", mod.kind = "parameter"},
                   %m: tensor<1x2xf32> {mod.name = "m", mod.kind = "parameter"}) -> tensor<1x2x3xf32> {
  // expected-error@+1 {{mod-generate-grad: cannot differentiate a max/min reduction whose initial value is differentiable}}
  %p = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>],
                       iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a : tensor<1x2x3xf32>) outs(%m : tensor<1x2xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %y = arith.maximumf %acc, %x : f32
    linalg.yield %y : f32
  } -> tensor<1x2xf32>
  %e3 = tensor.empty() : tensor<1x2x3xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p : tensor<1x2xf32>) outs(%e3 : tensor<1x2x3xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  } -> tensor<1x2x3xf32>
  return %r : tensor<1x2x3xf32>
}

// -----

// An operand read through a map that is not a projection.
func.func @forward(%a: tensor<1x2x3xf32> {mod.name = "a", mod.kind = "parameter"},
                   %d: tensor<4xf32> {mod.name = "d", mod.kind = "parameter"}) -> tensor<1x2x3xf32> {
  %e = tensor.empty() : tensor<1x2x3xf32>
  // expected-error@+1 {{mod-generate-grad: cannot differentiate an operand read through the non-projection map (d0, d1, d2) -> (d1 + d2)}}
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d1 + d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a, %d : tensor<1x2x3xf32>, tensor<4xf32>) outs(%e : tensor<1x2x3xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %z = arith.mulf %x, %y : f32
    linalg.yield %z : f32
  } -> tensor<1x2x3xf32>
  return %r : tensor<1x2x3xf32>
}

// -----

// A lookup in a generic whose maps the scatter loop cannot evaluate.
func.func @forward(%t: tensor<5x3xf32> {mod.name = "t", mod.kind = "parameter"},
                   %ids: tensor<4xi32> {mod.name = "tokens"}) -> tensor<1x2x3xf32> {
  %e = tensor.empty() : tensor<1x2x3xf32>
  // expected-error@+1 {{mod-generate-grad: cannot differentiate a lookup in a linalg.generic with non-projection maps}}
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d1 + d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%ids : tensor<4xi32>) outs(%e : tensor<1x2x3xf32>) {
  ^bb0(%i: i32, %o: f32):
    %row = arith.index_cast %i : i32 to index
    %col = linalg.index 2 : index
    %v = tensor.extract %t[%row, %col] : tensor<5x3xf32>
    linalg.yield %v : f32
  } -> tensor<1x2x3xf32>
  return %r : tensor<1x2x3xf32>
}

// -----

// A slice at a dynamic offset.
func.func @forward(%a: tensor<1x4x3xf32> {mod.name = "a", mod.kind = "parameter"},
                   %ids: tensor<1x2xi32> {mod.name = "tokens"}) -> tensor<1x2x3xf32> {
  %c0 = arith.constant 0 : index
  %i = tensor.extract %ids[%c0, %c0] : tensor<1x2xi32>
  %o = arith.index_cast %i : i32 to index
  // expected-error@+1 {{mod-generate-grad: cannot differentiate a tensor.extract_slice with a dynamic offset, size or stride}}
  %s = tensor.extract_slice %a[0, %o, 0] [1, 2, 3] [1, 1, 1] : tensor<1x4x3xf32> to tensor<1x2x3xf32>
  return %s : tensor<1x2x3xf32>
}

// -----

func.func @forward(%a: tensor<1x2x3xf32> {mod.name = "a", mod.kind = "parameter"},
                   %ids: tensor<1x2xi32> {mod.name = "tokens"}) -> tensor<1x4x3xf32> {
  %e = tensor.empty() : tensor<1x4x3xf32>
  %c0 = arith.constant 0 : index
  %i = tensor.extract %ids[%c0, %c0] : tensor<1x2xi32>
  %o = arith.index_cast %i : i32 to index
  // expected-error@+1 {{mod-generate-grad: cannot differentiate a tensor.insert_slice with a dynamic offset, size or stride}}
  %s = tensor.insert_slice %a into %e[0, %o, 0] [1, 2, 3] [1, 1, 1] : tensor<1x2x3xf32> into tensor<1x4x3xf32>
  return %s : tensor<1x4x3xf32>
}

// -----

// expected-error@+1 {{mod-generate-grad: @forward must return float logits [B,S,V] with a static shape, got 'tensor<2x3xf32>'}}
func.func @forward(%a: tensor<2x3xf32> {mod.name = "a", mod.kind = "parameter"}) -> tensor<2x3xf32> {
  return %a : tensor<2x3xf32>
}

// -----

// expected-error@+1 {{mod-generate-grad: @forward must have one block and return only the logits}}
func.func @forward(%a: tensor<1x2x3xf32> {mod.name = "a", mod.kind = "parameter"}) -> (tensor<1x2x3xf32>, tensor<1x2x3xf32>) {
  return %a, %a : tensor<1x2x3xf32>, tensor<1x2x3xf32>
}

// -----

// expected-error@+1 {{mod-generate-grad: the module already has a @loss_and_grad}}
module {
  func.func @forward(%a: tensor<1x2x3xf32>) -> tensor<1x2x3xf32> {
    return %a : tensor<1x2x3xf32>
  }
  func.func @loss_and_grad() {
    return
  }
}
