// The random routing checks of test/Integration/CPU/routing-random.mlir
// (top-k with ties, K=1, K=S, B>1, S not a multiple of anything) and longer
// rows (S = 300 and 1000: not multiples of the 256-thread block, so the
// compaction carries its counts between chunks) with NaN scores, and rows
// that get split router and gather kernels (B = 2, S = 600, D = 160) run with the
// CUDA kernels and compared with mod-refcheck's independent reference:
// indices exact, floats within 1e-4 relative.
//
// REQUIRES: cuda-gpu, cuda-toolkit, modrt-cuda
// RUN: rm -rf %t && mkdir -p %t && mod-compile %s --target=cuda -o %t/model
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b1_s8_d4_k3 --seed=1 --ties --positions=offset -o %t/routing_b1_s8_d4_k3.1.in.safetensors
// RUN: mod-run %t/model --entry=routing_b1_s8_d4_k3 --inputs=%t/routing_b1_s8_d4_k3.1.in.safetensors --outputs=%t/routing_b1_s8_d4_k3.1.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b1_s8_d4_k3.1.in.safetensors --outputs=%t/routing_b1_s8_d4_k3.1.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b1_s8_d4_k3 --seed=2 --ties --positions=offset -o %t/routing_b1_s8_d4_k3.2.in.safetensors
// RUN: mod-run %t/model --entry=routing_b1_s8_d4_k3 --inputs=%t/routing_b1_s8_d4_k3.2.in.safetensors --outputs=%t/routing_b1_s8_d4_k3.2.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b1_s8_d4_k3.2.in.safetensors --outputs=%t/routing_b1_s8_d4_k3.2.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b1_s8_d4_k3 --seed=3 --positions=offset -o %t/routing_b1_s8_d4_k3.3.in.safetensors
// RUN: mod-run %t/model --entry=routing_b1_s8_d4_k3 --inputs=%t/routing_b1_s8_d4_k3.3.in.safetensors --outputs=%t/routing_b1_s8_d4_k3.3.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b1_s8_d4_k3.3.in.safetensors --outputs=%t/routing_b1_s8_d4_k3.3.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b3_s16_d5_k1 --seed=1 --ties --positions=offset -o %t/routing_b3_s16_d5_k1.1.in.safetensors
// RUN: mod-run %t/model --entry=routing_b3_s16_d5_k1 --inputs=%t/routing_b3_s16_d5_k1.1.in.safetensors --outputs=%t/routing_b3_s16_d5_k1.1.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b3_s16_d5_k1.1.in.safetensors --outputs=%t/routing_b3_s16_d5_k1.1.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b3_s16_d5_k1 --seed=2 --ties --positions=offset -o %t/routing_b3_s16_d5_k1.2.in.safetensors
// RUN: mod-run %t/model --entry=routing_b3_s16_d5_k1 --inputs=%t/routing_b3_s16_d5_k1.2.in.safetensors --outputs=%t/routing_b3_s16_d5_k1.2.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b3_s16_d5_k1.2.in.safetensors --outputs=%t/routing_b3_s16_d5_k1.2.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b3_s16_d5_k1 --seed=3 --positions=offset -o %t/routing_b3_s16_d5_k1.3.in.safetensors
// RUN: mod-run %t/model --entry=routing_b3_s16_d5_k1 --inputs=%t/routing_b3_s16_d5_k1.3.in.safetensors --outputs=%t/routing_b3_s16_d5_k1.3.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b3_s16_d5_k1.3.in.safetensors --outputs=%t/routing_b3_s16_d5_k1.3.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b2_s8_d4_k8 --seed=1 --ties --positions=offset -o %t/routing_b2_s8_d4_k8.1.in.safetensors
// RUN: mod-run %t/model --entry=routing_b2_s8_d4_k8 --inputs=%t/routing_b2_s8_d4_k8.1.in.safetensors --outputs=%t/routing_b2_s8_d4_k8.1.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b2_s8_d4_k8.1.in.safetensors --outputs=%t/routing_b2_s8_d4_k8.1.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b2_s8_d4_k8 --seed=2 --ties --positions=offset -o %t/routing_b2_s8_d4_k8.2.in.safetensors
// RUN: mod-run %t/model --entry=routing_b2_s8_d4_k8 --inputs=%t/routing_b2_s8_d4_k8.2.in.safetensors --outputs=%t/routing_b2_s8_d4_k8.2.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b2_s8_d4_k8.2.in.safetensors --outputs=%t/routing_b2_s8_d4_k8.2.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b2_s8_d4_k8 --seed=3 --positions=offset -o %t/routing_b2_s8_d4_k8.3.in.safetensors
// RUN: mod-run %t/model --entry=routing_b2_s8_d4_k8 --inputs=%t/routing_b2_s8_d4_k8.3.in.safetensors --outputs=%t/routing_b2_s8_d4_k8.3.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b2_s8_d4_k8.3.in.safetensors --outputs=%t/routing_b2_s8_d4_k8.3.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b2_s33_d3_k7 --seed=1 --ties --positions=offset -o %t/routing_b2_s33_d3_k7.1.in.safetensors
// RUN: mod-run %t/model --entry=routing_b2_s33_d3_k7 --inputs=%t/routing_b2_s33_d3_k7.1.in.safetensors --outputs=%t/routing_b2_s33_d3_k7.1.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b2_s33_d3_k7.1.in.safetensors --outputs=%t/routing_b2_s33_d3_k7.1.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b2_s33_d3_k7 --seed=2 --ties --positions=offset -o %t/routing_b2_s33_d3_k7.2.in.safetensors
// RUN: mod-run %t/model --entry=routing_b2_s33_d3_k7 --inputs=%t/routing_b2_s33_d3_k7.2.in.safetensors --outputs=%t/routing_b2_s33_d3_k7.2.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b2_s33_d3_k7.2.in.safetensors --outputs=%t/routing_b2_s33_d3_k7.2.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b2_s33_d3_k7 --seed=3 --positions=offset -o %t/routing_b2_s33_d3_k7.3.in.safetensors
// RUN: mod-run %t/model --entry=routing_b2_s33_d3_k7 --inputs=%t/routing_b2_s33_d3_k7.3.in.safetensors --outputs=%t/routing_b2_s33_d3_k7.3.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b2_s33_d3_k7.3.in.safetensors --outputs=%t/routing_b2_s33_d3_k7.3.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b2_s300_d8_k77 --seed=1 --ties --nans --positions=offset -o %t/routing_b2_s300_d8_k77.1.in.safetensors
// RUN: mod-run %t/model --entry=routing_b2_s300_d8_k77 --inputs=%t/routing_b2_s300_d8_k77.1.in.safetensors --outputs=%t/routing_b2_s300_d8_k77.1.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b2_s300_d8_k77.1.in.safetensors --outputs=%t/routing_b2_s300_d8_k77.1.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b2_s300_d8_k77 --seed=2 --nans --positions=offset -o %t/routing_b2_s300_d8_k77.2.in.safetensors
// RUN: mod-run %t/model --entry=routing_b2_s300_d8_k77 --inputs=%t/routing_b2_s300_d8_k77.2.in.safetensors --outputs=%t/routing_b2_s300_d8_k77.2.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b2_s300_d8_k77.2.in.safetensors --outputs=%t/routing_b2_s300_d8_k77.2.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b2_s300_d8_k77 --seed=3 --positions=offset -o %t/routing_b2_s300_d8_k77.3.in.safetensors
// RUN: mod-run %t/model --entry=routing_b2_s300_d8_k77 --inputs=%t/routing_b2_s300_d8_k77.3.in.safetensors --outputs=%t/routing_b2_s300_d8_k77.3.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b2_s300_d8_k77.3.in.safetensors --outputs=%t/routing_b2_s300_d8_k77.3.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b1_s1000_d4_k500 --seed=1 --ties --nans --positions=offset -o %t/routing_b1_s1000_d4_k500.1.in.safetensors
// RUN: mod-run %t/model --entry=routing_b1_s1000_d4_k500 --inputs=%t/routing_b1_s1000_d4_k500.1.in.safetensors --outputs=%t/routing_b1_s1000_d4_k500.1.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b1_s1000_d4_k500.1.in.safetensors --outputs=%t/routing_b1_s1000_d4_k500.1.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b1_s1000_d4_k500 --seed=2 --nans --positions=offset -o %t/routing_b1_s1000_d4_k500.2.in.safetensors
// RUN: mod-run %t/model --entry=routing_b1_s1000_d4_k500 --inputs=%t/routing_b1_s1000_d4_k500.2.in.safetensors --outputs=%t/routing_b1_s1000_d4_k500.2.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b1_s1000_d4_k500.2.in.safetensors --outputs=%t/routing_b1_s1000_d4_k500.2.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b1_s1000_d4_k500 --seed=3 --positions=offset -o %t/routing_b1_s1000_d4_k500.3.in.safetensors
// RUN: mod-run %t/model --entry=routing_b1_s1000_d4_k500 --inputs=%t/routing_b1_s1000_d4_k500.3.in.safetensors --outputs=%t/routing_b1_s1000_d4_k500.3.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b1_s1000_d4_k500.3.in.safetensors --outputs=%t/routing_b1_s1000_d4_k500.3.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b2_s600_d160_k300 --seed=1 --ties --nans --positions=offset -o %t/routing_b2_s600_d160_k300.1.in.safetensors
// RUN: mod-run %t/model --entry=routing_b2_s600_d160_k300 --inputs=%t/routing_b2_s600_d160_k300.1.in.safetensors --outputs=%t/routing_b2_s600_d160_k300.1.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b2_s600_d160_k300.1.in.safetensors --outputs=%t/routing_b2_s600_d160_k300.1.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b2_s600_d160_k300 --seed=2 --nans --positions=offset -o %t/routing_b2_s600_d160_k300.2.in.safetensors
// RUN: mod-run %t/model --entry=routing_b2_s600_d160_k300 --inputs=%t/routing_b2_s600_d160_k300.2.in.safetensors --outputs=%t/routing_b2_s600_d160_k300.2.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b2_s600_d160_k300.2.in.safetensors --outputs=%t/routing_b2_s600_d160_k300.2.out.safetensors | FileCheck %s
// RUN: mod-refcheck gen --manifest=%t/model/manifest.json --entry=routing_b2_s600_d160_k300 --seed=3 --positions=offset -o %t/routing_b2_s600_d160_k300.3.in.safetensors
// RUN: mod-run %t/model --entry=routing_b2_s600_d160_k300 --inputs=%t/routing_b2_s600_d160_k300.3.in.safetensors --outputs=%t/routing_b2_s600_d160_k300.3.out.safetensors
// RUN: mod-refcheck check --rtol=1e-4 --inputs=%t/routing_b2_s600_d160_k300.3.in.safetensors --outputs=%t/routing_b2_s600_d160_k300.3.out.safetensors | FileCheck %s

// Every output of every run is compared.
// CHECK: router: ok
// CHECK: topk_indices: ok
// CHECK: topk_values: ok
// CHECK: gathered: ok
// CHECK: gathered_positions: ok
// CHECK: scattered: ok

func.func @routing_b1_s8_d4_k3(
    %scores: tensor<1x8xf32> {mod.name = "scores"}, %x: tensor<1x8x4xf32> {mod.name = "x"},
    %w: tensor<4xf32> {mod.name = "w"}, %positions: tensor<1x8xi32> {mod.name = "positions"},
    %update: tensor<1x3x4xf32> {mod.name = "update"}, %scale: tensor<1x3xf32> {mod.name = "scale"})
    -> (tensor<1x8xf32> {mod.name = "router"}, tensor<1x3xi32> {mod.name = "topk_indices"},
        tensor<1x3xf32> {mod.name = "topk_values"}, tensor<1x3x4xf32> {mod.name = "gathered"},
        tensor<1x3xi32> {mod.name = "gathered_positions"}, tensor<1x8x4xf32> {mod.name = "scattered"}) {
  %r = mod.router %x, %w : tensor<1x8x4xf32>, tensor<4xf32> -> tensor<1x8xf32>
  %idx, %val = mod.topk %scores k(3) : tensor<1x8xf32> -> tensor<1x3xi32>, tensor<1x3xf32>
  %xk = mod.gather %x[%idx] : tensor<1x8x4xf32>, tensor<1x3xi32> -> tensor<1x3x4xf32>
  %pk = mod.gather %positions[%idx] : tensor<1x8xi32>, tensor<1x3xi32> -> tensor<1x3xi32>
  %out = mod.scatter_add %x[%idx], %update scale %scale
      : tensor<1x8x4xf32>, tensor<1x3xi32>, tensor<1x3x4xf32>, tensor<1x3xf32> -> tensor<1x8x4xf32>
  return %r, %idx, %val, %xk, %pk, %out
      : tensor<1x8xf32>, tensor<1x3xi32>, tensor<1x3xf32>, tensor<1x3x4xf32>, tensor<1x3xi32>, tensor<1x8x4xf32>
}

func.func @routing_b3_s16_d5_k1(
    %scores: tensor<3x16xf32> {mod.name = "scores"}, %x: tensor<3x16x5xf32> {mod.name = "x"},
    %w: tensor<5xf32> {mod.name = "w"}, %positions: tensor<3x16xi32> {mod.name = "positions"},
    %update: tensor<3x1x5xf32> {mod.name = "update"}, %scale: tensor<3x1xf32> {mod.name = "scale"})
    -> (tensor<3x16xf32> {mod.name = "router"}, tensor<3x1xi32> {mod.name = "topk_indices"},
        tensor<3x1xf32> {mod.name = "topk_values"}, tensor<3x1x5xf32> {mod.name = "gathered"},
        tensor<3x1xi32> {mod.name = "gathered_positions"}, tensor<3x16x5xf32> {mod.name = "scattered"}) {
  %r = mod.router %x, %w : tensor<3x16x5xf32>, tensor<5xf32> -> tensor<3x16xf32>
  %idx, %val = mod.topk %scores k(1) : tensor<3x16xf32> -> tensor<3x1xi32>, tensor<3x1xf32>
  %xk = mod.gather %x[%idx] : tensor<3x16x5xf32>, tensor<3x1xi32> -> tensor<3x1x5xf32>
  %pk = mod.gather %positions[%idx] : tensor<3x16xi32>, tensor<3x1xi32> -> tensor<3x1xi32>
  %out = mod.scatter_add %x[%idx], %update scale %scale
      : tensor<3x16x5xf32>, tensor<3x1xi32>, tensor<3x1x5xf32>, tensor<3x1xf32> -> tensor<3x16x5xf32>
  return %r, %idx, %val, %xk, %pk, %out
      : tensor<3x16xf32>, tensor<3x1xi32>, tensor<3x1xf32>, tensor<3x1x5xf32>, tensor<3x1xi32>, tensor<3x16x5xf32>
}

func.func @routing_b2_s8_d4_k8(
    %scores: tensor<2x8xf32> {mod.name = "scores"}, %x: tensor<2x8x4xf32> {mod.name = "x"},
    %w: tensor<4xf32> {mod.name = "w"}, %positions: tensor<2x8xi32> {mod.name = "positions"},
    %update: tensor<2x8x4xf32> {mod.name = "update"}, %scale: tensor<2x8xf32> {mod.name = "scale"})
    -> (tensor<2x8xf32> {mod.name = "router"}, tensor<2x8xi32> {mod.name = "topk_indices"},
        tensor<2x8xf32> {mod.name = "topk_values"}, tensor<2x8x4xf32> {mod.name = "gathered"},
        tensor<2x8xi32> {mod.name = "gathered_positions"}, tensor<2x8x4xf32> {mod.name = "scattered"}) {
  %r = mod.router %x, %w : tensor<2x8x4xf32>, tensor<4xf32> -> tensor<2x8xf32>
  %idx, %val = mod.topk %scores k(8) : tensor<2x8xf32> -> tensor<2x8xi32>, tensor<2x8xf32>
  %xk = mod.gather %x[%idx] : tensor<2x8x4xf32>, tensor<2x8xi32> -> tensor<2x8x4xf32>
  %pk = mod.gather %positions[%idx] : tensor<2x8xi32>, tensor<2x8xi32> -> tensor<2x8xi32>
  %out = mod.scatter_add %x[%idx], %update scale %scale
      : tensor<2x8x4xf32>, tensor<2x8xi32>, tensor<2x8x4xf32>, tensor<2x8xf32> -> tensor<2x8x4xf32>
  return %r, %idx, %val, %xk, %pk, %out
      : tensor<2x8xf32>, tensor<2x8xi32>, tensor<2x8xf32>, tensor<2x8x4xf32>, tensor<2x8xi32>, tensor<2x8x4xf32>
}

func.func @routing_b2_s33_d3_k7(
    %scores: tensor<2x33xf32> {mod.name = "scores"}, %x: tensor<2x33x3xf32> {mod.name = "x"},
    %w: tensor<3xf32> {mod.name = "w"}, %positions: tensor<2x33xi32> {mod.name = "positions"},
    %update: tensor<2x7x3xf32> {mod.name = "update"}, %scale: tensor<2x7xf32> {mod.name = "scale"})
    -> (tensor<2x33xf32> {mod.name = "router"}, tensor<2x7xi32> {mod.name = "topk_indices"},
        tensor<2x7xf32> {mod.name = "topk_values"}, tensor<2x7x3xf32> {mod.name = "gathered"},
        tensor<2x7xi32> {mod.name = "gathered_positions"}, tensor<2x33x3xf32> {mod.name = "scattered"}) {
  %r = mod.router %x, %w : tensor<2x33x3xf32>, tensor<3xf32> -> tensor<2x33xf32>
  %idx, %val = mod.topk %scores k(7) : tensor<2x33xf32> -> tensor<2x7xi32>, tensor<2x7xf32>
  %xk = mod.gather %x[%idx] : tensor<2x33x3xf32>, tensor<2x7xi32> -> tensor<2x7x3xf32>
  %pk = mod.gather %positions[%idx] : tensor<2x33xi32>, tensor<2x7xi32> -> tensor<2x7xi32>
  %out = mod.scatter_add %x[%idx], %update scale %scale
      : tensor<2x33x3xf32>, tensor<2x7xi32>, tensor<2x7x3xf32>, tensor<2x7xf32> -> tensor<2x33x3xf32>
  return %r, %idx, %val, %xk, %pk, %out
      : tensor<2x33xf32>, tensor<2x7xi32>, tensor<2x7xf32>, tensor<2x7x3xf32>, tensor<2x7xi32>, tensor<2x33x3xf32>
}

func.func @routing_b2_s300_d8_k77(
    %scores: tensor<2x300xf32> {mod.name = "scores"}, %x: tensor<2x300x8xf32> {mod.name = "x"},
    %w: tensor<8xf32> {mod.name = "w"}, %positions: tensor<2x300xi32> {mod.name = "positions"},
    %update: tensor<2x77x8xf32> {mod.name = "update"}, %scale: tensor<2x77xf32> {mod.name = "scale"})
    -> (tensor<2x300xf32> {mod.name = "router"}, tensor<2x77xi32> {mod.name = "topk_indices"},
        tensor<2x77xf32> {mod.name = "topk_values"}, tensor<2x77x8xf32> {mod.name = "gathered"},
        tensor<2x77xi32> {mod.name = "gathered_positions"}, tensor<2x300x8xf32> {mod.name = "scattered"}) {
  %r = mod.router %x, %w : tensor<2x300x8xf32>, tensor<8xf32> -> tensor<2x300xf32>
  %idx, %val = mod.topk %scores k(77) : tensor<2x300xf32> -> tensor<2x77xi32>, tensor<2x77xf32>
  %xk = mod.gather %x[%idx] : tensor<2x300x8xf32>, tensor<2x77xi32> -> tensor<2x77x8xf32>
  %pk = mod.gather %positions[%idx] : tensor<2x300xi32>, tensor<2x77xi32> -> tensor<2x77xi32>
  %out = mod.scatter_add %x[%idx], %update scale %scale
      : tensor<2x300x8xf32>, tensor<2x77xi32>, tensor<2x77x8xf32>, tensor<2x77xf32> -> tensor<2x300x8xf32>
  return %r, %idx, %val, %xk, %pk, %out
      : tensor<2x300xf32>, tensor<2x77xi32>, tensor<2x77xf32>, tensor<2x77x8xf32>, tensor<2x77xi32>, tensor<2x300x8xf32>
}

func.func @routing_b1_s1000_d4_k500(
    %scores: tensor<1x1000xf32> {mod.name = "scores"}, %x: tensor<1x1000x4xf32> {mod.name = "x"},
    %w: tensor<4xf32> {mod.name = "w"}, %positions: tensor<1x1000xi32> {mod.name = "positions"},
    %update: tensor<1x500x4xf32> {mod.name = "update"}, %scale: tensor<1x500xf32> {mod.name = "scale"})
    -> (tensor<1x1000xf32> {mod.name = "router"}, tensor<1x500xi32> {mod.name = "topk_indices"},
        tensor<1x500xf32> {mod.name = "topk_values"}, tensor<1x500x4xf32> {mod.name = "gathered"},
        tensor<1x500xi32> {mod.name = "gathered_positions"}, tensor<1x1000x4xf32> {mod.name = "scattered"}) {
  %r = mod.router %x, %w : tensor<1x1000x4xf32>, tensor<4xf32> -> tensor<1x1000xf32>
  %idx, %val = mod.topk %scores k(500) : tensor<1x1000xf32> -> tensor<1x500xi32>, tensor<1x500xf32>
  %xk = mod.gather %x[%idx] : tensor<1x1000x4xf32>, tensor<1x500xi32> -> tensor<1x500x4xf32>
  %pk = mod.gather %positions[%idx] : tensor<1x1000xi32>, tensor<1x500xi32> -> tensor<1x500xi32>
  %out = mod.scatter_add %x[%idx], %update scale %scale
      : tensor<1x1000x4xf32>, tensor<1x500xi32>, tensor<1x500x4xf32>, tensor<1x500xf32> -> tensor<1x1000x4xf32>
  return %r, %idx, %val, %xk, %pk, %out
      : tensor<1x1000xf32>, tensor<1x500xi32>, tensor<1x500xf32>, tensor<1x500x4xf32>, tensor<1x500xi32>, tensor<1x1000x4xf32>
}

// Rows long and wide enough that the router (600 x 160 floats, 375 KiB per
// row) and the gathers (300 x 160, 188 KiB) are split over several blocks
// per row (5 and 2 with the default min-blocks).
func.func @routing_b2_s600_d160_k300(
    %scores: tensor<2x600xf32> {mod.name = "scores"}, %x: tensor<2x600x160xf32> {mod.name = "x"},
    %w: tensor<160xf32> {mod.name = "w"}, %positions: tensor<2x600xi32> {mod.name = "positions"},
    %update: tensor<2x300x160xf32> {mod.name = "update"}, %scale: tensor<2x300xf32> {mod.name = "scale"})
    -> (tensor<2x600xf32> {mod.name = "router"}, tensor<2x300xi32> {mod.name = "topk_indices"},
        tensor<2x300xf32> {mod.name = "topk_values"}, tensor<2x300x160xf32> {mod.name = "gathered"},
        tensor<2x300xi32> {mod.name = "gathered_positions"}, tensor<2x600x160xf32> {mod.name = "scattered"}) {
  %r = mod.router %x, %w : tensor<2x600x160xf32>, tensor<160xf32> -> tensor<2x600xf32>
  %idx, %val = mod.topk %scores k(300) : tensor<2x600xf32> -> tensor<2x300xi32>, tensor<2x300xf32>
  %xk = mod.gather %x[%idx] : tensor<2x600x160xf32>, tensor<2x300xi32> -> tensor<2x300x160xf32>
  %pk = mod.gather %positions[%idx] : tensor<2x600xi32>, tensor<2x300xi32> -> tensor<2x300xi32>
  %out = mod.scatter_add %x[%idx], %update scale %scale
      : tensor<2x600x160xf32>, tensor<2x300xi32>, tensor<2x300x160xf32>, tensor<2x300xf32> -> tensor<2x600x160xf32>
  return %r, %idx, %val, %xk, %pk, %out
      : tensor<2x600xf32>, tensor<2x300xi32>, tensor<2x300xf32>, tensor<2x300x160xf32>, tensor<2x300xi32>, tensor<2x600x160xf32>
}
