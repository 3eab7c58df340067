"""Tiny encoders with random weights for the token-classification code paths, built locally.

    tiny://electra-gmb   ELECTRA (as google/electra-base-discriminator), WordPiece tokenizer
    tiny://roberta-gmb   RoBERTa (as numind/NuNER-v2.0), byte-level BPE tokenizer

Both tokenizers are trained on GMB text; nothing is downloaded. `jobs.tiny.models.resolve` builds them
on first use into the same cache as tiny://qwen2-gmb. The architectures and tokenizer classes are
the real models' (ElectraTokenizer with [CLS]/[SEP], RobertaTokenizer with <s>/</s> and
add_prefix_space), so word_ids alignment, special tokens and the model heads run as they do for
the real checkpoints.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from jobs.data.gmb import load_gmb

if TYPE_CHECKING:
    from tokenizers import Tokenizer


class Layers(TypedDict):
    """The encoder's shape, as ElectraConfig and RobertaConfig take it."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int


VERSION = 1
LAYERS: Layers = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
}
ENCODERS: dict[str, str] = {"electra-gmb": "electra", "roberta-gmb": "roberta"}
VOCAB = 2000


def _texts(limit: int = 20000) -> list[str]:
    return [s.text for s in load_gmb()[:limit]]


def _special(core: Tokenizer, token: str) -> tuple[str, int]:
    """`(token, id)` of a special token the trainer added, as the post-processors take it."""
    token_id = core.token_to_id(token)
    if token_id is None:
        raise ValueError(f"special token {token} is not in the trained vocabulary")
    return token, token_id


def _electra(tmp: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    # ElectraTokenizerFast: a runtime alias in transformers 5 that its type exports leave out
    from transformers import ElectraConfig, ElectraModel, ElectraTokenizerFast  # type: ignore[attr-defined,unused-ignore]

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    core = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.decoder = decoders.WordPiece()
    core.train_from_iterator(
        _texts(), trainers.WordPieceTrainer(vocab_size=VOCAB, special_tokens=specials, show_progress=False)
    )
    core.post_processor = processors.BertProcessing(_special(core, "[SEP]"), _special(core, "[CLS]"))
    tokenizer = ElectraTokenizerFast(tokenizer_object=core, model_max_length=512)
    tokenizer.save_pretrained(tmp)
    config = ElectraConfig(
        vocab_size=len(tokenizer),
        embedding_size=LAYERS["hidden_size"],
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        **LAYERS,
    )
    ElectraModel(config).save_pretrained(tmp)


def _roberta(tmp: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=specials,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(_texts(), trainer)
    core.post_processor = processors.RobertaProcessing(
        _special(core, "</s>"), _special(core, "<s>"), add_prefix_space=True
    )
    tokenizer = RobertaTokenizerFast(tokenizer_object=core, add_prefix_space=True, model_max_length=512)
    tokenizer.save_pretrained(tmp)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **LAYERS,
    )
    RobertaModel(config).save_pretrained(tmp)


def build(name: str, out: Path, seed: int = 0) -> Path:
    """Write tokenizer and random-weight encoder `name` to `out` (atomically); return `out`."""
    import torch

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.manual_seed(seed)
    {"electra": _electra, "roberta": _roberta}[ENCODERS[name]](tmp)
    (tmp / "tiny.json").write_text(json.dumps({"name": name, "version": VERSION, "seed": seed}) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
