// RUN: mod-opt %s --mod-linalg-to-cublas -split-input-file | FileCheck %s
// RUN: mod-opt %s --mod-linalg-to-cublas=allow-tf32=true -split-input-file | FileCheck %s --check-prefix=TF32

// A matmul operand that a linalg.transpose materialized (what a matmul's
// adjoint reads: dB = A^T dC) is read in place with a cuBLAS transpose flag
// (MODRT_CUBLAS_TRANSPOSE_A = 2): no transpose kernel, no buffer for it; the
// pointer and the leading dimension are those of the untransposed [4, 6]
// matrix, m, n, k those of the product.
// CHECK-LABEL: func.func @transposed_a
// CHECK-SAME: (%[[X:.*]]: memref<4x6xf32>, %[[B:.*]]: memref<4x8xf32>, %[[C:.*]]: memref<6x8xf32>)
// CHECK-NOT: linalg.transpose
// CHECK-NOT: memref.alloc
// CHECK: memref.extract_strided_metadata %[[X]]
// CHECK: memref.extract_aligned_pointer_as_index %[[X]]
// CHECK: %[[PX:.*]] = llvm.inttoptr
// CHECK: %[[LDX:.*]] = arith.constant 6 : i64
// CHECK: memref.extract_aligned_pointer_as_index %[[B]]
// CHECK: %[[PB:.*]] = llvm.inttoptr
// CHECK-DAG: %[[M:.*]] = arith.constant 6 : i64
// CHECK-DAG: %[[N:.*]] = arith.constant 8 : i64
// CHECK-DAG: %[[K:.*]] = arith.constant 4 : i64
// CHECK-DAG: %[[TA:.*]] = arith.constant 2 : i32
// CHECK: call @modrt_cublas_sgemm_strided_batched(%{{.*}}, %[[M]], %[[N]], %[[K]], %[[PX]], %[[LDX]], %{{.*}}, %[[PB]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[TA]])
// CHECK-NEXT: return
// TF32-LABEL: func.func @transposed_a
// TF32: %[[FLAGS:.*]] = arith.constant 3 : i32
// TF32: call @modrt_cublas_sgemm_strided_batched({{.*}}, %[[FLAGS]])
func.func @transposed_a(%x: memref<4x6xf32>, %b: memref<4x8xf32>, %c: memref<6x8xf32>) {
  %t = memref.alloc() : memref<6x4xf32>
  linalg.transpose ins(%x : memref<4x6xf32>) outs(%t : memref<6x4xf32>) permutation = [1, 0]
  linalg.matmul ins(%t, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  return
}

// -----

// B transposed (dA = dC B^T; MODRT_CUBLAS_TRANSPOSE_B = 4) in a batch
// matmul (permutation [0, 2, 1]); an unrelated op in between that writes
// another buffer does not matter.
// CHECK-LABEL: func.func @transposed_b_batch
// CHECK-SAME: (%[[A:.*]]: memref<2x6x4xf32>, %[[Y:.*]]: memref<2x8x4xf32>, %[[C:.*]]: memref<2x6x8xf32>, %[[D:.*]]: memref<2x6x8xf32>)
// CHECK-NOT: linalg.transpose
// CHECK: linalg.fill
// CHECK: memref.extract_aligned_pointer_as_index %[[A]]
// CHECK: memref.extract_strided_metadata %[[Y]]
// CHECK: memref.extract_aligned_pointer_as_index %[[Y]]
// CHECK: %[[PY:.*]] = llvm.inttoptr
// CHECK: %[[LDY:.*]] = arith.constant 4 : i64
// CHECK: %[[BSY:.*]] = arith.constant 32 : i64
// CHECK-DAG: %[[K:.*]] = arith.constant 4 : i64
// CHECK-DAG: %[[TB:.*]] = arith.constant 4 : i32
// CHECK: call @modrt_cublas_sgemm_strided_batched(%{{.*}}, %{{.*}}, %{{.*}}, %[[K]], %{{.*}}, %{{.*}}, %{{.*}}, %[[PY]], %[[LDY]], %[[BSY]], %{{.*}}, %{{.*}}, %{{.*}}, %[[TB]])
func.func @transposed_b_batch(%a: memref<2x6x4xf32>, %y: memref<2x8x4xf32>, %c: memref<2x6x8xf32>, %d: memref<2x6x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %t = memref.alloc() : memref<2x4x8xf32>
  linalg.transpose ins(%y : memref<2x8x4xf32>) outs(%t : memref<2x4x8xf32>) permutation = [0, 2, 1]
  %other = memref.alloc() : memref<4xf32>
  linalg.fill ins(%zero : f32) outs(%other : memref<4xf32>)
  linalg.batch_matmul ins(%a, %t : memref<2x6x4xf32>, memref<2x4x8xf32>) outs(%c : memref<2x6x8xf32>)
  return
}

// -----

// Both operands transposed: flags 2 | 4.
// CHECK-LABEL: func.func @both
// CHECK-NOT: linalg.transpose
// CHECK: %[[BOTH:.*]] = arith.constant 6 : i32
// CHECK: call @modrt_cublas_sgemm_strided_batched({{.*}}, %[[BOTH]])
func.func @both(%x: memref<4x6xf32>, %y: memref<8x4xf32>, %c: memref<6x8xf32>) {
  %ta = memref.alloc() : memref<6x4xf32>
  linalg.transpose ins(%x : memref<4x6xf32>) outs(%ta : memref<6x4xf32>) permutation = [1, 0]
  %tb = memref.alloc() : memref<4x8xf32>
  linalg.transpose ins(%y : memref<8x4xf32>) outs(%tb : memref<4x8xf32>) permutation = [1, 0]
  linalg.matmul ins(%ta, %tb : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  return
}

// -----

// Negative cases: the transpose stays, and the call reads its buffer with
// no transpose flag, when the transposed buffer has another reader, when the
// transpose's input is written between the transpose and the matmul (the
// matmul must see the old values), or when no dimension of the result has
// unit stride in the input (cuBLAS needs contiguous rows or columns).
// CHECK-LABEL: func.func @other_reader
// CHECK: %[[T:.*]] = memref.alloc() : memref<6x4xf32>
// CHECK: linalg.transpose ins(%{{.*}} : memref<4x6xf32>) outs(%[[T]] : memref<6x4xf32>)
// CHECK: memref.extract_aligned_pointer_as_index %[[T]]
// CHECK: %[[NONE:.*]] = arith.constant 0 : i32
// CHECK: call @modrt_cublas_sgemm_strided_batched({{.*}}, %[[NONE]])
// CHECK: linalg.copy ins(%[[T]]
func.func @other_reader(%x: memref<4x6xf32>, %b: memref<4x8xf32>, %c: memref<6x8xf32>, %keep: memref<6x4xf32>) {
  %t = memref.alloc() : memref<6x4xf32>
  linalg.transpose ins(%x : memref<4x6xf32>) outs(%t : memref<6x4xf32>) permutation = [1, 0]
  linalg.matmul ins(%t, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  linalg.copy ins(%t : memref<6x4xf32>) outs(%keep : memref<6x4xf32>)
  return
}

// CHECK-LABEL: func.func @input_overwritten
// CHECK: linalg.transpose
// CHECK: linalg.fill
// CHECK: %[[NONE:.*]] = arith.constant 0 : i32
// CHECK: call @modrt_cublas_sgemm_strided_batched({{.*}}, %[[NONE]])
func.func @input_overwritten(%b: memref<4x8xf32>, %c: memref<6x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %x = memref.alloc() : memref<4x6xf32>
  linalg.fill ins(%zero : f32) outs(%x : memref<4x6xf32>)
  %t = memref.alloc() : memref<6x4xf32>
  linalg.transpose ins(%x : memref<4x6xf32>) outs(%t : memref<6x4xf32>) permutation = [1, 0]
  %one = arith.constant 1.0 : f32
  linalg.fill ins(%one : f32) outs(%x : memref<4x6xf32>)
  linalg.matmul ins(%t, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  return
}

// CHECK-LABEL: func.func @no_unit_stride
// CHECK: linalg.transpose
// CHECK: %[[NONE:.*]] = arith.constant 0 : i32
// CHECK: call @modrt_cublas_sgemm_strided_batched({{.*}}, %[[NONE]])
func.func @no_unit_stride(%y: memref<8x4x2xf32>, %a: memref<2x6x4xf32>, %c: memref<2x6x8xf32>) {
  %t = memref.alloc() : memref<2x4x8xf32>
  linalg.transpose ins(%y : memref<8x4x2xf32>) outs(%t : memref<2x4x8xf32>) permutation = [2, 1, 0]
  linalg.batch_matmul ins(%a, %t : memref<2x6x4xf32>, memref<2x4x8xf32>) outs(%c : memref<2x6x8xf32>)
  return
}

// -----

// A permutation that moves the batch dimension is a batch stride: B's
// batch entries are 8 floats apart, its rows 16, no flag.
// CHECK-LABEL: func.func @batch_permuted
// CHECK-SAME: (%[[Y:.*]]: memref<4x2x8xf32>
// CHECK-NOT: linalg.transpose
// CHECK: memref.extract_aligned_pointer_as_index %[[Y]]
// CHECK: %[[PY:.*]] = llvm.inttoptr
// CHECK: %[[LDY:.*]] = arith.constant 16 : i64
// CHECK: %[[BSY:.*]] = arith.constant 8 : i64
// CHECK: %[[NONE:.*]] = arith.constant 0 : i32
// CHECK: call @modrt_cublas_sgemm_strided_batched(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[PY]], %[[LDY]], %[[BSY]], %{{.*}}, %{{.*}}, %{{.*}}, %[[NONE]])
// CHECK-NOT: linalg.transpose
func.func @batch_permuted(%y: memref<4x2x8xf32>, %a: memref<2x6x4xf32>, %c: memref<2x6x8xf32>) {
  %t = memref.alloc() : memref<2x4x8xf32>
  linalg.transpose ins(%y : memref<4x2x8xf32>) outs(%t : memref<2x4x8xf32>) permutation = [1, 0, 2]
  linalg.batch_matmul ins(%a, %t : memref<2x6x4xf32>, memref<2x4x8xf32>) outs(%c : memref<2x6x8xf32>)
  return
}

// -----

// Attention scores Q K^T with the heads read in place from the fused QKV
// projection [B=2, S=16, 3 * H * D = 96]: Q is [B, S, H=4, D=8] ->
// [B, H, S, D] collapsed to [B * H, S, D], K goes to [B, H, D, S]. No
// transpose and no buffer remain. Each head of a sequence starts 8 floats
// after the previous one, and rows are 96 floats apart; K^T is K read with
// the transpose flag (4). Heads of different sequences are 1536 floats
// apart, which is not 4 * 8: one call per sequence (batch 4 each), the
// second with every pointer moved by one sequence (1536 * 4 bytes for Q
// and K, 4 * 256 floats for the scores).
// CHECK-LABEL: func.func @heads
// CHECK-SAME: (%[[QKV:.*]]: memref<2x16x96xf32>, %[[S:.*]]: memref<8x16x16xf32>)
// CHECK-NOT: linalg.transpose
// CHECK-NOT: memref.alloc
// CHECK-NOT: memref.collapse_shape
// CHECK: %[[Q:.*]] = memref.subview %{{.*}}[0, 0, 0, 0]
// CHECK: %[[K:.*]] = memref.subview %{{.*}}[0, 0, 4, 0]
// CHECK: memref.extract_aligned_pointer_as_index %[[Q]]
// CHECK: %[[AQ:.*]] = arith.index_cast %{{.*}} : index to i64
// CHECK: %[[PQ:.*]] = llvm.inttoptr %[[AQ]]
// CHECK: %[[LDQ:.*]] = arith.constant 96 : i64
// CHECK: %[[SEQQ:.*]] = arith.constant 1536 : i64
// CHECK: %[[HEADQ:.*]] = arith.constant 8 : i64
// CHECK: memref.extract_aligned_pointer_as_index %[[K]]
// CHECK: %[[AK:.*]] = arith.index_cast %{{.*}} : index to i64
// CHECK: %[[PK:.*]] = llvm.inttoptr %[[AK]]
// CHECK: %[[LDK:.*]] = arith.constant 96 : i64
// CHECK: %[[SEQK:.*]] = arith.constant 1536 : i64
// CHECK: %[[HEADK:.*]] = arith.constant 8 : i64
// CHECK: memref.extract_aligned_pointer_as_index %[[S]]
// CHECK: %[[AS:.*]] = arith.index_cast %{{.*}} : index to i64
// CHECK: %[[PS:.*]] = llvm.inttoptr %[[AS]]
// CHECK: %[[LDS:.*]] = arith.index_cast
// CHECK: %[[HEADS:.*]] = arith.index_cast
// CHECK: %[[FOUR:.*]] = arith.constant 4 : i64
// CHECK: %[[SEQS:.*]] = arith.muli %[[HEADS]], %[[FOUR]] : i64
// CHECK-DAG: %[[M:.*]] = arith.constant 16 : i64
// CHECK-DAG: %[[K8:.*]] = arith.constant 8 : i64
// CHECK-DAG: %[[H:.*]] = arith.constant 4 : i64
// CHECK-DAG: %[[TB:.*]] = arith.constant 4 : i32
// CHECK: call @modrt_cublas_sgemm_strided_batched(%[[H]], %[[M]], %{{.*}}, %[[K8]], %[[PQ]], %[[LDQ]], %[[HEADQ]], %[[PK]], %[[LDK]], %[[HEADK]], %[[PS]], %[[LDS]], %[[HEADS]], %[[TB]])
// CHECK: %[[BQ:.*]] = arith.muli %[[SEQQ]], %{{.*}} : i64
// CHECK: %[[AQ1:.*]] = arith.addi %[[AQ]], %[[BQ]] : i64
// CHECK: %[[PQ1:.*]] = llvm.inttoptr %[[AQ1]]
// CHECK: %[[BK:.*]] = arith.muli %[[SEQK]], %{{.*}} : i64
// CHECK: %[[AK1:.*]] = arith.addi %[[AK]], %[[BK]] : i64
// CHECK: %[[PK1:.*]] = llvm.inttoptr %[[AK1]]
// CHECK: %[[BS:.*]] = arith.muli %[[SEQS]], %{{.*}} : i64
// CHECK: %[[AS1:.*]] = arith.addi %[[AS]], %[[BS]] : i64
// CHECK: %[[PS1:.*]] = llvm.inttoptr %[[AS1]]
// CHECK: call @modrt_cublas_sgemm_strided_batched(%[[H]], %[[M]], %{{.*}}, %[[K8]], %[[PQ1]], %[[LDQ]], %[[HEADQ]], %[[PK1]], %[[LDK]], %[[HEADK]], %[[PS1]], %[[LDS]], %[[HEADS]], %[[TB]])
// CHECK-NEXT: return
func.func @heads(%qkv: memref<2x16x96xf32>, %s: memref<8x16x16xf32>) {
  %e = memref.expand_shape %qkv [[0], [1], [2, 3]] output_shape [2, 16, 12, 8] : memref<2x16x96xf32> into memref<2x16x12x8xf32>
  %q = memref.subview %e[0, 0, 0, 0] [2, 16, 4, 8] [1, 1, 1, 1] : memref<2x16x12x8xf32> to memref<2x16x4x8xf32, strided<[1536, 96, 8, 1]>>
  %k = memref.subview %e[0, 0, 4, 0] [2, 16, 4, 8] [1, 1, 1, 1] : memref<2x16x12x8xf32> to memref<2x16x4x8xf32, strided<[1536, 96, 8, 1], offset: 32>>
  %tq = memref.alloc() : memref<2x4x16x8xf32>
  linalg.transpose ins(%q : memref<2x16x4x8xf32, strided<[1536, 96, 8, 1]>>) outs(%tq : memref<2x4x16x8xf32>) permutation = [0, 2, 1, 3]
  %tk = memref.alloc() : memref<2x4x8x16xf32>
  linalg.transpose ins(%k : memref<2x16x4x8xf32, strided<[1536, 96, 8, 1], offset: 32>>) outs(%tk : memref<2x4x8x16xf32>) permutation = [0, 2, 3, 1]
  %cq = memref.collapse_shape %tq [[0, 1], [2], [3]] : memref<2x4x16x8xf32> into memref<8x16x8xf32>
  %ck = memref.collapse_shape %tk [[0, 1], [2], [3]] : memref<2x4x8x16xf32> into memref<8x8x16xf32>
  linalg.batch_matmul ins(%cq, %ck : memref<8x16x8xf32>, memref<8x8x16xf32>) outs(%s : memref<8x16x16xf32>)
  return
}

// -----

// One sequence (B = 1): the heads are 8 floats apart throughout, one call.
// CHECK-LABEL: func.func @heads_one_sequence
// CHECK-NOT: linalg.transpose
// CHECK: %[[LD:.*]] = arith.constant 96 : i64
// CHECK: %[[HEAD:.*]] = arith.constant 8 : i64
// CHECK: call @modrt_cublas_sgemm_strided_batched(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[LD]], %[[HEAD]],
// CHECK-NOT: call @modrt_cublas_sgemm_strided_batched(
// CHECK: return
func.func @heads_one_sequence(%qkv: memref<1x16x96xf32>, %v: memref<4x16x8xf32>, %p: memref<4x16x16xf32>, %o: memref<4x16x8xf32>) {
  %e = memref.expand_shape %qkv [[0], [1], [2, 3]] output_shape [1, 16, 12, 8] : memref<1x16x96xf32> into memref<1x16x12x8xf32>
  %q = memref.subview %e[0, 0, 0, 0] [1, 16, 4, 8] [1, 1, 1, 1] : memref<1x16x12x8xf32> to memref<1x16x4x8xf32, strided<[1536, 96, 8, 1]>>
  %tq = memref.alloc() : memref<1x4x16x8xf32>
  linalg.transpose ins(%q : memref<1x16x4x8xf32, strided<[1536, 96, 8, 1]>>) outs(%tq : memref<1x4x16x8xf32>) permutation = [0, 2, 1, 3]
  %cq = memref.collapse_shape %tq [[0, 1], [2], [3]] : memref<1x4x16x8xf32> into memref<4x16x8xf32>
  linalg.batch_matmul ins(%p, %cq : memref<4x16x16xf32>, memref<4x16x8xf32>) outs(%o : memref<4x16x8xf32>)
  return
}

// -----

// A buffer reused (what bufferization does): the first transpose's values
// are read by two GEMMs, then a second transpose overwrites the buffer and
// one GEMM reads that. All three read their transposes' inputs in place
// (A transposed: 2), and both transposes and the buffer go. (The GEMMs
// write fresh buffers: a GEMM writing a function argument between the
// transpose and a later reader could be writing the transpose's input.)
// CHECK-LABEL: func.func @reused
// CHECK-SAME: (%[[X:.*]]: memref<4x6xf32>, %[[Y:.*]]: memref<4x6xf32>,
// CHECK-NOT: linalg.transpose
// CHECK: memref.extract_aligned_pointer_as_index %[[X]]
// CHECK: %[[TA:.*]] = arith.constant 2 : i32
// CHECK: call @modrt_cublas_sgemm_strided_batched({{.*}}, %[[TA]]) :
// CHECK: memref.extract_aligned_pointer_as_index %[[X]]
// CHECK: call @modrt_cublas_sgemm_strided_batched({{.*}}, %{{.*}}) :
// CHECK: memref.extract_aligned_pointer_as_index %[[Y]]
// CHECK: call @modrt_cublas_sgemm_strided_batched(
// CHECK-NOT: linalg.transpose
// CHECK: return
func.func @reused(%x: memref<4x6xf32>, %y: memref<4x6xf32>, %b: memref<4x8xf32>) -> (memref<6x8xf32>, memref<6x8xf32>, memref<6x8xf32>) {
  %t = memref.alloc() : memref<6x4xf32>
  %c = memref.alloc() : memref<6x8xf32>
  %d = memref.alloc() : memref<6x8xf32>
  %e = memref.alloc() : memref<6x8xf32>
  linalg.transpose ins(%x : memref<4x6xf32>) outs(%t : memref<6x4xf32>) permutation = [1, 0]
  linalg.matmul ins(%t, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  linalg.matmul ins(%t, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%d : memref<6x8xf32>)
  linalg.transpose ins(%y : memref<4x6xf32>) outs(%t : memref<6x4xf32>) permutation = [1, 0]
  linalg.matmul ins(%t, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%e : memref<6x8xf32>)
  return %c, %d, %e : memref<6x8xf32>, memref<6x8xf32>, memref<6x8xf32>
}

// -----

// The transposed values are read after the GEMM by something that is not a
// GEMM (here a copy): the transpose stays, and so does the GEMM's read of
// its buffer, while the later transpose into the same buffer, read only by
// a GEMM, is folded.
// CHECK-LABEL: func.func @read_later
// CHECK: %[[T:.*]] = memref.alloc() : memref<6x4xf32>
// CHECK: linalg.transpose ins(%{{.*}} : memref<4x6xf32>) outs(%[[T]] : memref<6x4xf32>)
// CHECK-NOT: linalg.transpose
// CHECK: memref.extract_aligned_pointer_as_index %[[T]]
// CHECK: call @modrt_cublas_sgemm_strided_batched(
// CHECK: linalg.copy ins(%[[T]]
// CHECK-NOT: linalg.transpose
// CHECK: call @modrt_cublas_sgemm_strided_batched(
// CHECK-NOT: linalg.transpose
func.func @read_later(%x: memref<4x6xf32>, %y: memref<4x6xf32>, %b: memref<4x8xf32>, %c: memref<6x8xf32>, %e: memref<6x8xf32>, %keep: memref<6x4xf32>) {
  %t = memref.alloc() : memref<6x4xf32>
  linalg.transpose ins(%x : memref<4x6xf32>) outs(%t : memref<6x4xf32>) permutation = [1, 0]
  linalg.matmul ins(%t, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  linalg.copy ins(%t : memref<6x4xf32>) outs(%keep : memref<6x4xf32>)
  linalg.transpose ins(%y : memref<4x6xf32>) outs(%t : memref<6x4xf32>) permutation = [1, 0]
  linalg.matmul ins(%t, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%e : memref<6x8xf32>)
  return
}

// -----

// A saved activation read transposed back by an adjoint: the forward
// transpose [B, S, H, D] -> [B, H, S, D] feeds a forward GEMM, and later a
// second transpose of its result ([0, 2, 1] on the collapsed [B * H, S, D])
// feeds a backward GEMM. Both read the projection in place: the forward
// GEMM with rows 96 floats apart, the backward one through both
// permutations, i.e. with the transpose flag (A = 2). A kernel in between
// that writes only its workgroup memory and other buffers (a routing
// kernel) does not matter. Neither transpose nor buffer is left.
// CHECK-LABEL: func.func @saved_and_transposed_back
// CHECK-SAME: (%[[QKV:.*]]: memref<2x16x96xf32>,
// CHECK-NOT: linalg.transpose
// CHECK-NOT: memref.alloc() : memref<2x4x16x8xf32>
// CHECK-NOT: memref.alloc() : memref<8x8x16xf32>
// CHECK: %[[Q:.*]] = memref.subview
// CHECK: memref.extract_aligned_pointer_as_index %[[Q]]
// CHECK: %[[LD:.*]] = arith.constant 96 : i64
// CHECK: %[[NONE:.*]] = arith.constant 0 : i32
// CHECK: call @modrt_cublas_sgemm_strided_batched({{.*}}, %[[NONE]]) :
// CHECK: call @modrt_cublas_sgemm_strided_batched({{.*}}, %[[NONE]]) :
// CHECK: gpu.launch
// CHECK: memref.store
// CHECK: gpu.terminator
// CHECK: memref.extract_aligned_pointer_as_index %[[Q]]
// CHECK: %[[LDT:.*]] = arith.constant 96 : i64
// CHECK: %[[TA:.*]] = arith.constant 2 : i32
// CHECK: call @modrt_cublas_sgemm_strided_batched(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[LDT]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[TA]]) :
// CHECK: call @modrt_cublas_sgemm_strided_batched(
// CHECK-NOT: linalg.transpose
// CHECK: return
func.func @saved_and_transposed_back(%qkv: memref<2x16x96xf32>, %k: memref<8x8x16xf32>, %g: memref<8x16x16xf32>)
    -> (memref<8x16x16xf32>, memref<8x8x16xf32>, memref<2xf32>) {
  %flag = memref.alloc() : memref<2xf32>
  %e = memref.expand_shape %qkv [[0], [1], [2, 3]] output_shape [2, 16, 12, 8] : memref<2x16x96xf32> into memref<2x16x12x8xf32>
  %q = memref.subview %e[0, 0, 0, 0] [2, 16, 4, 8] [1, 1, 1, 1] : memref<2x16x12x8xf32> to memref<2x16x4x8xf32, strided<[1536, 96, 8, 1]>>
  %tq = memref.alloc() : memref<2x4x16x8xf32>
  linalg.transpose ins(%q : memref<2x16x4x8xf32, strided<[1536, 96, 8, 1]>>) outs(%tq : memref<2x4x16x8xf32>) permutation = [0, 2, 1, 3]
  %cq = memref.collapse_shape %tq [[0, 1], [2], [3]] : memref<2x4x16x8xf32> into memref<8x16x8xf32>
  %s = memref.alloc() : memref<8x16x16xf32>
  linalg.batch_matmul ins(%cq, %k : memref<8x16x8xf32>, memref<8x8x16xf32>) outs(%s : memref<8x16x16xf32>)
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %one = arith.constant 1.0 : f32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1) threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1)
      workgroup(%wg : memref<32xf32, #gpu.address_space<workgroup>>) {
    memref.store %one, %wg[%tx] : memref<32xf32, #gpu.address_space<workgroup>>
    gpu.barrier
    %v = memref.load %wg[%tx] : memref<32xf32, #gpu.address_space<workgroup>>
    memref.store %v, %flag[%bx] : memref<2xf32>
    gpu.terminator
  }
  %qt = memref.alloc() : memref<8x8x16xf32>
  linalg.transpose ins(%cq : memref<8x16x8xf32>) outs(%qt : memref<8x8x16xf32>) permutation = [0, 2, 1]
  %dk = memref.alloc() : memref<8x8x16xf32>
  linalg.batch_matmul ins(%qt, %g : memref<8x8x16xf32>, memref<8x16x16xf32>) outs(%dk : memref<8x8x16xf32>)
  return %s, %dk, %flag : memref<8x16x16xf32>, memref<8x8x16xf32>, memref<2xf32>
}

// -----

// The same, but the kernel in between writes the projection: the forward
// transpose stays (the backward GEMM must see the old values), and the
// backward GEMM reads its buffer with the transpose flag, [B * H, S, D]
// with rows 8 floats apart and heads 128.
// CHECK-LABEL: func.func @saved_then_overwritten
// CHECK: %[[TQ:.*]] = memref.alloc() : memref<2x4x16x8xf32>
// CHECK: linalg.transpose {{.*}} outs(%[[TQ]]
// CHECK: %[[CQ:.*]] = memref.collapse_shape %[[TQ]]
// CHECK: gpu.launch
// CHECK-NOT: linalg.transpose
// CHECK: memref.extract_aligned_pointer_as_index %[[CQ]]
// CHECK: %[[LD:.*]] = arith.constant 8 : i64
// CHECK: %[[HEAD:.*]] = arith.constant 128 : i64
// CHECK: %[[TA:.*]] = arith.constant 2 : i32
// CHECK: call @modrt_cublas_sgemm_strided_batched(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[LD]], %[[HEAD]], {{.*}}, %[[TA]]) :
// CHECK-NOT: linalg.transpose
// CHECK: return
func.func @saved_then_overwritten(%qkv: memref<2x16x96xf32>, %k: memref<8x8x16xf32>, %g: memref<8x16x16xf32>)
    -> (memref<8x16x16xf32>, memref<8x8x16xf32>) {
  %proj = memref.alloc() : memref<2x16x96xf32>
  memref.copy %qkv, %proj : memref<2x16x96xf32> to memref<2x16x96xf32>
  %e = memref.expand_shape %proj [[0], [1], [2, 3]] output_shape [2, 16, 12, 8] : memref<2x16x96xf32> into memref<2x16x12x8xf32>
  %q = memref.subview %e[0, 0, 0, 0] [2, 16, 4, 8] [1, 1, 1, 1] : memref<2x16x12x8xf32> to memref<2x16x4x8xf32, strided<[1536, 96, 8, 1]>>
  %tq = memref.alloc() : memref<2x4x16x8xf32>
  linalg.transpose ins(%q : memref<2x16x4x8xf32, strided<[1536, 96, 8, 1]>>) outs(%tq : memref<2x4x16x8xf32>) permutation = [0, 2, 1, 3]
  %cq = memref.collapse_shape %tq [[0, 1], [2], [3]] : memref<2x4x16x8xf32> into memref<8x16x8xf32>
  %s = memref.alloc() : memref<8x16x16xf32>
  linalg.batch_matmul ins(%cq, %k : memref<8x16x8xf32>, memref<8x8x16xf32>) outs(%s : memref<8x16x16xf32>)
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %one = arith.constant 1.0 : f32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1) threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1) {
    memref.store %one, %proj[%c0, %c0, %c0] : memref<2x16x96xf32>
    gpu.terminator
  }
  %qt = memref.alloc() : memref<8x8x16xf32>
  linalg.transpose ins(%cq : memref<8x16x8xf32>) outs(%qt : memref<8x8x16xf32>) permutation = [0, 2, 1]
  %dk = memref.alloc() : memref<8x8x16xf32>
  linalg.batch_matmul ins(%qt, %g : memref<8x8x16xf32>, memref<8x16x16xf32>) outs(%dk : memref<8x8x16xf32>)
  return %s, %dk : memref<8x16x16xf32>, memref<8x8x16xf32>
}
