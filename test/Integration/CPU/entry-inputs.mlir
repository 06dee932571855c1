// Entry points never write into their inputs: @route scatter-adds a routed
// block's update into its residual input %x, which bufferization used to do
// in place in the caller's buffer, so a second call on the same inputs saw a
// different residual. mod-run --repeat calls it three times on the same
// buffers and fails if any call's outputs differ from the first call's; the
// printed values must also equal a single call's.
// @concat needs strided copies (tensor.concat), which used to lower to a
// call of MLIR's memrefCopy helper that model.so does not link, so the model
// did not load.
//
// RUN: rm -rf %t && mod-compile %s --target=cpu -o %t/model
// RUN: mod-run %t/model --entry=route --init-missing --seed=3 --print > %t/once.txt
// RUN: mod-run %t/model --entry=route --init-missing --seed=3 --print --repeat=3 > %t/thrice.txt 2> %t/timing.txt
// RUN: diff %t/once.txt %t/thrice.txt
// RUN: FileCheck %s --check-prefix=TIMING < %t/timing.txt
// RUN: mod-run %t/model --entry=concat --init-missing --seed=3 --print --repeat=2 | FileCheck %s --check-prefix=CONCAT
//
// TIMING: mod-run: route: 3 calls, median {{.*}} ms, fastest {{.*}} ms ({{[0-9]+}} threads)
// CONCAT:      out: f32[2x3]
// CONCAT-NEXT: [0,:] 1 1 0
// CONCAT-NEXT: [1,:] 1 1 0

func.func @route(%x: tensor<1x6x4xf32> {mod.name = "x", mod.kind = "parameter", mod.init = "normal:1.0"},
                 %w: tensor<4xf32> {mod.name = "w", mod.kind = "parameter", mod.init = "normal:1.0"})
    -> (tensor<1x6x4xf32> {mod.name = "out"}) {
  %p = arith.constant dense<[[0, 1, 2, 3, 4, 5]]> : tensor<1x6xi32>
  %out = mod.routed_block(%x, %p, %w) capacity(2)
      : (tensor<1x6x4xf32>, tensor<1x6xi32>, tensor<4xf32>) -> tensor<1x6x4xf32> {
  ^bb0(%xk: tensor<1x2x4xf32>, %pk: tensor<1x2xi32>):
    %e = tensor.empty() : tensor<1x2x4xf32>
    %d = linalg.map { arith.mulf } ins(%xk, %xk : tensor<1x2x4xf32>, tensor<1x2x4xf32>) outs(%e : tensor<1x2x4xf32>)
    mod.yield %d : tensor<1x2x4xf32>
  }
  return %out : tensor<1x6x4xf32>
}

func.func @concat(%a: tensor<2x2xf32> {mod.name = "a", mod.kind = "parameter", mod.init = "ones"},
                  %b: tensor<2x1xf32> {mod.name = "b", mod.kind = "parameter", mod.init = "zeros"})
    -> (tensor<2x3xf32> {mod.name = "out"}) {
  %c = tensor.concat dim(1) %a, %b : (tensor<2x2xf32>, tensor<2x1xf32>) -> tensor<2x3xf32>
  return %c : tensor<2x3xf32>
}
