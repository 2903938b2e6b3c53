"""The training side of the kit, shared by every script and knowing no task.

- ``args``: argparse types (``bounded``, ``POSITIVE_INT``, ...) and the shared model flags;
- ``loading``: the tokenizer and the ``GPT2Model`` those flags ask for.
"""
