"""Export a trained model as a Hugging Face checkpoint.

    python export_hf.py out/pretrain hf/shakespeare        # a pretrain.py folder or ckpt.pt
    python -c "from transformers import AutoModelForCausalLM, AutoTokenizer; \\
        m = AutoModelForCausalLM.from_pretrained('hf/shakespeare'); \\
        t = AutoTokenizer.from_pretrained('hf/shakespeare'); \\
        print(t.decode(m.generate(**t('ROMEO:', return_tensors='pt'))[0]))"

OUT_DIR gets ``config.json``, ``model.safetensors`` and ``generation_config.json``, which
``transformers.AutoModelForCausalLM.from_pretrained(OUT_DIR)`` loads, plus the tokenizer
files of the checkpoint's corpus (``AutoTokenizer.from_pretrained(OUT_DIR)``) when it has
one (a checkpoint that names no corpus exports without).  The class is ``GPT2LMHeadModel`` for learned positions (or none) and
``GPTNeoXForCausalLM`` for rope (``models/export.py``); in fp32 its logits equal the kit's
to 1e-5.  Switches that no ``transformers`` class computes (ALiBi, SwiGLU, the attention
variants, qk-norm, interleaved rotary) are refused, each with the reason.  The end-of-text
id becomes bos and eos, the model's pad id stays pad (and becomes the tokenizer's pad
token when it has none).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from models.export import to_hf
from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.helpformat import HelpFormatter
from training.loading import (
    model_and_tokenizer_dir,
    our_checkpoint,
    tokenizer_files,
    tokenizer_from,
)


def export(spec: str, out_dir: str | Path, tokenizer_dir: str | None = None) -> dict[str, str]:
    """Write the Hugging Face twin of ``spec`` (a checkpoint, its folder, or a Hugging Face
    folder or name) and its tokenizer to ``out_dir``; returns what was written.  Raises
    ValueError for a model no ``transformers`` class computes, FileNotFoundError for a
    missing checkpoint or tokenizer folder."""
    from transformers import AutoTokenizer

    checkpoint = our_checkpoint(spec)
    if (tokenizer_dir is None and checkpoint is not None
            and not (load_checkpoint(checkpoint).get("config") or {}).get("data_dir")):
        model, folder = model_from_checkpoint(checkpoint), None  # no tokenizer to carry
    else:
        model, folder = model_and_tokenizer_dir(spec, tokenizer_dir)
    eot = None if folder is None else tokenizer_from(folder).eot_token
    twin = to_hf(model, bos_token_id=eot, eos_token_id=eot)
    out_dir = Path(out_dir)
    twin.save_pretrained(out_dir)
    if folder is not None:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_files(folder))
        if tokenizer.pad_token is None and twin.config.pad_token_id is not None:
            tokenizer.pad_token = tokenizer.convert_ids_to_tokens(twin.config.pad_token_id)
        tokenizer.save_pretrained(out_dir)
    return {"class": type(twin).__name__, "out_dir": str(out_dir),
            "tokenizer": "none" if folder is None else str(tokenizer_files(folder))}


def main(argv: list[str] | None = None) -> dict[str, str]:
    parser = argparse.ArgumentParser(prog="export_hf.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("checkpoint", help="a pretrain.py ckpt.pt/best.pt or its folder")
    parser.add_argument("out_dir", help="the folder to write the Hugging Face checkpoint to")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder, or a "
                        "data/prepare_lm.py folder (default: the checkpoint's corpus)")
    args = parser.parse_args(argv)
    try:
        written = export(args.checkpoint, args.out_dir, args.tokenizer)
    except (FileNotFoundError, ValueError, OSError) as error:
        parser.exit(2, f"export_hf.py: error: {args.checkpoint}: {error}\n")
    print(f"wrote {written['class']} (tokenizer: {written['tokenizer']}) to "
          f"{written['out_dir']}")
    return written


if __name__ == "__main__":
    main()
