/* Entry points of the test model, written against the calling convention
 * documented in modrt/Model.h: args[i] points to a ranked memref descriptor,
 * inputs first, then outputs. They index through sizes and strides (rather
 * than assuming a layout) so a wrong descriptor shows up as a wrong result. */

#include <stdint.h>

typedef struct {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[2];
  int64_t strides[2];
} MemRefF32x2;

typedef struct {
  float *allocated;
  float *aligned;
  int64_t offset;
} MemRefF32x0;

typedef struct {
  int64_t *allocated;
  int64_t *aligned;
  int64_t offset;
  int64_t sizes[1];
  int64_t strides[1];
} MemRefI64x1;

static float *at2(const MemRefF32x2 *m, int64_t i, int64_t j) {
  return m->aligned + m->offset + i * m->strides[0] + j * m->strides[1];
}

/* out = a + b, all f32[2x3]. */
void _modrt_add(void **args) {
  const MemRefF32x2 *a = (const MemRefF32x2 *)args[0];
  const MemRefF32x2 *b = (const MemRefF32x2 *)args[1];
  MemRefF32x2 *out = (MemRefF32x2 *)args[2];
  for (int64_t i = 0; i < out->sizes[0]; ++i)
    for (int64_t j = 0; j < out->sizes[1]; ++j)
      *at2(out, i, j) = *at2(a, i, j) + *at2(b, i, j);
}

/* out (f32 scalar, rank 0) = sum of x (f32[2x3]) weighted by 10^row, so a
 * transposed stride gives a different answer. */
void _modrt_sum(void **args) {
  const MemRefF32x2 *x = (const MemRefF32x2 *)args[0];
  MemRefF32x0 *out = (MemRefF32x0 *)args[1];
  float total = 0.0f, weight = 1.0f;
  for (int64_t i = 0; i < x->sizes[0]; ++i, weight *= 10.0f)
    for (int64_t j = 0; j < x->sizes[1]; ++j)
      total += weight * *at2(x, i, j);
  out->aligned[out->offset] = total;
}

/* No inputs: out (i64[4]) = 0, 1, 2, 3. */
void _modrt_iota(void **args) {
  MemRefI64x1 *out = (MemRefI64x1 *)args[0];
  for (int64_t i = 0; i < out->sizes[0]; ++i)
    out->aligned[out->offset + i * out->strides[0]] = i;
}

typedef struct {
  int32_t *allocated;
  int32_t *aligned;
  int64_t offset;
  int64_t sizes[2];
  int64_t strides[2];
} MemRefI32x2;

typedef struct {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[1];
  int64_t strides[1];
} MemRefF32x1;

typedef struct {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[3];
  int64_t strides[3];
} MemRefF32x3;

typedef struct {
  int32_t *allocated;
  int32_t *aligned;
  int64_t offset;
  int64_t sizes[3];
  int64_t strides[3];
} MemRefI32x3;

/* A byte-level "language model" for mod-run's --prompt and --top: inputs
 * tokens, positions (i32[B,S]) and the parameters table (f32[V,V]) and bias
 * (f32[V]); outputs logits[b,s,v] = table[tokens[b,s], v] +
 * positions[b,s] * bias[v] (f32[B,S,V]) and seen[b,s,:] = (token, position)
 * (i32[B,S,2]), which lets a test check what mod-run passed in. */
void _modrt_lm(void **args) {
  const MemRefI32x2 *tokens = (const MemRefI32x2 *)args[0];
  const MemRefI32x2 *positions = (const MemRefI32x2 *)args[1];
  const MemRefF32x2 *table = (const MemRefF32x2 *)args[2];
  const MemRefF32x1 *bias = (const MemRefF32x1 *)args[3];
  MemRefF32x3 *logits = (MemRefF32x3 *)args[4];
  MemRefI32x3 *seen = (MemRefI32x3 *)args[5];
  for (int64_t b = 0; b < logits->sizes[0]; ++b)
    for (int64_t s = 0; s < logits->sizes[1]; ++s) {
      int32_t token = tokens->aligned[tokens->offset + b * tokens->strides[0] +
                                      s * tokens->strides[1]];
      int32_t position = positions->aligned[positions->offset + b * positions->strides[0] +
                                            s * positions->strides[1]];
      for (int64_t v = 0; v < logits->sizes[2]; ++v)
        logits->aligned[logits->offset + b * logits->strides[0] + s * logits->strides[1] +
                        v * logits->strides[2]] =
            *at2(table, token, v) +
            (float)position * bias->aligned[bias->offset + v * bias->strides[0]];
      int32_t *out = seen->aligned + seen->offset + b * seen->strides[0] + s * seen->strides[1];
      out[0] = token;
      out[seen->strides[2]] = position;
    }
}

/* Signature strings (modrt/Model.h): the dtypes and shapes each entry point
 * was written for, which Model::load checks the manifest against. */
const char _modrtsig_add[] = "in:f32[2x3],f32[2x3];out:f32[2x3]";
const char _modrtsig_sum[] = "in:f32[2x3];out:f32[]";
const char _modrtsig_iota[] = "in:;out:i64[4]";
const char _modrtsig_lm[] =
    "in:i32[2x4],i32[2x4],f32[256x256],f32[256];out:f32[2x4x256],i32[2x4x2]";

/* An entry point as libraries before signature checks had it. */
void _modrt_unsigned(void **args) { (void)args; }
