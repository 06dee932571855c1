//===- RoutingKernels.cpp - gpu.launch builders for the mod ops -----------===//
//
// The select kernel (router + top-k + gather) runs one thread block per batch
// row, in four phases separated by block barriers:
//
//  1. router: one warp per token, lanes stride over D (coalesced), then a
//     shuffle reduction; lane 0 writes the score.
//  2. radix select: four 8-bit passes from the most significant digit of the
//     totally ordered uint32 key. Each pass builds a 256-bin histogram of the
//     keys that still match the selected prefix, in shared memory; warp 0
//     scans it (8 bins per lane, then a warp prefix sum) to find the digit of
//     the K-th largest key. The result is that key T and how many tokens with
//     key == T are taken (kEq): ties go to the lowest indices.
//  3. compaction: tokens in chunks of blockSize, one block-wide exclusive
//     scan per chunk of (key > T, key == T) packed in one i32. A token is
//     taken iff key > T, or key == T and fewer than kEq equal keys precede
//     it; its slot is #greater-before + min(#equal-before, kEq), so indices
//     come out ascending without a sort.
//  4. gathers: all threads copy the K selected rows of every gathered tensor.
//
// For a small batch the router (phase 1) and the gathers (phase 4) are also
// built as kernels of their own with several blocks per row (grid
// parts x B): they need no block-wide step, so their work spreads over as
// many SMs as the pass asks for. Phases 2-3 stay one block per row.
//
//===----------------------------------------------------------------------===//

#include "RoutingKernels.h"
#include "KernelBuilder.h"
#include "mod/Dialect/MoD/Transforms/Elementwise.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"

using namespace mlir;
using namespace mlir::mod::detail;

namespace {
/// Radix digits: 4 passes of 8 bits over 32-bit keys.
constexpr int64_t kRadixBits = 8, kRadixBins = 1 << kRadixBits,
                  kRadixPasses = 32 / kRadixBits;
/// Bins each lane of warp 0 scans when looking for the selected digit.
constexpr int64_t kBinsPerLane = kRadixBins / kWarpSize;

int64_t dimOf(Value memref, unsigned i) {
  return cast<MemRefType>(memref.getType()).getDimSize(i);
}

/// Phase 4 of the select kernel, also the body of the gather kernel: the
/// threads of the block copy the K rows of `row`'s gathered tensors. With
/// `parts` blocks per row, block `part` copies every `parts`-th block-sized
/// slice.
void emitGathers(KernelBuilder &kb, Value row, Value indices,
                 ArrayRef<GatherOperands> gathers, Value part = {},
                 int64_t parts = 1) {
  int64_t k = dimOf(indices, 1);
  Value first = kb.tid;
  if (parts > 1)
    first = arith::AddIOp::create(
        kb.b, kb.loc,
        arith::MulIOp::create(kb.b, kb.loc, part, kb.idx(kb.blockSize)),
        kb.tid);
  for (const GatherOperands &g : gathers) {
    int64_t inner = dimOf(g.input, 2);
    // Flattened over (j, e) so both wide rows and scalars use every thread.
    kb.forLoop(first, kb.idx(k * inner), kb.idx(kb.blockSize * parts),
               [&](Value f) {
      Value j = arith::DivUIOp::create(kb.b, kb.loc, f, kb.idx(inner));
      Value e = arith::RemUIOp::create(kb.b, kb.loc, f, kb.idx(inner));
      Value src = kb.toIndex(kb.load(indices, {row, j}));
      kb.store(kb.load(g.input, {row, src, e}), g.output, {row, j, e});
    });
  }
}

/// Phase 1: scores[row, s] = x[row, s, :] . w, one warp per token. With
/// `parts` blocks per row, block `part` takes every `parts`-th group of
/// numWarps tokens.
void emitRouter(KernelBuilder &kb, Value row, Value x, Value w, Value scores,
                Value part = {}, int64_t parts = 1) {
  int64_t seq = dimOf(x, 1), dim = dimOf(x, 2);
  Type f32 = kb.b.getF32Type();
  int64_t warps = kb.blockSize / kWarpSize;
  Value first = kb.warp;
  if (parts > 1)
    first = arith::AddIOp::create(
        kb.b, kb.loc, arith::MulIOp::create(kb.b, kb.loc, part, kb.idx(warps)),
        kb.warp);
  Value step = parts > 1 ? kb.idx(warps * parts) : kb.numWarps;
  kb.forLoop(first, kb.idx(seq), step, [&](Value s) {
    Value partial =
        kb.forLoop(kb.lane, kb.idx(dim), kb.idx(kWarpSize), {kb.f(f32, 0.0)},
                   [&](Value d, ValueRange acc) -> SmallVector<Value> {
                     Value prod = arith::MulFOp::create(
                         kb.b, kb.loc, kb.load(x, {row, s, d}),
                         kb.load(w, d));
                     return {arith::AddFOp::create(kb.b, kb.loc, acc[0], prod)};
                   })[0];
    Value total = kb.warpSum(partial);
    kb.ifThen(kb.cmpI(arith::CmpIPredicate::eq, kb.lane, kb.idx(0)),
              [&] { kb.store(total, scores, {row, s}); });
  });
}

/// Phase 2: returns the K-th largest key T of the row and the number of
/// tokens with key T that are selected (uniform values).
std::pair<Value, Value> emitRadixSelect(KernelBuilder &kb, Value row,
                                        Value scores, int64_t k, Value hist,
                                        Value bcast) {
  OpBuilder &b = kb.b;
  Location loc = kb.loc;
  int64_t seq = dimOf(scores, 1);
  Value binMask = kb.i32(kRadixBins - 1);
  ValueRange result = kb.forLoop(
      kb.idx(0), kb.idx(kRadixPasses), kb.idx(1),
      {kb.i32(0), kb.i32(0), kb.i32(k)},
      [&](Value pass, ValueRange state) -> SmallVector<Value> {
        Value prefix = state[0], prefixMask = state[1], kRemaining = state[2];
        // shift = 24 - 8 * pass: most significant digit first.
        Value shift = arith::SubIOp::create(
            b, loc, kb.i32(32 - kRadixBits),
            arith::MulIOp::create(b, loc, kb.toI32(pass), kb.i32(kRadixBits)));
        kb.forLoop(kb.tid, kb.idx(kRadixBins), kb.idx(kb.blockSize),
                   [&](Value i) { kb.store(kb.i32(0), hist, i); });
        kb.barrier();
        kb.forLoop(kb.tid, kb.idx(seq), kb.idx(kb.blockSize), [&](Value s) {
          Value key = totalOrderKeyU32(b, loc, kb.load(scores, {row, s}));
          Value masked = arith::AndIOp::create(b, loc, key, prefixMask);
          kb.ifThen(kb.cmpI(arith::CmpIPredicate::eq, masked, prefix), [&] {
            Value digit = arith::AndIOp::create(
                b, loc, arith::ShRUIOp::create(b, loc, key, shift), binMask);
            memref::AtomicRMWOp::create(b, loc, arith::AtomicRMWKind::addi,
                                        kb.i32(1), hist, kb.toIndex(digit));
          });
        });
        kb.barrier();
        kb.ifThen(kb.cmpI(arith::CmpIPredicate::eq, kb.warp, kb.idx(0)), [&] {
          // Lane l owns bins 255-8l down to 248-8l, so the lane prefix sum
          // counts, for each lane, the keys in higher bins.
          Value top = arith::SubIOp::create(
              b, loc, kb.idx(kRadixBins - 1),
              arith::MulIOp::create(b, loc, kb.lane, kb.idx(kBinsPerLane)));
          SmallVector<Value> counts;
          Value laneTotal = kb.i32(0);
          for (int64_t i = 0; i < kBinsPerLane; ++i) {
            Value bin = arith::SubIOp::create(b, loc, top, kb.idx(i));
            counts.push_back(kb.load(hist, bin));
            laneTotal = arith::AddIOp::create(b, loc, laneTotal, counts.back());
          }
          Value inclusive = kb.warpInclusiveScan(laneTotal);
          Value above = arith::SubIOp::create(b, loc, inclusive, laneTotal);
          Value mine = arith::AndIOp::create(
              b, loc, kb.cmpI(arith::CmpIPredicate::slt, above, kRemaining),
              kb.cmpI(arith::CmpIPredicate::sle, kRemaining, inclusive));
          kb.ifThen(mine, [&] {
            Value running = above, digit = kb.i32(0), newK = kb.i32(0);
            Value found = arith::ConstantIntOp::create(b, loc, 0, 1);
            for (int64_t i = 0; i < kBinsPerLane; ++i) {
              Value upTo = arith::AddIOp::create(b, loc, running, counts[i]);
              Value hit = arith::AndIOp::create(
                  b, loc,
                  arith::XOrIOp::create(
                      b, loc, found, arith::ConstantIntOp::create(b, loc, 1, 1)),
                  kb.cmpI(arith::CmpIPredicate::sge, upTo, kRemaining));
              Value bin = kb.toI32(arith::SubIOp::create(b, loc, top, kb.idx(i)));
              digit = kb.select(hit, bin, digit);
              newK = kb.select(
                  hit, arith::SubIOp::create(b, loc, kRemaining, running), newK);
              found = arith::OrIOp::create(b, loc, found, hit);
              running = upTo;
            }
            kb.store(digit, bcast, kb.idx(0));
            kb.store(newK, bcast, kb.idx(1));
          });
        });
        kb.barrier();
        Value digit = kb.load(bcast, kb.idx(0));
        Value newK = kb.load(bcast, kb.idx(1));
        Value newPrefix = arith::OrIOp::create(
            b, loc, prefix, arith::ShLIOp::create(b, loc, digit, shift));
        Value newMask = arith::OrIOp::create(
            b, loc, prefixMask, arith::ShLIOp::create(b, loc, binMask, shift));
        return {newPrefix, newMask, newK};
      });
  return {result[0], result[2]};
}

/// Phase 3: writes the selected indices (ascending) and their scores.
void emitCompaction(KernelBuilder &kb, Value row, Value scores,
                    Value threshold, Value takeEqual, Value indices,
                    Value values, Value scan) {
  OpBuilder &b = kb.b;
  Location loc = kb.loc;
  int64_t seq = dimOf(scores, 1);
  Value low16 = kb.i32(0xffff), sixteen = kb.i32(16);
  kb.forLoop(
      kb.idx(0), kb.idx(seq), kb.idx(kb.blockSize), {kb.i32(0), kb.i32(0)},
      [&](Value chunk, ValueRange runs) -> SmallVector<Value> {
        Value s = arith::AddIOp::create(b, loc, chunk, kb.tid);
        Value valid = kb.cmpI(arith::CmpIPredicate::ult, s, kb.idx(seq));
        // Out-of-range threads read a valid token and then count nothing.
        Value sClamped = kb.select(valid, s, kb.idx(seq - 1));
        Value score = kb.load(scores, {row, sClamped});
        Value key = totalOrderKeyU32(b, loc, score);
        Value greater = arith::AndIOp::create(
            b, loc, valid, kb.cmpI(arith::CmpIPredicate::ugt, key, threshold));
        Value equal = arith::AndIOp::create(
            b, loc, valid, kb.cmpI(arith::CmpIPredicate::eq, key, threshold));
        Type i32 = b.getI32Type();
        Value packed = arith::OrIOp::create(
            b, loc,
            arith::ShLIOp::create(b, loc,
                                  arith::ExtUIOp::create(b, loc, i32, greater),
                                  sixteen),
            arith::ExtUIOp::create(b, loc, i32, equal));
        auto [exclusive, total] = kb.blockExclusiveScan(packed, scan);
        Value greaterBefore = arith::AddIOp::create(
            b, loc, runs[0], arith::ShRUIOp::create(b, loc, exclusive, sixteen));
        Value equalBefore = arith::AddIOp::create(
            b, loc, runs[1], arith::AndIOp::create(b, loc, exclusive, low16));
        Value take = arith::OrIOp::create(
            b, loc, greater,
            arith::AndIOp::create(
                b, loc, equal,
                kb.cmpI(arith::CmpIPredicate::slt, equalBefore, takeEqual)));
        kb.ifThen(take, [&] {
          Value slot = kb.toIndex(arith::AddIOp::create(
              b, loc, greaterBefore,
              arith::MinSIOp::create(b, loc, equalBefore, takeEqual)));
          kb.store(kb.toI32(s), indices, {row, slot});
          kb.store(score, values, {row, slot});
        });
        return {arith::AddIOp::create(
                    b, loc, runs[0],
                    arith::ShRUIOp::create(b, loc, total, sixteen)),
                arith::AddIOp::create(
                    b, loc, runs[1], arith::AndIOp::create(b, loc, total, low16))};
      });
}
} // namespace

void mlir::mod::detail::buildSelectKernel(OpBuilder &b, Location loc,
                                          const SelectKernel &spec) {
  OpBuilder::InsertionGuard guard(b);
  Type i32 = b.getI32Type();
  int64_t batch = dimOf(spec.scores, 0);
  assert((spec.parts == 1 || (spec.x && !spec.k)) &&
         "only a router-only kernel is split");
  if (spec.parts > 1) {
    // Grid parts x B: no shared memory, no barrier.
    auto launch = createLaunch(b, loc, spec.name, spec.parts, batch,
                               spec.blockSize, {});
    KernelBuilder kb(b, loc, launch, spec.blockSize);
    emitRouter(kb, launch.getBlockIds().y, spec.x, spec.w, spec.scores,
               launch.getBlockIds().x, spec.parts);
    return;
  }
  auto launch = createLaunch(
      b, loc, spec.name, batch, 1, spec.blockSize,
      {workgroupMemRef(b, kRadixBins, i32),
       workgroupMemRef(b, kWarpSize + 1, i32), workgroupMemRef(b, 2, i32)});
  Value hist = launch.getWorkgroupAttributions()[0];
  Value scan = launch.getWorkgroupAttributions()[1];
  Value bcast = launch.getWorkgroupAttributions()[2];
  KernelBuilder kb(b, loc, launch, spec.blockSize);
  Value row = launch.getBlockIds().x;
  if (spec.x) {
    emitRouter(kb, row, spec.x, spec.w, spec.scores);
    if (!spec.k)
      return;
    kb.barrier();
  }
  auto [threshold, takeEqual] =
      emitRadixSelect(kb, row, spec.scores, spec.k, hist, bcast);
  emitCompaction(kb, row, spec.scores, threshold, takeEqual, spec.indices,
                 spec.values, scan);
  if (spec.gathers.empty())
    return;
  // The gathers read indices that other threads of the block just wrote.
  kb.barrier();
  emitGathers(kb, row, spec.indices, spec.gathers);
}

void mlir::mod::detail::buildGatherKernel(OpBuilder &b, Location loc,
                                          StringRef name, int64_t blockSize,
                                          Value indices,
                                          ArrayRef<GatherOperands> gathers,
                                          int64_t parts) {
  OpBuilder::InsertionGuard guard(b);
  int64_t batch = dimOf(indices, 0);
  if (parts > 1) {
    auto launch = createLaunch(b, loc, name, parts, batch, blockSize, {});
    KernelBuilder kb(b, loc, launch, blockSize);
    emitGathers(kb, launch.getBlockIds().y, indices, gathers,
                launch.getBlockIds().x, parts);
    return;
  }
  auto launch = createLaunch(b, loc, name, batch, 1, blockSize, {});
  KernelBuilder kb(b, loc, launch, blockSize);
  emitGathers(kb, launch.getBlockIds().x, indices, gathers);
}

void mlir::mod::detail::buildScatterKernel(OpBuilder &b, Location loc,
                                           const ScatterKernel &spec) {
  OpBuilder::InsertionGuard guard(b);
  int64_t batch = dimOf(spec.input, 0), seq = dimOf(spec.input, 1),
          inner = dimOf(spec.input, 2), k = dimOf(spec.indices, 1);
  int64_t warps = spec.blockSize / kWarpSize;
  auto gate = [&](OpBuilder &ob, Value v) {
    return spec.sigmoidGate ? buildSigmoid(ob, loc, v) : v;
  };

  if (spec.sortedUnique) {
    // One warp per output row: row s of batch b is either copied or gets the
    // one update whose index equals s. No two warps write the same row.
    auto launch = createLaunch(b, loc, spec.name, (seq + warps - 1) / warps,
                               batch, spec.blockSize, {});
    KernelBuilder kb(b, loc, launch, spec.blockSize);
    Value row = launch.getBlockIds().y;
    Value s = arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, launch.getBlockIds().x,
                                      kb.idx(warps)),
        kb.warp);
    kb.ifThen(kb.cmpI(arith::CmpIPredicate::ult, s, kb.idx(seq)), [&] {
      // Branchless lower bound: pos = #{ j : indices[row, j] < s }.
      Value sI32 = kb.toI32(s);
      Value pos = kb.idx(0);
      int64_t step = 1;
      while (step * 2 <= k)
        step *= 2;
      for (; step > 0; step /= 2) {
        Value cand = arith::AddIOp::create(b, loc, pos, kb.idx(step));
        Value inRange = kb.cmpI(arith::CmpIPredicate::ule, cand, kb.idx(k));
        Value probe = kb.select(
            inRange, arith::SubIOp::create(b, loc, cand, kb.idx(1)),
            kb.idx(0));
        Value below = kb.cmpI(arith::CmpIPredicate::slt,
                              kb.load(spec.indices, {row, probe}), sI32);
        pos = kb.select(arith::AndIOp::create(b, loc, inRange, below), cand,
                        pos);
      }
      Value inK = kb.cmpI(arith::CmpIPredicate::ult, pos, kb.idx(k));
      Value j = kb.select(inK, pos, kb.idx(k - 1));
      Value hit = arith::AndIOp::create(
          b, loc, inK,
          kb.cmpI(arith::CmpIPredicate::eq, kb.load(spec.indices, {row, j}),
                  sI32));
      auto ifOp = scf::IfOp::create(b, loc, hit, /*withElseRegion=*/true);
      {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPointToStart(ifOp.thenBlock());
        Value scale = gate(b, kb.load(spec.scale, {row, j}));
        kb.forLoop(kb.lane, kb.idx(inner), kb.idx(kWarpSize), [&](Value e) {
          Value add = arith::MulFOp::create(
              b, loc, scale, kb.load(spec.update, {row, j, e}));
          kb.store(arith::AddFOp::create(b, loc,
                                         kb.load(spec.input, {row, s, e}), add),
                   spec.output, {row, s, e});
        });
        b.setInsertionPointToStart(ifOp.elseBlock());
        kb.forLoop(kb.lane, kb.idx(inner), kb.idx(kWarpSize), [&](Value e) {
          kb.store(kb.load(spec.input, {row, s, e}), spec.output, {row, s, e});
        });
      }
    });
    return;
  }

  // Indices of unknown provenance may repeat: copy, then accumulate with
  // atomic adds in a second launch (stream order separates the two).
  int64_t elements = batch * seq * inner;
  {
    OpBuilder::InsertionGuard g(b);
    auto launch = createLaunch(
        b, loc, spec.name + "_copy",
        (elements + spec.blockSize - 1) / spec.blockSize, 1, spec.blockSize,
        {});
    KernelBuilder kb(b, loc, launch, spec.blockSize);
    Value flat = arith::AddIOp::create(
        b, loc,
        arith::MulIOp::create(b, loc, launch.getBlockIds().x,
                              kb.idx(spec.blockSize)),
        kb.tid);
    kb.ifThen(kb.cmpI(arith::CmpIPredicate::ult, flat, kb.idx(elements)), [&] {
      Value e = arith::RemUIOp::create(b, loc, flat, kb.idx(inner));
      Value rest = arith::DivUIOp::create(b, loc, flat, kb.idx(inner));
      Value s = arith::RemUIOp::create(b, loc, rest, kb.idx(seq));
      Value row = arith::DivUIOp::create(b, loc, rest, kb.idx(seq));
      kb.store(kb.load(spec.input, {row, s, e}), spec.output, {row, s, e});
    });
  }
  auto launch = createLaunch(b, loc, spec.name + "_atomic", k, batch,
                             spec.blockSize, {});
  KernelBuilder kb(b, loc, launch, spec.blockSize);
  Value j = launch.getBlockIds().x, row = launch.getBlockIds().y;
  Value s = kb.toIndex(kb.load(spec.indices, {row, j}));
  Value scale = gate(b, kb.load(spec.scale, {row, j}));
  kb.forLoop(kb.tid, kb.idx(inner), kb.idx(spec.blockSize), [&](Value e) {
    Value add =
        arith::MulFOp::create(b, loc, scale, kb.load(spec.update, {row, j, e}));
    memref::AtomicRMWOp::create(b, loc, arith::AtomicRMWKind::addf, add,
                                spec.output, ValueRange{row, s, e});
  });
}
