/* clip.h — global gradient-norm clipping, as torch.nn.utils.clip_grad_norm_. */
#ifndef HONE_CLIP_H
#define HONE_CLIP_H

#include <stddef.h>

#include "backend.h"

/* grads: [nparams] f32 on backend be, covered by the tensors. Returns the pre-clip global
 * L2 norm (what transformers logs as grad_norm); with max_norm > 0 multiplies every
 * gradient by min(1, max_norm / (norm + 1e-6)). Each tensor's norm and the scaling run on
 * the backend, the reduction of the per-tensor norms on the host. */
double hone_clip_grad_norm(const hone_backend *be, float *grads, const hone_tensor_info *t, size_t nt,
                           double max_norm);

#endif
