"""Which of a module's parameters a restriction selects: parameter names, glob patterns over
them (``"layers.2.*"``) or submodules, with a one-line ``ValueError`` for a pattern that
selects nothing, saying when the name it gives is the second name of a tied weight."""

from __future__ import annotations

import fnmatch
from typing import Any, Sequence

from torch import nn


def restriction_patterns(module: nn.Module, restrict_to: Any) -> tuple[str, ...] | None:
    """``restrict_to`` as name patterns: a string, a submodule of ``module`` (its name) or a
    tuple or list of them; None stays None. Anything else is a one-line ``ValueError``."""
    if restrict_to is None:
        return None
    single = isinstance(restrict_to, (str, nn.Module))
    if not (single or isinstance(restrict_to, (tuple, list))):
        raise ValueError(f"restrict_to takes parameter names, glob patterns or submodules, got "
                         f"{type(restrict_to).__name__} {restrict_to!r}")
    names = {id(part): name for name, part in module.named_modules()}
    patterns = []
    for item in (restrict_to,) if single else restrict_to:
        if isinstance(item, nn.Module):
            if id(item) not in names:
                raise ValueError(f"restrict_to names a {type(item).__name__} that is not a submodule of the model")
            if not names[id(item)]:
                raise ValueError("restrict_to names the model itself: leave it out to sample every parameter")
            item = names[id(item)]
        if not (isinstance(item, str) and item):
            raise ValueError(f"restrict_to takes parameter names, glob patterns or submodules, got {restrict_to!r}")
        patterns.append(item)
    if not patterns:
        raise ValueError(f"restrict_to takes parameter names, glob patterns or submodules, got {restrict_to!r}")
    return tuple(patterns)


def named_restriction(module: nn.Module, restriction: Any) -> str | tuple[str, ...] | None:
    """One restriction with its submodules given as objects replaced by their names in
    ``module`` (:func:`restriction_patterns`); a string or None as it is."""
    if restriction is None or isinstance(restriction, str):
        return restriction
    patterns = restriction_patterns(module, restriction)
    return patterns[0] if isinstance(restriction, nn.Module) else patterns


def selected_parameters(module: nn.Module, restrict_to: str | Sequence[str] | None) -> tuple[str, ...]:
    """Names of the parameters ``restrict_to`` selects (all when None): each pattern is a
    parameter's name, a glob over names (``"layers.2.*"``) or a submodule's name (``"layers.2"``,
    or the submodule itself, :func:`restriction_patterns`). A pattern that matches nothing is a
    ``ValueError`` listing the names there are; one that matches the second name of a tied weight
    whose first name it leaves out (a head tied to an embedding) is one naming the shared tensor,
    which would otherwise be left out unsaid."""
    names = tuple(name for name, _ in module.named_parameters())
    if not names:
        raise ValueError(f"the module ({type(module).__name__}) has no parameters to sample")
    patterns = restriction_patterns(module, restrict_to)
    if patterns is None:
        return names
    selected = tuple(name for name in names if any(_matches(name, pattern) for pattern in patterns))
    tied = _tied_aliases(module)
    for pattern in patterns:
        matched = any(_matches(name, pattern) for name in names)
        left_out = [alias for alias in tied if _matches(alias, pattern) and tied[alias] not in selected]
        if left_out:
            aliases, targets = ", ".join(left_out), list(dict.fromkeys(tied[alias] for alias in left_out))
            tied_to = f"{'is' if len(left_out) == 1 else 'are'} tied to {', '.join(targets)}"
            shared = ", ".join(repr(target) for target in targets)
            one = ("that one shared tensor (sampled once, under every name it has)" if len(targets) == 1 else
                   "those shared tensors (each sampled once, under every name it has)")
            if not matched:
                raise ValueError(f"restrict_to {pattern!r} matches only {aliases}, which {tied_to}: restrict "
                                 f"to {shared} to sample {one}")
            raise ValueError(f"restrict_to {pattern!r} also matches {aliases}, which {tied_to} and would be "
                             f"left out: add {shared} to sample {one}, or name the other parameters alone")
        if not matched:
            shown = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
            raise ValueError(f"restrict_to {pattern!r} matches no parameter of the module; its parameters are: {shown}")
    return selected


def _tied_aliases(module: nn.Module) -> dict[str, str]:
    """Each second name of a parameter shared by several submodules (tied weights), mapped to the
    name ``named_parameters()`` lists it under."""
    first: dict[int, str] = {}
    aliases = {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        if id(parameter) in first:
            aliases[name] = first[id(parameter)]
        else:
            first[id(parameter)] = name
    return aliases


def _matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern) or name.startswith(pattern + ".")
