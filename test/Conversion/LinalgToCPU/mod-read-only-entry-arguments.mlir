// RUN: mod-opt %s --mod-read-only-entry-arguments --split-input-file --verify-diagnostics | FileCheck %s

// Every tensor argument of an entry point is read-only, except the one a
// result declares (mod.aliases) it updates in place. Private functions are
// left to bufferization.
// CHECK-LABEL: func.func @step
// CHECK-SAME:    %{{.*}}: tensor<4xf32> {bufferization.writable = true}
// CHECK-SAME:    %{{.*}}: tensor<4xf32> {bufferization.writable = false}
// CHECK-SAME:    %{{.*}}: tensor<4xf32> {bufferization.writable = false, mod.name = "g"}
// CHECK-SAME:    %{{.*}}: i32)
// CHECK-SAME:    -> (tensor<4xf32>, tensor<4xf32>)
// CHECK-LABEL: func.func private @helper
// CHECK-SAME:    (%{{.*}}: tensor<4xf32>)
func.func @step(%p: tensor<4xf32>, %m: tensor<4xf32>, %g: tensor<4xf32> {mod.name = "g"}, %n: i32)
    -> (tensor<4xf32> {mod.aliases = 0 : i64}, tensor<4xf32>) {
  %0 = arith.addf %p, %g : tensor<4xf32>
  %1 = arith.addf %m, %g : tensor<4xf32>
  return %0, %1 : tensor<4xf32>, tensor<4xf32>
}
func.func private @helper(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

// expected-error @below {{entry point @bad: result 0 has mod.aliases = 3 : i64, which must be the i64 index of a tensor argument (the function has 1 arguments)}}
func.func @bad(%p: tensor<4xf32>) -> (tensor<4xf32> {mod.aliases = 3 : i64}) {
  return %p : tensor<4xf32>
}
