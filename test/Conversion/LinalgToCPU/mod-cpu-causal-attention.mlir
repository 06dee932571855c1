// RUN: mod-opt %s --split-input-file --pass-pipeline='builtin.module(func.func(mod-cpu-causal-attention{tile-rows=4}))' | FileCheck %s
// RUN: mod-opt %s --split-input-file --pass-pipeline='builtin.module(func.func(mod-cpu-causal-attention{tile-rows=4}),mod-linalg-to-blas)' | FileCheck %s --check-prefix=BLAS

// Attention over S = 10 tokens, 2 heads of 4, as bufferization leaves it:
// scores (C1), the masked row max, exp, row sum, division, p·V (C2). The
// mask compares linalg.index of the key and query dims (j <= i).

#q = affine_map<(b, h, i, j, d) -> (b, i, h, d)>
#k = affine_map<(b, h, i, j, d) -> (b, j, h, d)>
#s = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#id = affine_map<(b, h, i, j) -> (b, h, i, j)>
#row = affine_map<(b, h, i, j) -> (b, h, i)>
#p = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v = affine_map<(b, h, i, e, j) -> (b, j, h, e)>
#o = affine_map<(b, h, i, e, j) -> (b, h, i, e)>

// CHECK-LABEL: func.func @iota
// The three tiles of 4, 4 and 2 query rows, over batch and heads.
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[O:.*]] : memref<1x2x10x4xf32>)
// CHECK: scf.parallel (%[[B:.*]], %[[H:.*]], %[[T:.*]]) = ({{.*}}) to (%c1, %c2, %c3)
// CHECK: %[[I0:.*]] = arith.muli %[[T]], %c4 : index
// CHECK: %[[LEFT:.*]] = arith.subi %c10, %[[I0]] : index
// CHECK: %[[ROWS:.*]] = arith.minsi %{{.*}}, %[[LEFT]] : index
// CHECK: %[[QEND:.*]] = arith.addi %[[I0]], %[[ROWS]] : index
// CHECK: %[[KEND:.*]] = arith.minsi %[[QEND]], %{{.*}} : index
// Scratch of one tile on the stack: scores, row max, probabilities, row sum.
// CHECK: %[[S:.*]] = memref.alloca() {alignment = 64 : i64} : memref<1x1x4x10xf32>
// CHECK: %[[ST:.*]] = memref.subview %[[S]][0, 0, 0, 0] [1, 1, %[[ROWS]], %[[KEND]]] [1, 1, 1, 1]
// CHECK: memref.alloca() {alignment = 64 : i64} : memref<1x1x4xf32>
// CHECK: %[[P:.*]] = memref.alloca() {alignment = 64 : i64} : memref<1x1x4x10xf32>
// CHECK: %[[PT:.*]] = memref.subview %[[P]][0, 0, 0, 0] [1, 1, %[[ROWS]], %[[KEND]]] [1, 1, 1, 1]
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[ST]] :
// C1 on the tile's query rows and the keys before %kend.
// CHECK: %[[QT:.*]] = memref.subview %arg0[%[[B]], %[[I0]], %[[H]], 0] [1, %[[ROWS]], 1, 4] [1, 1, 1, 1]
// CHECK: %[[KT:.*]] = memref.subview %arg1[%[[B]], 0, %[[H]], 0] [1, %[[KEND]], 1, 4] [1, 1, 1, 1]
// CHECK: linalg.generic {{.*}} ins(%[[QT]], %[[KT]] : {{.*}}) outs(%[[ST]] :
// The masked max sees absolute query indices.
// CHECK: linalg.index 2
// CHECK: affine.apply #{{.*}}(%[[I0]])
// CHECK: arith.cmpi ule
// C2 into the tile's rows of the output.
// CHECK: %[[VT:.*]] = memref.subview %arg2[%[[B]], 0, %[[H]], 0] [1, %[[KEND]], 1, 4] [1, 1, 1, 1]
// CHECK: %[[OT:.*]] = memref.subview %[[O]][%[[B]], %[[H]], %[[I0]], 0] [1, 1, %[[ROWS]], 4] [1, 1, 1, 1]
// CHECK: linalg.generic {{.*}} ins(%[[PT]], %[[VT]] : {{.*}}) outs(%[[OT]] :
// CHECK: } {mod.gemm_tiles}
// CHECK-NOT: memref.alloc()
// CHECK: return

// With --mod-linalg-to-blas: one cblas_sgemm per contraction and tile, with
// M = the tile's rows and N (scores) or K (p·V) = the key range, read from
// the subviews; no nested slicing.
// BLAS-LABEL: func.func @iota
// BLAS: scf.parallel
// BLAS: %[[DQ:.*]] = memref.dim %{{.*}}, %c1{{.*}} : memref<1x?x1x4xf32
// BLAS: memref.dim %{{.*}}, %c1{{.*}} : memref<1x?x1x4xf32
// BLAS: %[[M:.*]] = arith.index_cast %[[DQ]] : index to i32
// BLAS: func.call @cblas_sgemm(%c101_i32, %c111_i32, %c112_i32, %[[M]], %{{.*}}, %c4_i32,
// BLAS: memref.dim %[[PT:.*]], %c2{{.*}} : memref<1x1x?x?xf32
// BLAS: %[[DV:.*]] = memref.dim %[[PT]], %c3{{.*}} : memref<1x1x?x?xf32
// BLAS: %[[K2:.*]] = arith.index_cast %[[DV]] : index to i32
// BLAS: func.call @cblas_sgemm(%c101_i32, %c111_i32, %c111_i32{{.*}}, %{{.*}}, %c4_i32, %[[K2]],
// BLAS: } {mod.gemm_tiles}
func.func @iota(%q: memref<1x10x2x4xf32>, %k: memref<1x10x2x4xf32>,
                %v: memref<1x10x2x4xf32>, %o: memref<1x2x10x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %neg = arith.constant -1.0e30 : f32
  %scale = arith.constant 0.5 : f32
  %s = memref.alloc() {alignment = 64 : i64} : memref<1x2x10x10xf32>
  linalg.fill ins(%zero : f32) outs(%s : memref<1x2x10x10xf32>)
  linalg.generic {indexing_maps = [#q, #k, #s], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<1x10x2x4xf32>, memref<1x10x2x4xf32>) outs(%s : memref<1x2x10x10xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  %max = memref.alloc() {alignment = 64 : i64} : memref<1x2x10xf32>
  linalg.fill ins(%ninf : f32) outs(%max : memref<1x2x10xf32>)
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%s : memref<1x2x10x10xf32>) outs(%max : memref<1x2x10xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %i = linalg.index 2 : index
    %j = linalg.index 3 : index
    %keep = arith.cmpi ule, %j, %i : index
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %m = arith.maximumf %z, %acc : f32
    linalg.yield %m : f32
  }
  %e = memref.alloc() {alignment = 64 : i64} : memref<1x2x10x10xf32>
  linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s, %max : memref<1x2x10x10xf32>, memref<1x2x10xf32>) outs(%e : memref<1x2x10x10xf32>) {
  ^bb0(%x: f32, %mx: f32, %out: f32):
    %i = linalg.index 2 : index
    %j = linalg.index 3 : index
    %keep = arith.cmpi ule, %j, %i : index
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %d = arith.subf %z, %mx : f32
    %ex = math.exp %d : f32
    linalg.yield %ex : f32
  }
  %sum = memref.alloc() {alignment = 64 : i64} : memref<1x2x10xf32>
  linalg.fill ins(%zero : f32) outs(%sum : memref<1x2x10xf32>)
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%e : memref<1x2x10x10xf32>) outs(%sum : memref<1x2x10xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %r = arith.addf %acc, %x : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%e, %sum : memref<1x2x10x10xf32>, memref<1x2x10xf32>) outs(%e : memref<1x2x10x10xf32>) {
  ^bb0(%x: f32, %l: f32, %out: f32):
    %r = arith.divf %x, %l : f32
    linalg.yield %r : f32
  }
  linalg.fill ins(%zero : f32) outs(%o : memref<1x2x10x4xf32>)
  linalg.generic {indexing_maps = [#p, #v, #o], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%e, %v : memref<1x2x10x10xf32>, memref<1x10x2x4xf32>) outs(%o : memref<1x2x10x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  memref.dealloc %s : memref<1x2x10x10xf32>
  memref.dealloc %max : memref<1x2x10xf32>
  memref.dealloc %e : memref<1x2x10x10xf32>
  memref.dealloc %sum : memref<1x2x10xf32>
  return
}

// -----

// Positions compared through a mask buffer written before the chain (as
// bufferization leaves a mask shared by layers): each tile checks at run
// time that the positions of the skipped keys are above its queries',
// else it uses every key.

#q = affine_map<(b, h, i, j, d) -> (b, i, h, d)>
#k = affine_map<(b, h, i, j, d) -> (b, j, h, d)>
#s = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#id = affine_map<(b, h, i, j) -> (b, h, i, j)>
#row = affine_map<(b, h, i, j) -> (b, h, i)>
#mask = affine_map<(b, h, i, j) -> (b, i, j)>
#p = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v = affine_map<(b, h, i, e, j) -> (b, j, h, e)>
#o = affine_map<(b, h, i, e, j) -> (b, h, i, e)>
#pq = affine_map<(b, i, j) -> (b, i)>
#pk = affine_map<(b, i, j) -> (b, j)>
#m3 = affine_map<(b, i, j) -> (b, i, j)>

// CHECK-LABEL: func.func @positions
// CHECK: scf.parallel (%[[B:.*]], %[[H:.*]], %[[T:.*]]) =
// CHECK: %[[QEND:.*]] = arith.addi
// CHECK: %[[KEND:.*]] = arith.minsi %[[QEND]]
// CHECK: %[[QMAX:.*]] = scf.for %[[I:.*]] = %{{.*}} to %[[QEND]]
// CHECK:   memref.load %{{.*}}[%[[B]], %[[I]]] : memref<1x10xi32>
// CHECK:   arith.maxsi
// CHECK: %[[KMIN:.*]] = scf.for %[[J:.*]] = %[[KEND]] to
// CHECK:   memref.load %{{.*}}[%[[B]], %[[J]]] : memref<1x10xi32>
// CHECK:   arith.minsi
// CHECK: %[[ABOVE:.*]] = arith.cmpi slt, %[[QMAX]], %[[KMIN]] : i32
// CHECK: %[[KEYS:.*]] = arith.select %{{.*}}, %[[KEND]], %{{.*}} : index
// CHECK: memref.subview %{{.*}}[0, 0, 0, 0] [1, 1, %{{.*}}, %[[KEYS]]]
// CHECK: } {mod.gemm_tiles}

// The key range is a select between the tile's end and all keys: its
// bound still lets both contractions become GEMM calls.
// BLAS-LABEL: func.func @positions
// BLAS: scf.parallel
// BLAS: func.call @cblas_sgemm
// BLAS: func.call @cblas_sgemm
// BLAS: } {mod.gemm_tiles}
func.func @positions(%q: memref<1x10x2x4xf32>, %k: memref<1x10x2x4xf32>,
                     %v: memref<1x10x2x4xf32>, %o: memref<1x2x10x4xf32>,
                     %pos: memref<1x10xi32>) {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %neg = arith.constant -1.0e30 : f32
  %scale = arith.constant 0.5 : f32
  %mask = memref.alloc() {alignment = 64 : i64} : memref<1x10x10xi1>
  linalg.generic {indexing_maps = [#pq, #pk, #m3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%pos, %pos : memref<1x10xi32>, memref<1x10xi32>) outs(%mask : memref<1x10x10xi1>) {
  ^bb0(%pi: i32, %pj: i32, %out: i1):
    %c = arith.cmpi sle, %pj, %pi : i32
    linalg.yield %c : i1
  }
  %s = memref.alloc() {alignment = 64 : i64} : memref<1x2x10x10xf32>
  linalg.fill ins(%zero : f32) outs(%s : memref<1x2x10x10xf32>)
  linalg.generic {indexing_maps = [#q, #k, #s], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<1x10x2x4xf32>, memref<1x10x2x4xf32>) outs(%s : memref<1x2x10x10xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  %max = memref.alloc() {alignment = 64 : i64} : memref<1x2x10xf32>
  linalg.fill ins(%ninf : f32) outs(%max : memref<1x2x10xf32>)
  linalg.generic {indexing_maps = [#id, #mask, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%s, %mask : memref<1x2x10x10xf32>, memref<1x10x10xi1>) outs(%max : memref<1x2x10xf32>) {
  ^bb0(%x: f32, %keep: i1, %acc: f32):
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %m = arith.maximumf %z, %acc : f32
    linalg.yield %m : f32
  }
  %e = memref.alloc() {alignment = 64 : i64} : memref<1x2x10x10xf32>
  linalg.generic {indexing_maps = [#id, #mask, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s, %mask, %max : memref<1x2x10x10xf32>, memref<1x10x10xi1>, memref<1x2x10xf32>) outs(%e : memref<1x2x10x10xf32>) {
  ^bb0(%x: f32, %keep: i1, %mx: f32, %out: f32):
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %d = arith.subf %z, %mx : f32
    %ex = math.exp %d : f32
    linalg.yield %ex : f32
  }
  %sum = memref.alloc() {alignment = 64 : i64} : memref<1x2x10xf32>
  linalg.fill ins(%zero : f32) outs(%sum : memref<1x2x10xf32>)
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%e : memref<1x2x10x10xf32>) outs(%sum : memref<1x2x10xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %r = arith.addf %acc, %x : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%e, %sum : memref<1x2x10x10xf32>, memref<1x2x10xf32>) outs(%e : memref<1x2x10x10xf32>) {
  ^bb0(%x: f32, %l: f32, %out: f32):
    %r = arith.divf %x, %l : f32
    linalg.yield %r : f32
  }
  linalg.fill ins(%zero : f32) outs(%o : memref<1x2x10x4xf32>)
  linalg.generic {indexing_maps = [#p, #v, #o], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%e, %v : memref<1x2x10x10xf32>, memref<1x10x2x4xf32>) outs(%o : memref<1x2x10x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  memref.dealloc %mask : memref<1x10x10xi1>
  memref.dealloc %s : memref<1x2x10x10xf32>
  memref.dealloc %max : memref<1x2x10xf32>
  memref.dealloc %e : memref<1x2x10x10xf32>
  memref.dealloc %sum : memref<1x2x10xf32>
  return
}

// -----

// A strict mask (j < i) leaves row 0 without a key: left as it was.

#q = affine_map<(b, h, i, j, d) -> (b, i, h, d)>
#k = affine_map<(b, h, i, j, d) -> (b, j, h, d)>
#s = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#id = affine_map<(b, h, i, j) -> (b, h, i, j)>
#row = affine_map<(b, h, i, j) -> (b, h, i)>
#p = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v = affine_map<(b, h, i, e, j) -> (b, j, h, e)>
#o = affine_map<(b, h, i, e, j) -> (b, h, i, e)>

// CHECK-LABEL: func.func @strict
// CHECK-NOT: scf.parallel
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<1x2x10x10xf32>
func.func @strict(%q: memref<1x10x2x4xf32>, %k: memref<1x10x2x4xf32>,
                %v: memref<1x10x2x4xf32>, %o: memref<1x2x10x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %neg = arith.constant -1.0e30 : f32
  %scale = arith.constant 0.5 : f32
  %s = memref.alloc() {alignment = 64 : i64} : memref<1x2x10x10xf32>
  linalg.fill ins(%zero : f32) outs(%s : memref<1x2x10x10xf32>)
  linalg.generic {indexing_maps = [#q, #k, #s], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<1x10x2x4xf32>, memref<1x10x2x4xf32>) outs(%s : memref<1x2x10x10xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  %max = memref.alloc() {alignment = 64 : i64} : memref<1x2x10xf32>
  linalg.fill ins(%ninf : f32) outs(%max : memref<1x2x10xf32>)
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%s : memref<1x2x10x10xf32>) outs(%max : memref<1x2x10xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %i = linalg.index 2 : index
    %j = linalg.index 3 : index
    %keep = arith.cmpi ult, %j, %i : index
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %m = arith.maximumf %z, %acc : f32
    linalg.yield %m : f32
  }
  %e = memref.alloc() {alignment = 64 : i64} : memref<1x2x10x10xf32>
  linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s, %max : memref<1x2x10x10xf32>, memref<1x2x10xf32>) outs(%e : memref<1x2x10x10xf32>) {
  ^bb0(%x: f32, %mx: f32, %out: f32):
    %i = linalg.index 2 : index
    %j = linalg.index 3 : index
    %keep = arith.cmpi ult, %j, %i : index
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %d = arith.subf %z, %mx : f32
    %ex = math.exp %d : f32
    linalg.yield %ex : f32
  }
  %sum = memref.alloc() {alignment = 64 : i64} : memref<1x2x10xf32>
  linalg.fill ins(%zero : f32) outs(%sum : memref<1x2x10xf32>)
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%e : memref<1x2x10x10xf32>) outs(%sum : memref<1x2x10xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %r = arith.addf %acc, %x : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%e, %sum : memref<1x2x10x10xf32>, memref<1x2x10xf32>) outs(%e : memref<1x2x10x10xf32>) {
  ^bb0(%x: f32, %l: f32, %out: f32):
    %r = arith.divf %x, %l : f32
    linalg.yield %r : f32
  }
  linalg.fill ins(%zero : f32) outs(%o : memref<1x2x10x4xf32>)
  linalg.generic {indexing_maps = [#p, #v, #o], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%e, %v : memref<1x2x10x10xf32>, memref<1x10x2x4xf32>) outs(%o : memref<1x2x10x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  memref.dealloc %s : memref<1x2x10x10xf32>
  memref.dealloc %max : memref<1x2x10xf32>
  memref.dealloc %e : memref<1x2x10x10xf32>
  memref.dealloc %sum : memref<1x2x10xf32>
  return
}

// -----

// Keys after the query are the ones kept (j >= i): left as it was.

#q = affine_map<(b, h, i, j, d) -> (b, i, h, d)>
#k = affine_map<(b, h, i, j, d) -> (b, j, h, d)>
#s = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#id = affine_map<(b, h, i, j) -> (b, h, i, j)>
#row = affine_map<(b, h, i, j) -> (b, h, i)>
#p = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v = affine_map<(b, h, i, e, j) -> (b, j, h, e)>
#o = affine_map<(b, h, i, e, j) -> (b, h, i, e)>

// CHECK-LABEL: func.func @anticausal
// CHECK-NOT: scf.parallel
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<1x2x10x10xf32>
func.func @anticausal(%q: memref<1x10x2x4xf32>, %k: memref<1x10x2x4xf32>,
                %v: memref<1x10x2x4xf32>, %o: memref<1x2x10x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %neg = arith.constant -1.0e30 : f32
  %scale = arith.constant 0.5 : f32
  %s = memref.alloc() {alignment = 64 : i64} : memref<1x2x10x10xf32>
  linalg.fill ins(%zero : f32) outs(%s : memref<1x2x10x10xf32>)
  linalg.generic {indexing_maps = [#q, #k, #s], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<1x10x2x4xf32>, memref<1x10x2x4xf32>) outs(%s : memref<1x2x10x10xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  %max = memref.alloc() {alignment = 64 : i64} : memref<1x2x10xf32>
  linalg.fill ins(%ninf : f32) outs(%max : memref<1x2x10xf32>)
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%s : memref<1x2x10x10xf32>) outs(%max : memref<1x2x10xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %i = linalg.index 2 : index
    %j = linalg.index 3 : index
    %keep = arith.cmpi uge, %j, %i : index
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %m = arith.maximumf %z, %acc : f32
    linalg.yield %m : f32
  }
  %e = memref.alloc() {alignment = 64 : i64} : memref<1x2x10x10xf32>
  linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s, %max : memref<1x2x10x10xf32>, memref<1x2x10xf32>) outs(%e : memref<1x2x10x10xf32>) {
  ^bb0(%x: f32, %mx: f32, %out: f32):
    %i = linalg.index 2 : index
    %j = linalg.index 3 : index
    %keep = arith.cmpi uge, %j, %i : index
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %d = arith.subf %z, %mx : f32
    %ex = math.exp %d : f32
    linalg.yield %ex : f32
  }
  %sum = memref.alloc() {alignment = 64 : i64} : memref<1x2x10xf32>
  linalg.fill ins(%zero : f32) outs(%sum : memref<1x2x10xf32>)
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%e : memref<1x2x10x10xf32>) outs(%sum : memref<1x2x10xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %r = arith.addf %acc, %x : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%e, %sum : memref<1x2x10x10xf32>, memref<1x2x10xf32>) outs(%e : memref<1x2x10x10xf32>) {
  ^bb0(%x: f32, %l: f32, %out: f32):
    %r = arith.divf %x, %l : f32
    linalg.yield %r : f32
  }
  linalg.fill ins(%zero : f32) outs(%o : memref<1x2x10x4xf32>)
  linalg.generic {indexing_maps = [#p, #v, #o], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%e, %v : memref<1x2x10x10xf32>, memref<1x10x2x4xf32>) outs(%o : memref<1x2x10x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  memref.dealloc %s : memref<1x2x10x10xf32>
  memref.dealloc %max : memref<1x2x10xf32>
  memref.dealloc %e : memref<1x2x10x10xf32>
  memref.dealloc %sum : memref<1x2x10xf32>
  return
}

// -----

// Grouped-query attention as the LLaMA importer's IR reaches it after
// bufferization: 2 KV heads of 2 query heads each, B = 2. The scores are
// computed as [B, KV, G, S, S] (M = (G, S): G becomes a batch dim) into a
// [B*H, S, S] buffer through a view, masked as [B, H, S, S] through another
// view of it, the softmax's sum and division read the exponentials as
// [B, KV, G, S, S], and p·V reads the probabilities as [B, H, S, S] and
// writes the output through a collapsed view. The scores' fill is hoisted
// before other work. Each tile's scratch goes through the same reshapes;
// the [B, H] views' head is kv * 2 + g.

#q = affine_map<(b, kv, g, i, j, d) -> (b, i, kv, g, d)>
#k = affine_map<(b, kv, g, i, j, d) -> (b, j, kv, d)>
#s = affine_map<(b, kv, g, i, j, d) -> (b, kv, g, i, j)>
#id = affine_map<(b, h, i, j) -> (b, h, i, j)>
#row = affine_map<(b, h, i, j) -> (b, h, i)>
#pq = affine_map<(b, h, i, j) -> (b, i)>
#pk = affine_map<(b, h, i, j) -> (b, j)>
#id5 = affine_map<(b, kv, g, i, j) -> (b, kv, g, i, j)>
#row5 = affine_map<(b, kv, g, i, j) -> (b, kv, g, i)>
#p = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v = affine_map<(b, h, i, e, j) -> (b, j, h, e)>
#o = affine_map<(b, h, i, e, j) -> (b, h, i, e)>

// CHECK-LABEL: func.func @gqa_views
// CHECK: %[[O4:.*]] = memref.collapse_shape %arg3
// CHECK: scf.parallel (%[[B:.*]], %[[KV:.*]], %[[G:.*]], %[[T:.*]]) = ({{.*}}) to (%c2{{.*}}, %c2{{.*}}, %c2{{.*}}, %c3)
// CHECK: %[[I0:.*]] = arith.muli %[[T]], %c4
// CHECK: %[[ROWS:.*]] = arith.minsi
// CHECK: scf.for
// CHECK:   memref.load %arg4[%[[B]], %{{.*}}] : memref<2x10xi32>
// CHECK: %[[KEYS:.*]] = arith.select %{{.*}}, %{{.*}}, %{{.*}} : index
// The [8, 10, 10] scores buffer's tile: one head, 4 rows.
// CHECK: %[[S:.*]] = memref.alloca() {alignment = 64 : i64} : memref<1x4x10xf32>
// C1 writes it as [B, KV, G, S, S].
// CHECK: %[[S5:.*]] = memref.expand_shape %[[S]] {{\[\[}}0, 1, 2], [3], [4]] output_shape [1, 1, 1, 4, 10]
// CHECK: %[[S5T:.*]] = memref.subview %[[S5]][0, 0, 0, 0, 0] [1, 1, 1, %[[ROWS]], %[[KEYS]]]
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[S5T]] :
// CHECK: %[[QT:.*]] = memref.subview %arg0[%[[B]], %[[I0]], %[[KV]], %[[G]], 0] [1, %[[ROWS]], 1, 1, 4]
// CHECK: %[[KT:.*]] = memref.subview %arg1[%[[B]], 0, %[[KV]], 0] [1, %[[KEYS]], 1, 4]
// CHECK: linalg.generic {{.*}} ins(%[[QT]], %[[KT]] : {{.*}}) outs(%[[S5T]] :
// The query head of the [B, H, S, S] views.
// CHECK: %[[HK:.*]] = arith.muli %[[KV]], %{{.*}} : index
// CHECK: %[[H:.*]] = arith.addi %[[HK]], %[[G]] : index
// CHECK: %[[S4:.*]] = memref.expand_shape %[[S]] {{\[\[}}0, 1], [2], [3]] output_shape [1, 1, 4, 10]
// CHECK: memref.subview %[[S4]][0, 0, 0, 0] [1, 1, %[[ROWS]], %[[KEYS]]]
// CHECK: arith.cmpi sle
// CHECK: arith.cmpi sle
// CHECK: memref.expand_shape %{{.*}} {{\[\[}}0], [1, 2], [3], [4]] output_shape [1, 1, 1, 4, 10]
// CHECK: arith.divf
// CHECK: memref.collapse_shape %{{.*}} {{\[\[}}0], [1, 2], [3], [4]] : memref<1x1x1x4x10xf32> into memref<1x1x4x10xf32>
// CHECK: %[[VT:.*]] = memref.subview %arg2[%[[B]], 0, %[[H]], 0] [1, %[[KEYS]], 1, 4]
// CHECK: %[[OT:.*]] = memref.subview %[[O4]][%[[B]], %[[H]], %[[I0]], 0] [1, 1, %[[ROWS]], 4]
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[VT]] : {{.*}}) outs(%[[OT]] :
// CHECK: } {mod.gemm_tiles}
// CHECK-NOT: memref.alloc()
// CHECK-NOT: memref.expand_shape
// CHECK: return

// Both contractions of a tile are GEMM calls (C1's M is the tile's rows of
// one query head).
// BLAS-LABEL: func.func @gqa_views
// BLAS: scf.parallel
// BLAS: func.call @cblas_sgemm
// BLAS: func.call @cblas_sgemm
// BLAS: } {mod.gemm_tiles}

func.func @gqa_views(%q: memref<2x10x2x2x4xf32>, %k: memref<2x10x2x4xf32>,
                %v: memref<2x10x4x4xf32>, %o: memref<2x2x2x10x4xf32>,
                %pos: memref<2x10xi32>, %w: memref<2x10xf32>) {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %neg = arith.constant -1.0e30 : f32
  %scale = arith.constant 0.5 : f32
  %s = memref.alloc() {alignment = 64 : i64} : memref<8x10x10xf32>
  %s5 = memref.expand_shape %s [[0, 1, 2], [3], [4]] output_shape [2, 2, 2, 10, 10] : memref<8x10x10xf32> into memref<2x2x2x10x10xf32>
  linalg.fill ins(%zero : f32) outs(%s5 : memref<2x2x2x10x10xf32>)
  linalg.fill ins(%zero : f32) outs(%w : memref<2x10xf32>)
  linalg.generic {indexing_maps = [#q, #k, #s], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<2x10x2x2x4xf32>, memref<2x10x2x4xf32>) outs(%s5 : memref<2x2x2x10x10xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  %s4 = memref.expand_shape %s [[0, 1], [2], [3]] output_shape [2, 4, 10, 10] : memref<8x10x10xf32> into memref<2x4x10x10xf32>
  %max = memref.alloc() {alignment = 64 : i64} : memref<2x4x10xf32>
  linalg.fill ins(%ninf : f32) outs(%max : memref<2x4x10xf32>)
  linalg.generic {indexing_maps = [#id, #pq, #pk, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%s4, %pos, %pos : memref<2x4x10x10xf32>, memref<2x10xi32>, memref<2x10xi32>) outs(%max : memref<2x4x10xf32>) {
  ^bb0(%x: f32, %pi: i32, %pj: i32, %acc: f32):
    %keep = arith.cmpi sle, %pj, %pi : i32
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %m = arith.maximumf %z, %acc : f32
    linalg.yield %m : f32
  }
  %e = memref.alloc() {alignment = 64 : i64} : memref<2x4x10x10xf32>
  linalg.generic {indexing_maps = [#id, #pq, #pk, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s4, %pos, %pos, %max : memref<2x4x10x10xf32>, memref<2x10xi32>, memref<2x10xi32>, memref<2x4x10xf32>) outs(%e : memref<2x4x10x10xf32>) {
  ^bb0(%x: f32, %pi: i32, %pj: i32, %mx: f32, %out: f32):
    %keep = arith.cmpi sle, %pj, %pi : i32
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %d = arith.subf %z, %mx : f32
    %ex = math.exp %d : f32
    linalg.yield %ex : f32
  }
  %e5 = memref.expand_shape %e [[0], [1, 2], [3], [4]] output_shape [2, 2, 2, 10, 10] : memref<2x4x10x10xf32> into memref<2x2x2x10x10xf32>
  %sum = memref.alloc() {alignment = 64 : i64} : memref<2x2x2x10xf32>
  linalg.fill ins(%zero : f32) outs(%sum : memref<2x2x2x10xf32>)
  linalg.generic {indexing_maps = [#id5, #row5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%e5 : memref<2x2x2x10x10xf32>) outs(%sum : memref<2x2x2x10xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %r = arith.addf %acc, %x : f32
    linalg.yield %r : f32
  }
  %pr = memref.alloc() {alignment = 64 : i64} : memref<2x2x2x10x10xf32>
  linalg.generic {indexing_maps = [#id5, #row5, #id5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%e5, %sum : memref<2x2x2x10x10xf32>, memref<2x2x2x10xf32>) outs(%pr : memref<2x2x2x10x10xf32>) {
  ^bb0(%x: f32, %l: f32, %out: f32):
    %r = arith.divf %x, %l : f32
    linalg.yield %r : f32
  }
  %pr4 = memref.collapse_shape %pr [[0], [1, 2], [3], [4]] : memref<2x2x2x10x10xf32> into memref<2x4x10x10xf32>
  %o4 = memref.collapse_shape %o [[0], [1, 2], [3], [4]] : memref<2x2x2x10x4xf32> into memref<2x4x10x4xf32>
  linalg.fill ins(%zero : f32) outs(%o4 : memref<2x4x10x4xf32>)
  linalg.generic {indexing_maps = [#p, #v, #o], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%pr4, %v : memref<2x4x10x10xf32>, memref<2x10x4x4xf32>) outs(%o4 : memref<2x4x10x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  memref.dealloc %s : memref<8x10x10xf32>
  memref.dealloc %max : memref<2x4x10xf32>
  memref.dealloc %e : memref<2x4x10x10xf32>
  memref.dealloc %sum : memref<2x2x2x10xf32>
  memref.dealloc %pr : memref<2x2x2x10x10xf32>
  return
}

// -----

// The last layer's scores as the GPT-2 importer's IR reaches them: a
// [B*H, S, S] buffer that the layers share (its fill hoisted before other
// work), written and read as [B, H, S, S] through a view.

#q = affine_map<(b, h, i, j, d) -> (b, i, h, d)>
#k = affine_map<(b, h, i, j, d) -> (b, j, h, d)>
#s = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#id = affine_map<(b, h, i, j) -> (b, h, i, j)>
#row = affine_map<(b, h, i, j) -> (b, h, i)>
#p = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v = affine_map<(b, h, i, e, j) -> (b, j, h, e)>
#o = affine_map<(b, h, i, e, j) -> (b, h, i, e)>

// CHECK-LABEL: func.func @shared_scores_view
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%arg3 : memref<1x2x10x4xf32>)
// CHECK: scf.parallel (%{{.*}}, %{{.*}}, %{{.*}}) = ({{.*}}) to (%c1, %c2, %c3)
// CHECK: %[[S:.*]] = memref.alloca() {alignment = 64 : i64} : memref<1x4x10xf32>
// CHECK: %[[SV:.*]] = memref.expand_shape %[[S]] {{\[\[}}0, 1], [2], [3]] output_shape [1, 1, 4, 10]
// CHECK: %[[ST:.*]] = memref.subview %[[SV]]
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[ST]] :
// CHECK: linalg.generic {{.*}} outs(%[[ST]] :
// CHECK: } {mod.gemm_tiles}
// CHECK-NOT: memref.alloc()
// CHECK-NOT: memref.expand_shape
// CHECK: return

func.func @shared_scores_view(%q: memref<1x10x2x4xf32>, %k: memref<1x10x2x4xf32>,
                %v: memref<1x10x2x4xf32>, %o: memref<1x2x10x4xf32>,
                %w: memref<1x2x10x10xf32>) {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %neg = arith.constant -1.0e30 : f32
  %scale = arith.constant 0.5 : f32
  %flat = memref.alloc() {alignment = 64 : i64} : memref<2x10x10xf32>
  %s = memref.expand_shape %flat [[0, 1], [2], [3]] output_shape [1, 2, 10, 10] : memref<2x10x10xf32> into memref<1x2x10x10xf32>
  linalg.fill ins(%zero : f32) outs(%s : memref<1x2x10x10xf32>)
  linalg.fill ins(%zero : f32) outs(%o : memref<1x2x10x4xf32>)
  linalg.generic {indexing_maps = [#q, #k, #s], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<1x10x2x4xf32>, memref<1x10x2x4xf32>) outs(%s : memref<1x2x10x10xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  %max = memref.alloc() {alignment = 64 : i64} : memref<1x2x10xf32>
  linalg.fill ins(%ninf : f32) outs(%max : memref<1x2x10xf32>)
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%s : memref<1x2x10x10xf32>) outs(%max : memref<1x2x10xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %i = linalg.index 2 : index
    %j = linalg.index 3 : index
    %keep = arith.cmpi ule, %j, %i : index
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %m = arith.maximumf %z, %acc : f32
    linalg.yield %m : f32
  }
  %e = memref.alloc() {alignment = 64 : i64} : memref<1x2x10x10xf32>
  linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s, %max : memref<1x2x10x10xf32>, memref<1x2x10xf32>) outs(%e : memref<1x2x10x10xf32>) {
  ^bb0(%x: f32, %mx: f32, %out: f32):
    %i = linalg.index 2 : index
    %j = linalg.index 3 : index
    %keep = arith.cmpi ule, %j, %i : index
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %d = arith.subf %z, %mx : f32
    %ex = math.exp %d : f32
    linalg.yield %ex : f32
  }
  %sum = memref.alloc() {alignment = 64 : i64} : memref<1x2x10xf32>
  linalg.fill ins(%zero : f32) outs(%sum : memref<1x2x10xf32>)
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%e : memref<1x2x10x10xf32>) outs(%sum : memref<1x2x10xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %r = arith.addf %acc, %x : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%e, %sum : memref<1x2x10x10xf32>, memref<1x2x10xf32>) outs(%e : memref<1x2x10x10xf32>) {
  ^bb0(%x: f32, %l: f32, %out: f32):
    %r = arith.divf %x, %l : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#p, #v, #o], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%e, %v : memref<1x2x10x10xf32>, memref<1x10x2x4xf32>) outs(%o : memref<1x2x10x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  memref.dealloc %flat : memref<2x10x10xf32>
  memref.dealloc %max : memref<1x2x10xf32>
  memref.dealloc %e : memref<1x2x10x10xf32>
  memref.dealloc %sum : memref<1x2x10xf32>
  return
}

// -----

// The grouped-query form with a mask that keeps the keys after the query
// (positions[j] >= positions[i]): not causal, left as it was.

#q = affine_map<(b, kv, g, i, j, d) -> (b, i, kv, g, d)>
#k = affine_map<(b, kv, g, i, j, d) -> (b, j, kv, d)>
#s = affine_map<(b, kv, g, i, j, d) -> (b, kv, g, i, j)>
#id = affine_map<(b, h, i, j) -> (b, h, i, j)>
#row = affine_map<(b, h, i, j) -> (b, h, i)>
#pq = affine_map<(b, h, i, j) -> (b, i)>
#pk = affine_map<(b, h, i, j) -> (b, j)>
#id5 = affine_map<(b, kv, g, i, j) -> (b, kv, g, i, j)>
#row5 = affine_map<(b, kv, g, i, j) -> (b, kv, g, i)>
#p = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v = affine_map<(b, h, i, e, j) -> (b, j, h, e)>
#o = affine_map<(b, h, i, e, j) -> (b, h, i, e)>

// CHECK-LABEL: func.func @gqa_views_anticausal
// CHECK-NOT: scf.parallel
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<8x10x10xf32>

func.func @gqa_views_anticausal(%q: memref<2x10x2x2x4xf32>, %k: memref<2x10x2x4xf32>,
                %v: memref<2x10x4x4xf32>, %o: memref<2x2x2x10x4xf32>,
                %pos: memref<2x10xi32>, %w: memref<2x10xf32>) {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %neg = arith.constant -1.0e30 : f32
  %scale = arith.constant 0.5 : f32
  %s = memref.alloc() {alignment = 64 : i64} : memref<8x10x10xf32>
  %s5 = memref.expand_shape %s [[0, 1, 2], [3], [4]] output_shape [2, 2, 2, 10, 10] : memref<8x10x10xf32> into memref<2x2x2x10x10xf32>
  linalg.fill ins(%zero : f32) outs(%s5 : memref<2x2x2x10x10xf32>)
  linalg.fill ins(%zero : f32) outs(%w : memref<2x10xf32>)
  linalg.generic {indexing_maps = [#q, #k, #s], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<2x10x2x2x4xf32>, memref<2x10x2x4xf32>) outs(%s5 : memref<2x2x2x10x10xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  %s4 = memref.expand_shape %s [[0, 1], [2], [3]] output_shape [2, 4, 10, 10] : memref<8x10x10xf32> into memref<2x4x10x10xf32>
  %max = memref.alloc() {alignment = 64 : i64} : memref<2x4x10xf32>
  linalg.fill ins(%ninf : f32) outs(%max : memref<2x4x10xf32>)
  linalg.generic {indexing_maps = [#id, #pq, #pk, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%s4, %pos, %pos : memref<2x4x10x10xf32>, memref<2x10xi32>, memref<2x10xi32>) outs(%max : memref<2x4x10xf32>) {
  ^bb0(%x: f32, %pi: i32, %pj: i32, %acc: f32):
    %keep = arith.cmpi sge, %pj, %pi : i32
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %m = arith.maximumf %z, %acc : f32
    linalg.yield %m : f32
  }
  %e = memref.alloc() {alignment = 64 : i64} : memref<2x4x10x10xf32>
  linalg.generic {indexing_maps = [#id, #pq, #pk, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s4, %pos, %pos, %max : memref<2x4x10x10xf32>, memref<2x10xi32>, memref<2x10xi32>, memref<2x4x10xf32>) outs(%e : memref<2x4x10x10xf32>) {
  ^bb0(%x: f32, %pi: i32, %pj: i32, %mx: f32, %out: f32):
    %keep = arith.cmpi sge, %pj, %pi : i32
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %d = arith.subf %z, %mx : f32
    %ex = math.exp %d : f32
    linalg.yield %ex : f32
  }
  %e5 = memref.expand_shape %e [[0], [1, 2], [3], [4]] output_shape [2, 2, 2, 10, 10] : memref<2x4x10x10xf32> into memref<2x2x2x10x10xf32>
  %sum = memref.alloc() {alignment = 64 : i64} : memref<2x2x2x10xf32>
  linalg.fill ins(%zero : f32) outs(%sum : memref<2x2x2x10xf32>)
  linalg.generic {indexing_maps = [#id5, #row5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%e5 : memref<2x2x2x10x10xf32>) outs(%sum : memref<2x2x2x10xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %r = arith.addf %acc, %x : f32
    linalg.yield %r : f32
  }
  %pr = memref.alloc() {alignment = 64 : i64} : memref<2x2x2x10x10xf32>
  linalg.generic {indexing_maps = [#id5, #row5, #id5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%e5, %sum : memref<2x2x2x10x10xf32>, memref<2x2x2x10xf32>) outs(%pr : memref<2x2x2x10x10xf32>) {
  ^bb0(%x: f32, %l: f32, %out: f32):
    %r = arith.divf %x, %l : f32
    linalg.yield %r : f32
  }
  %pr4 = memref.collapse_shape %pr [[0], [1, 2], [3], [4]] : memref<2x2x2x10x10xf32> into memref<2x4x10x10xf32>
  %o4 = memref.collapse_shape %o [[0], [1, 2], [3], [4]] : memref<2x2x2x10x4xf32> into memref<2x4x10x4xf32>
  linalg.fill ins(%zero : f32) outs(%o4 : memref<2x4x10x4xf32>)
  linalg.generic {indexing_maps = [#p, #v, #o], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%pr4, %v : memref<2x4x10x10xf32>, memref<2x10x4x4xf32>) outs(%o4 : memref<2x4x10x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  memref.dealloc %s : memref<8x10x10xf32>
  memref.dealloc %max : memref<2x4x10xf32>
  memref.dealloc %e : memref<2x4x10x10xf32>
  memref.dealloc %sum : memref<2x2x2x10xf32>
  memref.dealloc %pr : memref<2x2x2x10x10xf32>
  return
}

// -----

// The shared scores buffer read again after p·V through another view: its
// contents are not dead after the chain, so it is left as it was.

#q = affine_map<(b, h, i, j, d) -> (b, i, h, d)>
#k = affine_map<(b, h, i, j, d) -> (b, j, h, d)>
#s = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#id = affine_map<(b, h, i, j) -> (b, h, i, j)>
#row = affine_map<(b, h, i, j) -> (b, h, i)>
#p = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v = affine_map<(b, h, i, e, j) -> (b, j, h, e)>
#o = affine_map<(b, h, i, e, j) -> (b, h, i, e)>

// CHECK-LABEL: func.func @scores_view_read_after
// CHECK-NOT: scf.parallel
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<2x10x10xf32>

func.func @scores_view_read_after(%q: memref<1x10x2x4xf32>, %k: memref<1x10x2x4xf32>,
                %v: memref<1x10x2x4xf32>, %o: memref<1x2x10x4xf32>,
                %w: memref<1x2x10x10xf32>) {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %neg = arith.constant -1.0e30 : f32
  %scale = arith.constant 0.5 : f32
  %flat = memref.alloc() {alignment = 64 : i64} : memref<2x10x10xf32>
  %s = memref.expand_shape %flat [[0, 1], [2], [3]] output_shape [1, 2, 10, 10] : memref<2x10x10xf32> into memref<1x2x10x10xf32>
  linalg.fill ins(%zero : f32) outs(%s : memref<1x2x10x10xf32>)
  linalg.fill ins(%zero : f32) outs(%o : memref<1x2x10x4xf32>)
  linalg.generic {indexing_maps = [#q, #k, #s], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<1x10x2x4xf32>, memref<1x10x2x4xf32>) outs(%s : memref<1x2x10x10xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  %max = memref.alloc() {alignment = 64 : i64} : memref<1x2x10xf32>
  linalg.fill ins(%ninf : f32) outs(%max : memref<1x2x10xf32>)
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%s : memref<1x2x10x10xf32>) outs(%max : memref<1x2x10xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %i = linalg.index 2 : index
    %j = linalg.index 3 : index
    %keep = arith.cmpi ule, %j, %i : index
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %m = arith.maximumf %z, %acc : f32
    linalg.yield %m : f32
  }
  %e = memref.alloc() {alignment = 64 : i64} : memref<1x2x10x10xf32>
  linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s, %max : memref<1x2x10x10xf32>, memref<1x2x10xf32>) outs(%e : memref<1x2x10x10xf32>) {
  ^bb0(%x: f32, %mx: f32, %out: f32):
    %i = linalg.index 2 : index
    %j = linalg.index 3 : index
    %keep = arith.cmpi ule, %j, %i : index
    %y = arith.mulf %x, %scale : f32
    %z = arith.select %keep, %y, %neg : f32
    %d = arith.subf %z, %mx : f32
    %ex = math.exp %d : f32
    linalg.yield %ex : f32
  }
  %sum = memref.alloc() {alignment = 64 : i64} : memref<1x2x10xf32>
  linalg.fill ins(%zero : f32) outs(%sum : memref<1x2x10xf32>)
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%e : memref<1x2x10x10xf32>) outs(%sum : memref<1x2x10xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %r = arith.addf %acc, %x : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%e, %sum : memref<1x2x10x10xf32>, memref<1x2x10xf32>) outs(%e : memref<1x2x10x10xf32>) {
  ^bb0(%x: f32, %l: f32, %out: f32):
    %r = arith.divf %x, %l : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#p, #v, #o], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%e, %v : memref<1x2x10x10xf32>, memref<1x10x2x4xf32>) outs(%o : memref<1x2x10x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  %again = memref.collapse_shape %s [[0, 1], [2], [3]] : memref<1x2x10x10xf32> into memref<2x10x10xf32>
  %w3 = memref.collapse_shape %w [[0, 1], [2], [3]] : memref<1x2x10x10xf32> into memref<2x10x10xf32>
  memref.copy %again, %w3 : memref<2x10x10xf32> to memref<2x10x10xf32>
  memref.dealloc %flat : memref<2x10x10xf32>
  memref.dealloc %max : memref<1x2x10xf32>
  memref.dealloc %e : memref<1x2x10x10xf32>
  memref.dealloc %sum : memref<1x2x10xf32>
  return
}
