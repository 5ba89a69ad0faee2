"""``python -m learning_machines.cli``: the same as the ``learning-machines`` command."""

from ._app import main

main()
