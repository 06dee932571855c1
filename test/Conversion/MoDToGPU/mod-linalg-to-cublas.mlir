// RUN: mod-opt %s --mod-linalg-to-cublas -split-input-file | FileCheck %s
// RUN: mod-opt %s --mod-linalg-to-cublas=allow-tf32=true -split-input-file | FileCheck %s --check-prefix=TF32

// A plain f32 matmul: pointers to element [0, 0] of each operand (aligned
// pointer + 4 * offset), leading dimensions from the strides, batch 1, and
// the call replaces the op. The declaration says the wrapper runs on the
// caller's stream.
// CHECK-LABEL: func.func @matmul
// CHECK-SAME: (%[[A:.*]]: memref<6x4xf32>, %[[B:.*]]: memref<4x8xf32>, %[[C:.*]]: memref<6x8xf32>)
// CHECK-NOT: linalg.matmul
// CHECK: %[[BASEA:.*]], %[[OFFA:.*]], %{{.*}}:2, %[[STRA:.*]]:2 = memref.extract_strided_metadata %[[A]]
// CHECK: %[[PTRA:.*]] = memref.extract_aligned_pointer_as_index %[[A]]
// CHECK: %[[BYTESA:.*]] = arith.muli %[[OFFA]], %{{.*}} : index
// CHECK: %[[ADDRA:.*]] = arith.addi %[[PTRA]], %[[BYTESA]] : index
// CHECK: %[[ADDRA64:.*]] = arith.index_cast %[[ADDRA]] : index to i64
// CHECK: %[[PA:.*]] = llvm.inttoptr %[[ADDRA64]] : i64 to !llvm.ptr
// CHECK: %[[LDA:.*]] = arith.index_cast %[[STRA]]#0 : index to i64
// CHECK: memref.extract_aligned_pointer_as_index %[[B]]
// CHECK: %[[PB:.*]] = llvm.inttoptr
// CHECK: memref.extract_aligned_pointer_as_index %[[C]]
// CHECK: %[[PC:.*]] = llvm.inttoptr
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1 : i64
// CHECK-DAG: %[[M:.*]] = arith.constant 6 : i64
// CHECK-DAG: %[[N:.*]] = arith.constant 8 : i64
// CHECK-DAG: %[[K:.*]] = arith.constant 4 : i64
// CHECK-DAG: %[[EXACT:.*]] = arith.constant 0 : i32
// CHECK: call @modrt_cublas_sgemm_strided_batched(%[[ONE]], %[[M]], %[[N]], %[[K]], %[[PA]], %[[LDA]], %{{.*}}, %[[PB]], %{{.*}}, %{{.*}}, %[[PC]], %{{.*}}, %{{.*}}, %[[EXACT]])
// CHECK-NEXT: return
// CHECK: func.func private @modrt_cublas_sgemm_strided_batched(i64, i64, i64, i64, !llvm.ptr, i64, i64, !llvm.ptr, i64, i64, !llvm.ptr, i64, i64, i32) attributes {mod.stream_ordered, mod.written_operands = array<i64: 10>}
// TF32-LABEL: func.func @matmul
// TF32: %[[FLAGS:.*]] = arith.constant 1 : i32
// TF32: call @modrt_cublas_sgemm_strided_batched({{.*}}, %[[FLAGS]])
func.func @matmul(%a: memref<6x4xf32>, %b: memref<4x8xf32>, %c: memref<6x8xf32>) {
  linalg.matmul ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  return
}

// -----

// A batch matmul on a strided view: the batch stride and the leading
// dimension come from the view's layout, the offset moves the pointer.
// CHECK-LABEL: func.func @batch_matmul_view
// CHECK-NOT: linalg.batch_matmul
// CHECK: %[[SUB:.*]] = memref.subview
// CHECK: %{{.*}}, %[[OFF:.*]], %{{.*}}:3, %[[STR:.*]]:3 = memref.extract_strided_metadata %[[SUB]] :
// CHECK: %[[BYTES:.*]] = arith.muli %[[OFF]], %{{.*}} : index
// CHECK: %[[LD:.*]] = arith.index_cast %[[STR]]#1 : index to i64
// CHECK: %[[BS:.*]] = arith.index_cast %[[STR]]#0 : index to i64
// CHECK: %[[BATCH:.*]] = arith.constant 2 : i64
// CHECK: call @modrt_cublas_sgemm_strided_batched(%[[BATCH]], {{.*}}, %[[LD]], %[[BS]],
// CHECK-NOT: linalg.batch_matmul
// CHECK: func.func private @modrt_cublas_sgemm_strided_batched
func.func @batch_matmul_view(%big: memref<2x3x10xf32>, %b: memref<2x5x4xf32>, %c: memref<2x3x4xf32>) {
  %a = memref.subview %big[0, 0, 2] [2, 3, 5] [1, 1, 1] : memref<2x3x10xf32> to memref<2x3x5xf32, strided<[30, 10, 1], offset: 2>>
  linalg.batch_matmul ins(%a, %b : memref<2x3x5xf32, strided<[30, 10, 1], offset: 2>>, memref<2x5x4xf32>) outs(%c : memref<2x3x4xf32>)
  return
}

// -----

// What cuBLAS cannot take stays a linalg op (a loop kernel later): f64,
// a column-strided operand, tensors. No declaration is left behind.
// CHECK-LABEL: func.func @kept
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : memref<2x2xf64>
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : memref<2x2xf32, strided<[1, 2]>>
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<2x2xf32>
// CHECK-NOT: modrt_cublas
func.func @kept(%a: memref<2x2xf64>, %c: memref<2x2xf64>, %t: memref<2x2xf32, strided<[1, 2]>>,
                %f: memref<2x2xf32>, %x: tensor<2x2xf32>) -> tensor<2x2xf32> {
  linalg.matmul ins(%a, %a : memref<2x2xf64>, memref<2x2xf64>) outs(%c : memref<2x2xf64>)
  linalg.matmul ins(%t, %f : memref<2x2xf32, strided<[1, 2]>>, memref<2x2xf32>) outs(%f : memref<2x2xf32>)
  %r = linalg.matmul ins(%x, %x : tensor<2x2xf32>, tensor<2x2xf32>) outs(%x : tensor<2x2xf32>) -> tensor<2x2xf32>
  return %r : tensor<2x2xf32>
}
