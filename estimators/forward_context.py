"""The setting every evaluation of a user's module runs under: a forward written for training,
evaluated as the samplers need it.

- Attention's inference fast path (``nn.MultiheadAttention``, ``nn.TransformerEncoderLayer`` in
  eval mode) has no derivative, and the fused attention kernels no second derivative: the
  samplers need gradients and the step-size rule Hessian-vector products. Both are off inside.
- Tensors the forward makes itself without a dtype (``torch.zeros(b, hidden)`` for a recurrent
  state, a mask from ``torch.ones``) are made in the dtype of the values evaluated, as the
  module's own parameters would be: L-BFGS localises in float64 and the chains run in
  ``dtype=``, while such a tensor would otherwise stay float32 and fail the first product with a
  parameter of the other dtype. torch's default dtype is the process's: a thread of the caller's
  own that makes tensors while a module is evaluated in float64 makes them in float64 too.
"""

from __future__ import annotations

import contextlib

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel


@contextlib.contextmanager
def evaluating(dtype: torch.dtype):
    """Attention on its differentiable path, and torch's default dtype ``dtype`` (when it is a
    floating dtype), both restored on leaving."""
    fast_path, default_dtype = torch.backends.mha.get_fastpath_enabled(), torch.get_default_dtype()
    torch.backends.mha.set_fastpath_enabled(False)
    switch = dtype.is_floating_point and dtype != default_dtype
    if switch:
        torch.set_default_dtype(dtype)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        if switch:
            torch.set_default_dtype(default_dtype)
        torch.backends.mha.set_fastpath_enabled(fast_path)
