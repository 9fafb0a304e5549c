"""torch.func.vmap's warning that an operation has no batching rule ("There is a performance
drop ..."), which torch raises at every batched call, so once per step of every chain's run
(a module with ``nn.utils.parametrizations.weight_norm`` printed it hundreds of times in one
estimate): caught on an adapter's first batched call, said once as a note, silenced after."""

from __future__ import annotations

import re
import warnings
from typing import Any, Callable

SLOW_BATCHING = "There is a performance drop because we have not yet implemented the batching rule"


class QuietBatching:
    """Calls a vmapped function; ``seen`` is None until a first call returns, then whether torch
    warned of an operation without a batching rule (later calls silence that warning, or, where it
    never came, run unwrapped). Other warnings pass through as raised."""

    def __init__(self):
        self.seen: bool | None = None
        self._note: tuple[str, ...] = ()

    def __call__(self, function: Callable, *arguments) -> Any:
        if self.seen is False:
            return function(*arguments)
        if self.seen:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=SLOW_BATCHING)
                return function(*arguments)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = function(*arguments)
        slow = [str(caught_warning.message) for caught_warning in caught
                if str(caught_warning.message).startswith(SLOW_BATCHING)]
        for other in caught:
            if not str(other.message).startswith(SLOW_BATCHING):
                warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
        self.seen = bool(slow)
        operations = sorted({match.group(1) for text in slow if (match := re.search(r"rule for (\S+?)\.", text))})
        if slow:
            self._note = (f"torch.func.vmap has no batching rule for {', '.join(operations) or 'an operation'} "
                          "of the module: it loops over the chains there (the same numbers, more slowly; torch's "
                          "warning of it at every step is left out)",)
        return result

    def take_note(self) -> tuple[str, ...]:
        """The note, once, after the call that first found the warning; () at every other time."""
        note, self._note = self._note, ()
        return note
