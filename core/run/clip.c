/* clip.c — global gradient-norm clipping as torch.nn.utils.clip_grad_norm_ computes it on
 * the CPU (docs/numerics.md §5.3), down to the float32 rounding: each tensor's norm is ATen's
 * vectorized last-dim reduction (8 float lanes of fused multiply-adds, the lanes summed in
 * order, the tail added one by one, sqrt), the global norm the same over the stacked
 * norms, coef = (1 / (norm + 1e-6)) * max_norm (Tensor.__rtruediv__ is a reciprocal and a
 * product) clamped to 1, and every gradient times coef. The 8 lanes are AVX2's; torch on
 * an AVX-512 build, or on a GPU, rounds differently in the last bits. The per-tensor norm
 * is the backend's (op_norm2 on the CPU); the stacking is here. */
#include "clip.h"

#include <math.h>

static float lane_sum(const float acc[8])
{
    float s = acc[0];
    for (int j = 1; j < 8; j++) s = s + acc[j];
    return s;
}

double hone_clip_grad_norm(const hone_backend *be, float *grads, const hone_tensor_info *t, size_t nt,
                           double max_norm)
{
    /* the per-tensor norms reduce the same way: whole chunks of 8 lane-wise, then the
     * lanes, then the rest in order */
    float acc[8] = {0}, s = 0;
    size_t full = nt - nt % 8;
    for (size_t k = 0; k < nt; k++) {
        float nk = be_norm2(be, grads + t[k].offset, t[k].numel);   /* on the backend, to the host */
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
            for (size_t k = 0; k < nt; k++) be_scale(be, grads + t[k].offset, coef, t[k].numel);
    }
    return total;
}
