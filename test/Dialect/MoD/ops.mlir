// RUN: mod-opt %s | FileCheck %s
// Round trip through the generic form too, so the printer and the parser
// agree on every op.
// RUN: mod-opt %s --mlir-print-op-generic | mod-opt | FileCheck %s

// CHECK-LABEL: func.func @router
// CHECK: %[[R:.*]] = mod.router %{{.*}}, %{{.*}} : tensor<2x16x64xf32>, tensor<64xf32> -> tensor<2x16xf32>
func.func @router(%x: tensor<2x16x64xf32>, %w: tensor<64xf32>) -> tensor<2x16xf32> {
  %r = mod.router %x, %w : tensor<2x16x64xf32>, tensor<64xf32> -> tensor<2x16xf32>
  return %r : tensor<2x16xf32>
}

// CHECK-LABEL: func.func @topk
// CHECK: %{{.*}}, %{{.*}} = mod.topk %{{.*}} k(2) : tensor<2x16xbf16> -> tensor<2x2xi32>, tensor<2x2xbf16>
func.func @topk(%r: tensor<2x16xbf16>) -> (tensor<2x2xi32>, tensor<2x2xbf16>) {
  %i, %v = mod.topk %r k(2) : tensor<2x16xbf16> -> tensor<2x2xi32>, tensor<2x2xbf16>
  return %i, %v : tensor<2x2xi32>, tensor<2x2xbf16>
}

// CHECK-LABEL: func.func @gather
// CHECK: mod.gather %{{.*}}[%{{.*}}] : tensor<2x16x4x8xf32>, tensor<2x3xi32> -> tensor<2x3x4x8xf32>
// CHECK: mod.gather %{{.*}}[%{{.*}}] : tensor<2x16xi32>, tensor<2x3xi32> -> tensor<2x3xi32>
func.func @gather(%x: tensor<2x16x4x8xf32>, %p: tensor<2x16xi32>, %i: tensor<2x3xi32>)
    -> (tensor<2x3x4x8xf32>, tensor<2x3xi32>) {
  %g = mod.gather %x[%i] : tensor<2x16x4x8xf32>, tensor<2x3xi32> -> tensor<2x3x4x8xf32>
  %pk = mod.gather %p[%i] : tensor<2x16xi32>, tensor<2x3xi32> -> tensor<2x3xi32>
  return %g, %pk : tensor<2x3x4x8xf32>, tensor<2x3xi32>
}

// CHECK-LABEL: func.func @scatter_add
// CHECK: mod.scatter_add %{{.*}}[%{{.*}}], %{{.*}} scale %{{.*}} : tensor<2x16x8xf32>, tensor<2x3xi32>, tensor<2x3x8xf32>, tensor<2x3xf32> -> tensor<2x16x8xf32>
func.func @scatter_add(%x: tensor<2x16x8xf32>, %i: tensor<2x3xi32>, %d: tensor<2x3x8xf32>,
                       %g: tensor<2x3xf32>) -> tensor<2x16x8xf32> {
  %o = mod.scatter_add %x[%i], %d scale %g
      : tensor<2x16x8xf32>, tensor<2x3xi32>, tensor<2x3x8xf32>, tensor<2x3xf32> -> tensor<2x16x8xf32>
  return %o : tensor<2x16x8xf32>
}

// The default (identity) gate is not printed, whether written or not; a
// sigmoid gate is.
// CHECK-LABEL: func.func @scatter_add_gates
// CHECK: mod.scatter_add %{{.*}}[%{{.*}}], %{{.*}} scale %{{.*}} : tensor<1x4x8xf32>
// CHECK: mod.scatter_add %{{.*}}[%{{.*}}], %{{.*}} scale %{{.*}} gate(sigmoid) : tensor<1x4x8xf32>
func.func @scatter_add_gates(%x: tensor<1x4x8xf32>, %i: tensor<1x2xi32>, %d: tensor<1x2x8xf32>,
                             %g: tensor<1x2xf32>) -> (tensor<1x4x8xf32>, tensor<1x4x8xf32>) {
  %a = mod.scatter_add %x[%i], %d scale %g gate(identity)
      : tensor<1x4x8xf32>, tensor<1x2xi32>, tensor<1x2x8xf32>, tensor<1x2xf32> -> tensor<1x4x8xf32>
  %b = mod.scatter_add %x[%i], %d scale %g gate(sigmoid)
      : tensor<1x4x8xf32>, tensor<1x2xi32>, tensor<1x2x8xf32>, tensor<1x2xf32> -> tensor<1x4x8xf32>
  return %a, %b : tensor<1x4x8xf32>, tensor<1x4x8xf32>
}

// The default gate is not printed; a sigmoid gate is.
// CHECK-LABEL: func.func @routed_block
// CHECK: mod.routed_block(%{{.*}}, %{{.*}}, %{{.*}}) capacity(2) : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
// CHECK-NEXT: ^bb0(%[[XK:.*]]: tensor<1x2x8xf32>, %{{.*}}: tensor<1x2xi32>):
// CHECK-NEXT: mod.yield %[[XK]] : tensor<1x2x8xf32>
// CHECK: mod.routed_block(%{{.*}}, %{{.*}}, %{{.*}}) capacity(4) gate(sigmoid)
func.func @routed_block(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>)
    -> (tensor<1x4x8xf32>, tensor<1x4x8xf32>) {
  %a = mod.routed_block(%x, %p, %w) capacity(2)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x2x8xf32>, %pk: tensor<1x2xi32>):
    mod.yield %xk : tensor<1x2x8xf32>
  }
  %b = mod.routed_block(%x, %p, %w) capacity(4) gate(sigmoid)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x4x8xf32>, %pk: tensor<1x4xi32>):
    mod.yield %xk : tensor<1x4x8xf32>
  }
  return %a, %b : tensor<1x4x8xf32>, tensor<1x4x8xf32>
}
