"""The training side of the kit, shared by every script and knowing no task.

- ``args``: argparse types (``bounded``, ``POSITIVE_INT``, ...) and the shared model flags;
- ``helpformat``: the ``--help`` layout of every script (each default shown), free of torch;
- ``loading``: the tokenizer and the ``GPT2Model`` those flags ask for;
- ``trainer``: the one training loop (``Trainer``, ``TrainConfig``), which knows no task;
- ``schedule``: warmup then cosine decay of the learning rate;
- ``batches``: where the loop's batches come from (token windows, a ``DataLoader``);
- ``checkpoint``: checkpoints with nanoGPT's keys, written atomically, the last N kept as
  ``ckpt_<iter>.pt``, and random states;
- ``metrics``, ``plots``: the JSONL metrics log, and the curves drawn from it afterwards;
- ``distributed``: torchrun, DDP and FSDP2, and naming the rank that failed;
- ``finetune``: the Part 2 scripts' fine-tuning on the loop (loaders, ``fit``, predictions);
- ``lm_data``: a corpus that ``data/prepare_lm.py`` tokenized (``train.bin``, ``val.bin``,
  ``meta.json``, its tokenizer);
- ``perplexity``: a sequence's summed NLL in strided sliding windows, and the figures
  (perplexity, bits per token, bits per byte) made from it;
- ``averaging``: the element-wise mean of several checkpoints;
- ``losses``: the LM cross-entropy and the output-embedding regularisers (z-loss, mu-loss,
  mu-centering) of the research part (handout 9.4, 9.5);
- ``peft``: the ``--peft`` switch (LoRA adapters, what trains, adapter-only checkpoints).
"""
