"""A child process of the reliability bench: ``python -m learning_machines.bench._rel_child``.

Arguments: a role and its JSON arguments. The role's function prints ``ready`` when it is set
up, may wait for ``go`` on stdin (so that writers start together), prints progress lines, and
its result as ``result {json}``. Library warnings go to stderr (the parent keeps them in a log).
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ChildIO", "main"]

#: Role name -> (module in this package, function taking ``(args, io)``).
ROLES: dict[str, tuple[str, str]] = {
    "tool-writer": ("_rel_concurrent", "tool_writer"),
    "extract-writer": ("_rel_concurrent", "extract_writer"),
    "crash-agent": ("_rel_crash", "crash_agent"),
    "crash-drain": ("_rel_crash", "crash_drain"),
    "load-agent": ("_rel_load", "load_agent"),
}


class ChildIO:
    """The child's side of the conversation with the bench."""

    def say(self, word: str, rest: str = "") -> None:
        """Print one line for the parent (flushed at once)."""
        print(f"{word} {rest}".rstrip(), flush=True)

    def wait_go(self) -> None:
        """Block until the parent writes a line (the start signal)."""
        sys.stdin.readline()


Role = Callable[[dict[str, Any], ChildIO], "dict[str, Any] | None"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the role named by the first argument with the JSON of the second."""
    role, raw = list(argv if argv is not None else sys.argv[1:])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    module, name = ROLES[role]
    run: Role = getattr(importlib.import_module(f"{__package__}.{module}"), name)
    io = ChildIO()
    result = run(json.loads(raw), io)
    if result is not None:
        io.say("result", json.dumps(result))


if __name__ == "__main__":
    main()
