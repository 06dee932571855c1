// RUN: mod-opt %s --mod-lower-routing-to-gpu -split-input-file -verify-diagnostics

func.func @f64_scores(%s: tensor<1x8xf64>) -> tensor<1x3xi32> {
  // expected-error @+1 {{'mod.topk' op cannot be lowered to the CUDA routing kernels: input has element type 'f64', the kernels support f32}}
  %idx, %val = mod.topk %s k(3) : tensor<1x8xf64> -> tensor<1x3xi32>, tensor<1x3xf64>
  return %idx : tensor<1x3xi32>
}

// -----

func.func @f64_router(%x: tensor<1x8x4xf64>, %w: tensor<4xf64>) -> tensor<1x8xf64> {
  // expected-error @+1 {{'mod.router' op cannot be lowered to the CUDA routing kernels: input has element type 'f64', the kernels support f32}}
  %r = mod.router %x, %w : tensor<1x8x4xf64>, tensor<4xf64> -> tensor<1x8xf64>
  return %r : tensor<1x8xf64>
}

// -----

func.func @unexpanded(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
  // expected-error @+1 {{'mod.routed_block' op must be expanded before lowering to GPU kernels; run --mod-expand-routed-blocks first}}
  %o = mod.routed_block(%x, %p, %w) capacity(1)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x1x8xf32>, %pk: tensor<1x1xi32>):
    mod.yield %xk : tensor<1x1x8xf32>
  }
  return %o : tensor<1x4x8xf32>
}
