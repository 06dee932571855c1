/* A hand-written stand-in for a model compiled with the training entry points
 * (--mod-generate-grad, --mod-generate-adamw), so that mod-train's loop,
 * checkpoints and resume are tested without the compiler: a byte-level
 * bigram language model, logits[b,s,:] = W[tokens[b,s],:], W f32[256x256].
 *
 *   loss_and_grad(W, tokens, positions, targets) -> (loss, aux_loss.test,
 *                                                     grad.W)
 *   adamw_step(W, grad.W, m.W, v.W, lr, beta1, beta2, eps, weight_decay,
 *              max_norm, step i32) -> (W, m.W, v.W, grad_norm)
 *
 * Same memref-descriptor calling convention as TestModel.c. */

#include <math.h>
#include <stdint.h>

#define V 256

typedef struct {
  float *allocated, *aligned;
  int64_t offset, sizes[2], strides[2];
} F32x2;
typedef struct {
  int32_t *allocated, *aligned;
  int64_t offset, sizes[2], strides[2];
} I32x2;
typedef struct {
  float *allocated, *aligned;
  int64_t offset;
} F32x0;
typedef struct {
  int32_t *allocated, *aligned;
  int64_t offset;
} I32x0;

static float *w2(const F32x2 *m, int64_t i, int64_t j) {
  return m->aligned + m->offset + i * m->strides[0] + j * m->strides[1];
}
static int32_t i2(const I32x2 *m, int64_t i, int64_t j) {
  return m->aligned[m->offset + i * m->strides[0] + j * m->strides[1]];
}
static float s0(const F32x0 *m) { return m->aligned[m->offset]; }

void _modrt_loss_and_grad(void **args) {
  const F32x2 *w = args[0];
  const I32x2 *tokens = args[1], *targets = args[3];
  F32x0 *loss = args[4], *aux = args[5];
  F32x2 *grad = args[6];
  int64_t B = tokens->sizes[0], S = tokens->sizes[1], count = 0;
  for (int64_t i = 0; i < V; ++i)
    for (int64_t j = 0; j < V; ++j)
      *w2(grad, i, j) = 0.0f;
  double total = 0.0, sq = 0.0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s) {
      int32_t t = i2(tokens, b, s), y = i2(targets, b, s);
      if (y < 0)
        continue;
      double mx = -INFINITY, z = 0.0;
      for (int j = 0; j < V; ++j)
        mx = fmax(mx, *w2(w, t, j));
      for (int j = 0; j < V; ++j)
        z += exp(*w2(w, t, j) - mx);
      total += log(z) + mx - *w2(w, t, y);
      ++count;
    }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s) {
      int32_t t = i2(tokens, b, s), y = i2(targets, b, s);
      if (y < 0)
        continue;
      double mx = -INFINITY, z = 0.0;
      for (int j = 0; j < V; ++j)
        mx = fmax(mx, *w2(w, t, j));
      for (int j = 0; j < V; ++j)
        z += exp(*w2(w, t, j) - mx);
      for (int j = 0; j < V; ++j)
        *w2(grad, t, j) += (float)((exp(*w2(w, t, j) - mx) / z - (j == y)) / count);
    }
  for (int i = 0; i < V; ++i)
    for (int j = 0; j < V; ++j)
      sq += (double)*w2(w, i, j) * *w2(w, i, j);
  loss->aligned[loss->offset] = count ? (float)(total / count) : 0.0f;
  aux->aligned[aux->offset] = (float)(sq / (V * V));
}

/* In place like the generated one: W, m.W and v.W alias their outputs, so
 * each element is read before it is written; a non-finite gradient norm
 * leaves the state unchanged. */
void _modrt_adamw_step(void **args) {
  const F32x2 *w = args[0], *g = args[1], *m = args[2], *v = args[3];
  float lr = s0(args[4]), b1 = s0(args[5]), b2 = s0(args[6]), eps = s0(args[7]),
        wd = s0(args[8]), maxNorm = s0(args[9]);
  const I32x0 *stepArg = args[10];
  double step = stepArg->aligned[stepArg->offset];
  F32x2 *wOut = args[11], *mOut = args[12], *vOut = args[13];
  F32x0 *norm = args[14];
  double sq = 0.0;
  for (int i = 0; i < V; ++i)
    for (int j = 0; j < V; ++j)
      sq += (double)*w2(g, i, j) * *w2(g, i, j);
  double gn = sqrt(sq), scale = maxNorm > 0 ? fmin(1.0, maxNorm / (gn + 1e-6)) : 1.0;
  norm->aligned[norm->offset] = (float)gn;
  if (!isfinite(gn))
    return;
  double c1 = 1.0 - pow(b1, step), c2 = 1.0 - pow(b2, step);
  for (int i = 0; i < V; ++i)
    for (int j = 0; j < V; ++j) {
      double gij = *w2(g, i, j) * scale;
      double mi = b1 * *w2(m, i, j) + (1 - b1) * gij;
      double vi = b2 * *w2(v, i, j) + (1 - b2) * gij * gij;
      double p = *w2(w, i, j) * (1 - lr * wd);
      *w2(wOut, i, j) = (float)(p - lr * (mi / c1) / (sqrt(vi / c2) + eps));
      *w2(mOut, i, j) = (float)mi;
      *w2(vOut, i, j) = (float)vi;
    }
}
