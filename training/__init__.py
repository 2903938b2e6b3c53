"""The training side of the kit, shared by every script and knowing no task.

- ``args``: argparse types (``bounded``, ``POSITIVE_INT``, ...) and the shared model flags;
- ``loading``: the tokenizer and the ``GPT2Model`` those flags ask for;
- ``lm_data``: a corpus that ``data/prepare_lm.py`` tokenized (``train.bin``, ``val.bin``,
  ``meta.json``, its tokenizer);
- ``perplexity``: a sequence's summed NLL in strided sliding windows, and the figures
  (perplexity, bits per token, bits per byte) made from it;
- ``averaging``: the element-wise mean of several checkpoints;
- ``peft``: the ``--peft`` switch (LoRA adapters, what trains, adapter-only checkpoints).
"""
