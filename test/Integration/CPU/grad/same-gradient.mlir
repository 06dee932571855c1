// Two parameters with the same gradient (logits = a + b), and two the loss
// does not read (zero gradients, like unused parameters): CSE makes their
// gradients one value, which @loss_and_grad must still return as separate
// results (returning a value twice breaks buffer-results-to-out-params).
// RUN: mod-opt %s --mod-convert-float-type --mod-generate-grad -o %t.mlir
// RUN: FileCheck %s --check-prefix=IR < %t.mlir
// RUN: rm -rf %t.dir && mod-compile %t.mlir -o %t.dir
// RUN: mod-gradcheck %t.dir --tol 1e-6 -v | FileCheck %s
// IR-LABEL: func.func @loss_and_grad(
// IR: %[[B:.*]] = linalg.generic {{.*}} attrs = {mod.result = "grad.b"}
// IR: %[[D:.*]] = linalg.generic {{.*}} attrs = {mod.result = "grad.d"}
// IR: return %{{.*}}, %[[A:[^,]*]], %[[B]], %[[C:[^,]*]], %[[D]] :
// CHECK: c ad +0.000000000000e+00 fd +0.000000000000e+00
// CHECK: d ad +0.000000000000e+00 fd +0.000000000000e+00
// CHECK: 5 directions, 3 with a nonzero derivative
// CHECK-SAME: 0 failed

#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @forward(%a: tensor<2x3x5xf32> {mod.name = "a", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %b: tensor<2x3x5xf32> {mod.name = "b", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %c: tensor<2x3x5xf32> {mod.name = "c", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %d: tensor<2x3x5xf32> {mod.name = "d", mod.kind = "parameter", mod.init = "normal:1.0"})
    -> (tensor<2x3x5xf32> {mod.name = "logits"}) {
  %e = tensor.empty() : tensor<2x3x5xf32>
  %r = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a, %b : tensor<2x3x5xf32>, tensor<2x3x5xf32>) outs(%e : tensor<2x3x5xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<2x3x5xf32>
  return %r : tensor<2x3x5xf32>
}
