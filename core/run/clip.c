/* clip.c — global gradient-norm clipping as torch.nn.utils.clip_grad_norm_ computes it on
 * the CPU (docs/numerics.md §5.3), down to the float32 rounding: each tensor's norm is ATen's
 * vectorized last-dim reduction (8 float lanes of fused multiply-adds, the lanes summed in
 * order, the tail added one by one, sqrt), the global norm the same over the stacked
 * norms, coef = (1 / (norm + 1e-6)) * max_norm (Tensor.__rtruediv__ is a reciprocal and a
 * product) clamped to 1, and every gradient times coef. The 8 lanes are AVX2's; torch on
 * an AVX-512 build, or on a GPU, rounds differently in the last bits. */
#include "clip.h"

#include <math.h>

static float lane_sum(const float acc[8]);

static float norm2_like_aten(const float *x, size_t n)
{
    float acc[8] = {0};
    size_t d = 0;
    for (; d + 8 <= n; d += 8)
        for (int j = 0; j < 8; j++) acc[j] = fmaf(x[d + j], x[d + j], acc[j]);
    float s = lane_sum(acc);
    for (; d < n; d++) s = fmaf(x[d], x[d], s);
    return sqrtf(s);
}

static float lane_sum(const float acc[8])
{
    float s = acc[0];
    for (int j = 1; j < 8; j++) s = s + acc[j];
    return s;
}

double hone_clip_grad_norm(float *grads, const hone_tensor_info *t, size_t nt, double max_norm)
{
    /* the per-tensor norms reduce the same way: whole chunks of 8 lane-wise, then the
     * lanes, then the rest in order */
    float acc[8] = {0}, s = 0;
    size_t full = nt - nt % 8;
    for (size_t k = 0; k < nt; k++) {
        float nk = norm2_like_aten(grads + t[k].offset, t[k].numel);
        if (k < full) {
            acc[k % 8] = fmaf(nk, nk, acc[k % 8]);
            continue;
        }
        if (k == full) s = lane_sum(acc);
        s = fmaf(nk, nk, s);
    }
    if (full == nt) s = lane_sum(acc);
    float total = sqrtf(s);
    if (max_norm > 0) {
        float coef = (1.0f / (total + 1e-6f)) * (float)max_norm;
        if (coef < 1.0f)
            for (size_t k = 0; k < nt; k++) {
                float *g = grads + t[k].offset;
                for (size_t i = 0; i < t[k].numel; i++) g[i] *= coef;
            }
    }
    return total;
}
