// RUN: mod-opt %s --mod-generate-grad --canonicalize --cse | FileCheck %s
// Specializing every generic that is really a named op must find no new
// matmul: the adjoints of matmuls are matmuls, never generic contractions.
// RUN: mod-opt %s --mod-generate-grad --canonicalize --cse --linalg-specialize-generic-ops | FileCheck %s --check-prefix=SPEC
// RUN: mod-opt %s --mod-generate-grad --canonicalize --cse --linalg-specialize-generic-ops | FileCheck %s --check-prefix=SPECB

#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#v = affine_map<(d0, d1, d2) -> (d2)>

// CHECK-LABEL: func.func @forward(
// CHECK-LABEL: func.func @loss_and_grad(
// CHECK-SAME: %[[X:[^:]*]]: tensor<2x3x4xf32> {mod.init = "normal:1.0", mod.kind = "parameter", mod.name = "x"}
// CHECK-SAME: %[[W:[^:]*]]: tensor<4x5xf32> {{.*}}mod.name = "w"}
// CHECK-SAME: %[[K:[^:]*]]: tensor<2x3x4xf32> {{.*}}mod.name = "k"}
// CHECK-SAME: %[[B:[^:]*]]: tensor<5xf32> {{.*}}mod.name = "b"}
// CHECK-SAME: %[[T:[^:]*]]: tensor<2x3xi32> {mod.name = "targets"})
// CHECK-SAME: -> (tensor<f32> {mod.name = "loss"}, tensor<2x3x4xf32> {mod.name = "grad.x"},
// CHECK-SAME: tensor<4x5xf32> {mod.name = "grad.w"}, tensor<2x3x4xf32> {mod.name = "grad.k"},
// CHECK-SAME: tensor<5xf32> {mod.name = "grad.b"})
// Forward: the matmul and batch matmul are kept.
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %[[X]]
// CHECK: %[[Y:.*]] = linalg.matmul ins(%[[FLAT]], %[[W]] :
// CHECK: %[[S:.*]] = linalg.batch_matmul
// The loss: max, sum of exponentials, target logit, mean.
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: math.log
// Backward: dY W^T and X^T dY as matmuls with explicit transposes.
// CHECK-DAG: %[[WT:.*]] = linalg.transpose ins(%[[W]] : tensor<4x5xf32>) {{.*}} permutation = [1, 0]
// CHECK-DAG: %[[DX:.*]] = linalg.matmul ins(%{{.*}}, %[[WT]] : tensor<6x5xf32>, tensor<5x4xf32>)
// CHECK-DAG: %[[XT:.*]] = linalg.transpose ins(%[[FLAT]] : tensor<6x4xf32>) {{.*}} permutation = [1, 0]
// CHECK-DAG: linalg.matmul ins(%[[XT]], %{{.*}} : tensor<4x6xf32>, tensor<6x5xf32>)
// CHECK-DAG: linalg.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<2x3x5xf32>, tensor<2x5x3xf32>)
// CHECK-DAG: linalg.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<2x3x3xf32>, tensor<2x3x5xf32>)
// CHECK-DAG: linalg.batch_matmul ins(%{{.*}}, %[[K]] : tensor<2x3x3xf32>, tensor<2x3x4xf32>)
// CHECK-DAG: linalg.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<2x4x3xf32>, tensor<2x3x3xf32>)
// The bias is broadcast over (b, s): its adjoint reduces over them.
// CHECK-DAG: linalg.generic {indexing_maps = [{{.*}}], iterator_types = ["reduction", "reduction", "parallel"]}
// CHECK: return
// Exactly three matmuls and six batch matmuls (two forward, four adjoint)
// in @loss_and_grad.
// SPEC-LABEL: func.func @loss_and_grad(
// SPEC-COUNT-3: linalg.matmul
// SPEC-NOT: linalg.matmul
// SPEC: return
// SPECB-LABEL: func.func @loss_and_grad(
// SPECB-COUNT-3: linalg.batch_matmul
// SPECB-COUNT-3: linalg.batch_matmul
// SPECB-NOT: linalg.batch_matmul
// SPECB: return
func.func @forward(%x: tensor<2x3x4xf32> {mod.name = "x", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %w: tensor<4x5xf32> {mod.name = "w", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %k: tensor<2x3x4xf32> {mod.name = "k", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %b: tensor<5xf32> {mod.name = "b", mod.kind = "parameter", mod.init = "normal:1.0"})
    -> (tensor<2x3x5xf32> {mod.name = "logits"}) {
  %zero = arith.constant 0.0 : f32
  %flat = tensor.collapse_shape %x [[0, 1], [2]] : tensor<2x3x4xf32> into tensor<6x4xf32>
  %e6 = tensor.empty() : tensor<6x5xf32>
  %z6 = linalg.fill ins(%zero : f32) outs(%e6 : tensor<6x5xf32>) -> tensor<6x5xf32>
  %mm = linalg.matmul ins(%flat, %w : tensor<6x4xf32>, tensor<4x5xf32>) outs(%z6 : tensor<6x5xf32>) -> tensor<6x5xf32>
  %y = tensor.expand_shape %mm [[0, 1], [2]] output_shape [2, 3, 5] : tensor<6x5xf32> into tensor<2x3x5xf32>
  %ekt = tensor.empty() : tensor<2x4x3xf32>
  %kt = linalg.transpose ins(%k : tensor<2x3x4xf32>) outs(%ekt : tensor<2x4x3xf32>) permutation = [0, 2, 1]
  %es = tensor.empty() : tensor<2x3x3xf32>
  %zs = linalg.fill ins(%zero : f32) outs(%es : tensor<2x3x3xf32>) -> tensor<2x3x3xf32>
  %s = linalg.batch_matmul ins(%x, %kt : tensor<2x3x4xf32>, tensor<2x4x3xf32>) outs(%zs : tensor<2x3x3xf32>) -> tensor<2x3x3xf32>
  %eo = tensor.empty() : tensor<2x3x5xf32>
  %zo = linalg.fill ins(%zero : f32) outs(%eo : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  %o = linalg.batch_matmul ins(%s, %y : tensor<2x3x3xf32>, tensor<2x3x5xf32>) outs(%zo : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  %r = linalg.generic {indexing_maps = [#id, #v, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%o, %b : tensor<2x3x5xf32>, tensor<5xf32>) outs(%eo : tensor<2x3x5xf32>) {
  ^bb0(%a: f32, %c: f32, %out: f32):
    %t = arith.addf %a, %c : f32
    linalg.yield %t : f32
  } -> tensor<2x3x5xf32>
  return %r : tensor<2x3x5xf32>
}
