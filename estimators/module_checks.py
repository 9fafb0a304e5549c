"""What a module must be before the samplers can move its parameters, and what is said about how
it is sampled (:class:`~sltlab.estimators.functional.FunctionalModel` asks both first): its
parameters must be real values the sampled ones can replace through ``torch.func.functional_call``,
so a wrapper, TorchScript, uninitialised (lazy) or meta-device parameters and complex ones are
one-line ``ValueError``s; eval mode, frozen parameters and forward hooks are notes, as are
sparse embeddings, which the adapter's copy samples with dense gradients."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def refuse_unsampleable(module: nn.Module) -> None:
    """A one-line ``ValueError`` for a module whose parameters cannot be replaced by sampled ones: a
    DataParallel wrapper, TorchScript (scripted or traced, in whole or in part), a lazy module not
    yet run (its parameters have no shape) or parameters on the meta device (no values)."""
    if isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        raise ValueError(f"the model is wrapped in {type(module).__name__}, whose forward cannot take sampled "
                         "parameters: pass the module inside it (model.module)")
    scripted = [name or "the model" for name, part in module.named_modules()
                if isinstance(part, torch.jit.ScriptModule)]
    if scripted:
        raise ValueError(f"{scripted[0]} is TorchScript (torch.jit.script or trace), whose parameters the sampled "
                         "ones cannot replace: pass the Python nn.Module it was made from")
    for name, parameter in module.named_parameters():
        if isinstance(parameter, nn.parameter.UninitializedParameter):
            raise ValueError(f"parameter {name} is not initialised yet (a lazy module): run the model on a batch, "
                             "or load its trained state, before estimating its LLC")
        if parameter.is_meta:
            raise ValueError(f"parameter {name} is on the meta device and holds no values: load the trained state "
                             "into it first (model.load_state_dict(state, assign=True))")


def refuse_complex(parameters: dict[str, torch.Tensor], sampled: Sequence[str]) -> None:
    """A one-line ``ValueError`` for a sampled complex-valued parameter: the samplers move real ones."""
    complex_valued = [name for name in sampled if parameters[name].is_complex()]
    if complex_valued:
        raise ValueError(f"parameter {complex_valued[0]} is {str(parameters[complex_valued[0]].dtype)[6:]}: the "
                         "samplers move real parameters; hold it as a real tensor of real and imaginary parts "
                         "(torch.view_as_complex in the forward), or leave it out with restrict_to=")


def floating_parameters(parameters: dict[str, torch.Tensor],
                        sampled: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The sampled names without integer or boolean parameters, and a note naming those: such a
    parameter has no gradient and no density to sample (``requires_grad=False`` holds it, as a
    buffer is held), so it stays at its value; a one-line ``ValueError`` when no other is left."""
    fixed = [name for name in sampled if not (parameters[name].is_floating_point() or parameters[name].is_complex())]
    if not fixed:
        return tuple(sampled), ()
    kept = tuple(name for name in sampled if name not in fixed)
    if not kept:
        raise ValueError(f"the parameters to sample are all integer or boolean ({fixed[0]} is "
                         f"{str(parameters[fixed[0]].dtype)[6:]}): the samplers move floating-point ones only")
    return kept, (f"{len(fixed)} integer or boolean parameter tensor(s) held at their values, as buffers are "
                  f"({', '.join(fixed[:4])}{', …' if len(fixed) > 4 else ''}): only floating-point ones are sampled",)


def dense_embeddings(copy: nn.Module) -> tuple[str, ...]:
    """Embeddings made with ``sparse=True`` give sparse gradients, which the samplers' batched
    autograd cannot build: on the adapter's own ``copy`` of the module they are made dense, the
    same function of the same weights, and a note says so."""
    sparse = [name for name, part in copy.named_modules()
              if isinstance(part, (nn.Embedding, nn.EmbeddingBag)) and part.sparse]
    for name in sparse:
        copy.get_submodule(name).sparse = False
    return (f"{len(sparse)} embedding(s) made with sparse=True ({', '.join(sparse[:4])}) are sampled with dense "
            "gradients: the same function of the same weights",) if sparse else ()


def module_notes(module: nn.Module, sampled: Sequence[str]) -> tuple[str, ...]:
    """What the caller should know about how the module is sampled: its mode, parameters it had
    frozen, and forward hooks, which run inside the sampler."""
    notes = []
    if any(part.training and _mode_matters(part) for part in module.modules()):
        notes.append("the module (or a submodule) was in training mode: it is sampled in eval mode (dropout off, "
                     "batch norm from its running statistics)")
    frozen = [name for name, parameter in module.named_parameters() if not parameter.requires_grad and name in sampled]
    if frozen:
        notes.append(f"{len(frozen)} parameter tensor(s) with requires_grad=False sampled too ({', '.join(frozen[:4])}"
                     f"{', …' if len(frozen) > 4 else ''}): restrict_to= samples a subset")
    if any(part._forward_hooks or part._forward_pre_hooks for part in module.modules()):
        notes.append("the module's forward hooks run at every step of every chain, inside torch.func.vmap: tensors "
                     "they keep are not usable outside it")
    return tuple(notes)


# torch's layers whose forward reads ``training``; the others (Linear, Conv, activations, LayerNorm,
# Embedding, containers) compute the same in either mode.
MODE_DEPENDENT = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm,
                  nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.RNNBase)


def _mode_matters(part: nn.Module) -> bool:
    """Whether eval mode may change what ``part`` computes: one of torch's ``MODE_DEPENDENT``
    layers, or a module of the caller's own, whose forward may read ``self.training``."""
    return isinstance(part, MODE_DEPENDENT) or not type(part).__module__.startswith("torch.")
