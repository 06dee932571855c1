// RUN: mod-opt %s --mod-cpu-approximate-math | FileCheck %s

// exp and tanh become arithmetic (no libm call left); sin keeps libm.
// CHECK-LABEL: func.func @math
// CHECK-NOT:     math.exp
// CHECK-NOT:     math.tanh
// CHECK:         math.sin
func.func @math(%x: f32) -> (f32, f32, f32) {
  %e = math.exp %x : f32
  %t = math.tanh %x : f32
  %s = math.sin %x : f32
  return %e, %t, %s : f32, f32, f32
}
