// RUN: mod-opt %s --mod-linalg-to-cublas=precision=bf16 -split-input-file | FileCheck %s
// RUN: mod-opt %s --mod-linalg-to-cublas=precision=f32 -split-input-file | FileCheck %s --check-prefix=F32
// RUN: mod-opt %s --mod-linalg-to-cublas=precision=bf16 --mod-gpu-device-buffers -split-input-file | FileCheck %s --check-prefix=DEALLOC
// RUN: not mod-opt %s --mod-linalg-to-cublas=precision=fp16 -split-input-file 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not mod-opt %s --mod-linalg-to-cublas="precision=bf16 allow-tf32=true" -split-input-file 2>&1 | FileCheck %s --check-prefix=TF32

// BAD: error: --mod-linalg-to-cublas: unknown precision 'fp16' (supported: f32, bf16)
// TF32: error: --mod-linalg-to-cublas: allow-tf32 applies to f32 GEMMs; it cannot be combined with precision=bf16

// Mixed precision: the f32 operands (the function's buffers stay f32: the
// master weights) are copied into fresh bf16 buffers by a truncf
// linalg.generic (a generated kernel later), the call takes pointers into
// the copies (2 bytes per element) and the f32 C, and goes to the bf16
// wrapper. No f32 SGEMM remains.
// CHECK-LABEL: func.func @matmul
// CHECK-SAME: (%[[A:.*]]: memref<6x4xf32>, %[[B:.*]]: memref<4x8xf32>, %[[C:.*]]: memref<6x8xf32>)
// CHECK-NOT: linalg.matmul
// CHECK: %[[A16:.*]] = memref.alloc() : memref<6x4xbf16>
// CHECK: linalg.generic {{.*}} ins(%[[A]] : memref<6x4xf32>) outs(%[[A16]] : memref<6x4xbf16>)
// CHECK: arith.truncf %{{.*}} : f32 to bf16
// CHECK: %{{.*}}, %[[OFFA:.*]], %{{.*}}:2, %[[STRA:.*]]:2 = memref.extract_strided_metadata %[[A]]
// CHECK: %[[PTRA:.*]] = memref.extract_aligned_pointer_as_index %[[A16]]
// CHECK: %[[TWO:.*]] = arith.constant 2 : index
// CHECK: %[[BYTESA:.*]] = arith.muli %[[OFFA]], %[[TWO]] : index
// CHECK: %[[ADDRA:.*]] = arith.addi %[[PTRA]], %[[BYTESA]] : index
// CHECK: %[[ADDRA64:.*]] = arith.index_cast %[[ADDRA]] : index to i64
// CHECK: %[[PA:.*]] = llvm.inttoptr %[[ADDRA64]] : i64 to !llvm.ptr
// CHECK: %[[LDA:.*]] = arith.index_cast %[[STRA]]#0 : index to i64
// CHECK: %[[B16:.*]] = memref.alloc() : memref<4x8xbf16>
// CHECK: linalg.generic {{.*}} ins(%[[B]] : memref<4x8xf32>) outs(%[[B16]] : memref<4x8xbf16>)
// CHECK: memref.extract_aligned_pointer_as_index %[[B16]]
// CHECK: %[[PB:.*]] = llvm.inttoptr
// CHECK: memref.extract_aligned_pointer_as_index %[[C]]
// CHECK: %[[FOUR:.*]] = arith.constant 4 : index
// CHECK: %[[PC:.*]] = llvm.inttoptr
// CHECK-DAG: %[[M:.*]] = arith.constant 6 : i64
// CHECK-DAG: %[[N:.*]] = arith.constant 8 : i64
// CHECK-DAG: %[[K:.*]] = arith.constant 4 : i64
// CHECK-DAG: %[[FLAGS:.*]] = arith.constant 0 : i32
// CHECK: call @modrt_cublas_gemm_bf16_strided_batched(%{{.*}}, %[[M]], %[[N]], %[[K]], %[[PA]], %[[LDA]], %{{.*}}, %[[PB]], %{{.*}}, %{{.*}}, %[[PC]], %{{.*}}, %{{.*}}, %[[FLAGS]])
// CHECK-NEXT: return
// CHECK-NOT: modrt_cublas_sgemm_strided_batched
// CHECK: func.func private @modrt_cublas_gemm_bf16_strided_batched(i64, i64, i64, i64, !llvm.ptr, i64, i64, !llvm.ptr, i64, i64, !llvm.ptr, i64, i64, i32) attributes {mod.stream_ordered, mod.written_operands = array<i64: 10>}
// F32-LABEL: func.func @matmul
// F32-NOT: bf16
// F32: call @modrt_cublas_sgemm_strided_batched(
// F32-NOT: bf16
// F32: func.func private @modrt_cublas_sgemm_strided_batched
func.func @matmul(%a: memref<6x4xf32>, %b: memref<4x8xf32>, %c: memref<6x8xf32>) {
  linalg.matmul ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  return
}

// -----

// A weight read by two GEMMs (the tied embedding / LM head: logits = h W^T
// forward, dh = dlogits W backward) is converted once: the second GEMM
// reads the same bf16 copy, since nothing in between writes W (the
// elementwise op in between writes a fresh buffer, the first call writes
// only its C, a fresh buffer too; a write to another function argument
// would count, as arguments may alias). The activations are converted per
// GEMM.
// CHECK-LABEL: func.func @shared_weight
// CHECK-SAME: (%[[H:.*]]: memref<4x8xf32>, %[[W:.*]]: memref<8x16xf32>)
// CHECK: %[[H16:.*]] = memref.alloc() : memref<4x8xbf16>
// CHECK: linalg.generic {{.*}} ins(%[[H]] : memref<4x8xf32>) outs(%[[H16]] : memref<4x8xbf16>)
// CHECK: %[[W16:.*]] = memref.alloc() : memref<8x16xbf16>
// CHECK: linalg.generic {{.*}} ins(%[[W]] : memref<8x16xf32>) outs(%[[W16]] : memref<8x16xbf16>)
// CHECK: memref.extract_aligned_pointer_as_index %[[W16]]
// CHECK: call @modrt_cublas_gemm_bf16_strided_batched(
// CHECK: %[[G:.*]] = memref.alloc() : memref<4x8xf32>
// CHECK: linalg.generic {{.*}} ins(%[[H]] : memref<4x8xf32>) outs(%[[G]] : memref<4x8xf32>)
// CHECK: %[[G16:.*]] = memref.alloc() : memref<4x8xbf16>
// CHECK: linalg.generic {{.*}} ins(%[[G]] : memref<4x8xf32>) outs(%[[G16]] : memref<4x8xbf16>)
// CHECK-NOT: ins(%[[W]]
// CHECK: memref.extract_aligned_pointer_as_index %[[W16]]
// CHECK: call @modrt_cublas_gemm_bf16_strided_batched(
// CHECK-NEXT: return
// The shared copy lives on the device until the last GEMM reading it
// (--mod-gpu-device-buffers follows the pointer into the call).
// DEALLOC-LABEL: func.func @shared_weight
// DEALLOC: %[[W16:.*]] = gpu.alloc () : memref<8x16xbf16>
// DEALLOC: call @modrt_cublas_gemm_bf16_strided_batched(
// DEALLOC-NOT: gpu.dealloc %[[W16]]
// DEALLOC: memref.extract_aligned_pointer_as_index %[[W16]]
// DEALLOC-NOT: gpu.dealloc %[[W16]]
// DEALLOC: call @modrt_cublas_gemm_bf16_strided_batched(
// DEALLOC: gpu.dealloc %[[W16]] : memref<8x16xbf16>
// DEALLOC: return
func.func @shared_weight(%h: memref<4x8xf32>, %w: memref<8x16xf32>) {
  %c1 = memref.alloc() : memref<4x16xf32>
  %c2 = memref.alloc() : memref<4x16xf32>
  linalg.matmul ins(%h, %w : memref<4x8xf32>, memref<8x16xf32>) outs(%c1 : memref<4x16xf32>)
  %g = memref.alloc() : memref<4x8xf32>
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%h : memref<4x8xf32>) outs(%g : memref<4x8xf32>) {
  ^bb0(%x: f32, %y: f32):
    %two = arith.addf %x, %x : f32
    linalg.yield %two : f32
  }
  linalg.matmul ins(%g, %w : memref<4x8xf32>, memref<8x16xf32>) outs(%c2 : memref<4x16xf32>)
  return
}

// -----

// A write to the weight between two GEMMs (an in-place update) makes the
// second GEMM convert it again: it must see the new values.
// CHECK-LABEL: func.func @weight_written_between
// CHECK-SAME: (%[[H:.*]]: memref<4x8xf32>, %[[W:.*]]: memref<8x16xf32>
// CHECK: linalg.generic {{.*}} ins(%[[W]] : memref<8x16xf32>)
// CHECK: call @modrt_cublas_gemm_bf16_strided_batched(
// CHECK: linalg.fill {{.*}} outs(%[[W]] : memref<8x16xf32>)
// CHECK: %[[W16B:.*]] = memref.alloc() : memref<8x16xbf16>
// CHECK: linalg.generic {{.*}} ins(%[[W]] : memref<8x16xf32>) outs(%[[W16B]] : memref<8x16xbf16>)
// CHECK: memref.extract_aligned_pointer_as_index %[[W16B]]
// CHECK: call @modrt_cublas_gemm_bf16_strided_batched(
func.func @weight_written_between(%h: memref<4x8xf32>, %w: memref<8x16xf32>) {
  %one = arith.constant 1.0 : f32
  %c1 = memref.alloc() : memref<4x16xf32>
  %c2 = memref.alloc() : memref<4x16xf32>
  linalg.matmul ins(%h, %w : memref<4x8xf32>, memref<8x16xf32>) outs(%c1 : memref<4x16xf32>)
  linalg.fill ins(%one : f32) outs(%w : memref<8x16xf32>)
  linalg.matmul ins(%h, %w : memref<4x8xf32>, memref<8x16xf32>) outs(%c2 : memref<4x16xf32>)
  return
}

// -----

// A GEMM writing (as its C) the buffer an earlier bf16 copy was made of:
// the next GEMM reading that buffer converts it again; the other operand's
// copy stays valid throughout.
// CHECK-LABEL: func.func @chain
// CHECK-SAME: (%[[X:.*]]: memref<4x4xf32>)
// CHECK: %[[Y:.*]] = memref.alloc() : memref<4x4xf32>
// CHECK: linalg.fill
// CHECK: linalg.generic {{.*}} ins(%[[X]] : memref<4x4xf32>)
// CHECK: linalg.generic {{.*}} ins(%[[Y]] : memref<4x4xf32>)
// CHECK: call @modrt_cublas_gemm_bf16_strided_batched(
// CHECK-NOT: linalg.generic
// CHECK: call @modrt_cublas_gemm_bf16_strided_batched(
// CHECK-NOT: ins(%[[X]]
// CHECK: linalg.generic {{.*}} ins(%[[Y]] : memref<4x4xf32>)
// CHECK-NOT: linalg.generic
// CHECK: call @modrt_cublas_gemm_bf16_strided_batched(
// CHECK-NEXT: return
func.func @chain(%x: memref<4x4xf32>) {
  %y = memref.alloc() : memref<4x4xf32>
  %z1 = memref.alloc() : memref<4x4xf32>
  %z2 = memref.alloc() : memref<4x4xf32>
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%y : memref<4x4xf32>)
  linalg.matmul ins(%x, %y : memref<4x4xf32>, memref<4x4xf32>) outs(%z1 : memref<4x4xf32>)
  linalg.matmul ins(%x, %x : memref<4x4xf32>, memref<4x4xf32>) outs(%y : memref<4x4xf32>)
  linalg.matmul ins(%x, %y : memref<4x4xf32>, memref<4x4xf32>) outs(%z2 : memref<4x4xf32>)
  return
}

// -----

// A strided view (attention heads read out of a fused buffer): the whole
// root buffer is converted, and the view's offset (in elements) moves the
// pointer into the copy at 2 bytes per element; strides and leading
// dimension are the view's.
// CHECK-LABEL: func.func @batch_matmul_view
// CHECK-SAME: (%[[BIG:.*]]: memref<2x3x10xf32>
// CHECK: %[[SUB:.*]] = memref.subview %[[BIG]]
// CHECK: %[[BIG16:.*]] = memref.alloc() : memref<2x3x10xbf16>
// CHECK: linalg.generic {{.*}} ins(%[[BIG]] : memref<2x3x10xf32>) outs(%[[BIG16]] : memref<2x3x10xbf16>)
// CHECK: %{{.*}}, %[[OFF:.*]], %{{.*}}:3, %[[STR:.*]]:3 = memref.extract_strided_metadata %[[SUB]] :
// CHECK: memref.extract_aligned_pointer_as_index %[[BIG16]]
// CHECK: %[[TWO:.*]] = arith.constant 2 : index
// CHECK: arith.muli %[[OFF]], %[[TWO]] : index
// CHECK: %[[LD:.*]] = arith.index_cast %[[STR]]#1 : index to i64
// CHECK: %[[BS:.*]] = arith.index_cast %[[STR]]#0 : index to i64
// CHECK: %[[BATCH:.*]] = arith.constant 2 : i64
// CHECK: call @modrt_cublas_gemm_bf16_strided_batched(%[[BATCH]], {{.*}}, %[[LD]], %[[BS]],
func.func @batch_matmul_view(%big: memref<2x3x10xf32>, %b: memref<2x5x4xf32>, %c: memref<2x3x4xf32>) {
  %a = memref.subview %big[0, 0, 2] [2, 3, 5] [1, 1, 1] : memref<2x3x10xf32> to memref<2x3x5xf32, strided<[30, 10, 1], offset: 2>>
  linalg.batch_matmul ins(%a, %b : memref<2x3x5xf32, strided<[30, 10, 1], offset: 2>>, memref<2x5x4xf32>) outs(%c : memref<2x3x4xf32>)
  return
}

// -----

// A folded transpose (an adjoint's A^T): cuBLAS reads the bf16 copy of the
// transpose's input with the transpose flag; the transpose and its buffer
// are gone, as in f32.
// CHECK-LABEL: func.func @transposed_a
// CHECK-SAME: (%[[X:.*]]: memref<4x6xf32>, %[[B:.*]]: memref<4x8xf32>, %[[C:.*]]: memref<6x8xf32>)
// CHECK-NOT: linalg.transpose
// CHECK-NOT: memref<6x4x
// CHECK: %[[X16:.*]] = memref.alloc() : memref<4x6xbf16>
// CHECK: linalg.generic {{.*}} ins(%[[X]] : memref<4x6xf32>) outs(%[[X16]] : memref<4x6xbf16>)
// CHECK: memref.extract_aligned_pointer_as_index %[[X16]]
// CHECK: %[[LDX:.*]] = arith.constant 6 : i64
// CHECK: %[[TA:.*]] = arith.constant 2 : i32
// CHECK: call @modrt_cublas_gemm_bf16_strided_batched({{.*}}, %[[LDX]], {{.*}}, %[[TA]])
func.func @transposed_a(%x: memref<4x6xf32>, %b: memref<4x8xf32>, %c: memref<6x8xf32>) {
  %t = memref.alloc() : memref<6x4xf32>
  linalg.transpose ins(%x : memref<4x6xf32>) outs(%t : memref<6x4xf32>) permutation = [1, 0]
  linalg.matmul ins(%t, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  return
}

// -----

// An operand whose root buffer has a dynamic shape cannot be copied here:
// that GEMM stays an f32 SGEMM.
// CHECK-LABEL: func.func private @dynamic_root
// CHECK-NOT: bf16
// CHECK: call @modrt_cublas_sgemm_strided_batched(
func.func private @dynamic_root(%big: memref<?x4xf32>, %b: memref<4x8xf32>, %c: memref<6x8xf32>) {
  %a = memref.subview %big[0, 0] [6, 4] [1, 1] : memref<?x4xf32> to memref<6x4xf32, strided<[4, 1]>>
  linalg.matmul ins(%a, %b : memref<6x4xf32, strided<[4, 1]>>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  return
}
