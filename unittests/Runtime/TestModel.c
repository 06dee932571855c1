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
