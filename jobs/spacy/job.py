"""spaCy NER baseline: resume training of a pretrained pipeline's NER on GMB, then score it.

    python -m jobs.spacy --run-dir DIR

Reads the resolved recipe from DIR/recipe.yaml. Loads `model.name_or_path` (an official pipeline
name, resolved by launcher.kinds.spacy, or a pipeline directory), adds the GMB entity types
to its NER, and trains it with spaCy's own loop (`nlp.resume_training`, `spacy.util.minibatch`
with `compounding` batch sizes, dropout) on the GMB split every NER job uses, the other pipes
disabled during updates. Docs are built from GMB's own tokens (`Doc(vocab, words=...)`), so
predicted spans are exact token spans.

After each epoch it saves the whole pipeline as DIR/checkpoints/checkpoint-<epoch>/ (marked
COMPLETE last), logs loss and validation F1 to W&B, and queues the checkpoint for upload. A
restart resumes from the latest complete checkpoint. SIGUSR2 stops it at the next batch: the
epoch in progress is saved as checkpoint-<epoch> with `partial` in its marker (how many of that
epoch's shuffled sentences were used), the job exits 3, and the requeued job finishes that epoch
(Adam's moments restart: spaCy does not save its optimizer). `train.max_steps` stops it the same
way after that many updates.

At the end the last checkpoint is scored on `eval.split` (test; `eval.max_samples`) into
DIR/results/checkpoint-<N>/<recipe>_eval/ (predictions.jsonl, metrics.json: jobs.results).
With `eval.only: true` nothing is trained: the pipeline at `model.name_or_path` is scored into
`eval.results_dir` (how `launch reeval` scores a checkpoint). Exit codes: 0 done, 2 bad input,
3 stopped by SIGUSR2 after checkpointing (requeue me).
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs import results
from jobs.entry import BAD_INPUT, REQUEUE_EXIT, read_run
from launcher.config.kind_sections import SpacySpec
from launcher.config.recipe import Recipe
from launcher.jsonio import atomic_write_json
from launcher.kinds.spacy import resolve
from launcher.runs.checkpoints import (
    MARKER,
    checkpoint_dir,
    complete_checkpoints,
    latest_complete,
    mark_complete,
)
from launcher.runs.progress import now_iso
from launcher.runs.results import checkpoint_results, results_dir, self_eval_recipe
from launcher.scoring.metrics import strict_spans
from launcher.scoring.token_level import score_tagged

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

    from jobs.data.gmb import Sentence


# --------------------------------------------------------------------------------- tags and docs


def clean_tags(tags: Sequence[str]) -> list[str]:
    """IOB2 tags holding exactly the strict spans of `tags` (an I-X that continues nothing is O)."""
    out = ["O"] * len(tags)
    for start, end, kind in strict_spans(tags):
        out[start] = f"B-{kind}"
        out[start + 1 : end] = [f"I-{kind}"] * (end - start - 1)
    return out


def gmb_doc(vocab: Any, tokens: Sequence[str], tags: Sequence[str] | None = None) -> Doc:
    """A Doc of GMB's own tokens; with `tags`, its entities (every other token explicitly outside)."""
    from spacy.tokens import Doc

    return Doc(vocab, words=list(tokens), ents=clean_tags(tags) if tags is not None else None)


def doc_tags(doc: Doc) -> list[str]:
    """IOB2 tags of a Doc's entities, types lowercased (the GMB spelling)."""
    tags = ["O"] * len(doc)
    for ent in doc.ents:
        label = ent.label_.lower()
        tags[ent.start] = f"B-{label}"
        tags[ent.start + 1 : ent.end] = [f"I-{label}"] * (len(ent) - 1)
    return tags


def ner_pipes(nlp: Language) -> list[str]:
    """`ner` and the pipes it listens to (a shared tok2vec): what runs and trains for NER."""
    upstream = [name for name, pipe in nlp.pipeline if "ner" in getattr(pipe, "listener_map", {})]
    return [*upstream, "ner"]


def predict(nlp: Language, sentences: Sequence[Sentence], batch_size: int = 256) -> list[list[str]]:
    """Predicted IOB2 tags per sentence; only the NER pipes run."""
    with nlp.select_pipes(enable=ner_pipes(nlp)):
        docs = nlp.pipe((gmb_doc(nlp.vocab, s.tokens) for s in sentences), batch_size=batch_size)
        return [doc_tags(doc) for doc in docs]


# --------------------------------------------------------------------------------- scoring


def score_tags(sentences: Sequence[Sentence], pred_tags: Sequence[Sequence[str]]) -> dict[str, Any]:
    """`launcher.scoring.token_level.score_tagged` of GMB sentences: strict entity level, type-level
    tokens, sentences, counts, and `token_bio`, the research's token level."""
    return score_tagged([s.tokens for s in sentences], [s.tags for s in sentences], pred_tags)


def param_count(nlp: Language) -> int:
    """Weights of the NER pipes (what the bench shows as the size)."""
    total = 0
    for name in ner_pipes(nlp):
        pipe: Any = nlp.get_pipe(name)
        model = pipe.model
        for node in model.walk():
            total += sum(node.get_param(p).size for p in node.param_names if node.has_param(p))
    return total


def write_results(
    recipe: Recipe, run_dir: Path, nlp: Language, checkpoint: str, out: Path, sentences: Sequence[Sentence]
) -> dict[str, Any]:
    """Score `nlp` on `sentences`; write predictions.jsonl, then metrics.json, into `out`.

    `recipe` is the eval recipe (model.name_or_path = `checkpoint`): its fingerprint is the one
    `launch reeval` compares."""
    from launcher.scoring.entities import bio_to_entities, target_json

    started = time.perf_counter()
    pred = predict(nlp, sentences)
    seconds = time.perf_counter() - started
    metrics = score_tags(sentences, pred)
    rows = []
    for s, p in zip(sentences, pred, strict=True):
        ents = bio_to_entities(s.tokens, p)
        rows.append({
            "id": s.id, "tokens": s.tokens, "gold_tags": s.tags, "pred_tags": p,
            "gold": [g.to_dict() for g in bio_to_entities(s.tokens, clean_tags(s.tags))],
            "raw": target_json(ents), "entities": [e.to_dict() for e in ents], "status": "ok", "error": None,
        })  # fmt: skip
    metrics.update(
        results.scored_checkpoint(recipe, run_dir, checkpoint), dtype="fp32", engine="spacy", device="cpu",
        pipeline=nlp.meta.get("name"), params=param_count(nlp), generation_seconds=round(seconds, 3),
        sentences_per_s=round(len(sentences) / max(seconds, 1e-9), 3), created_at=now_iso(),
    )  # fmt: skip
    results.write_results(out, rows, metrics)
    s, tb = metrics["strict"], metrics["token_bio"]
    print(
        f"{recipe.eval.split}: strict entity P {s['precision']:.4f} R {s['recall']:.4f} F1 {s['f1']:.4f}; "
        f"token (BIO) F1 {tb['f1']:.4f}; {len(rows)} sentences, {metrics['sentences_per_s']:.0f} "
        f"sentences/s; wrote {out}",
        flush=True,
    )
    return metrics


def eval_recipe_for(recipe: Recipe, checkpoint: Path, out: Path) -> Recipe:
    """The recipe `launch reeval` scores `checkpoint` with (the training recipe as a self-evaluating
    kind's eval recipe, that model), so reeval finds this score and skips the checkpoint."""
    from launcher.runs.results import checkpoint_recipe, self_eval_recipe

    return checkpoint_recipe(self_eval_recipe(recipe), checkpoint, out)


# --------------------------------------------------------------------------------- training


class StopSignal:
    """Remembers a SIGUSR2 (Slurm's warning before preemption or the time limit)."""

    def __init__(self) -> None:
        self.received: int | None = None
        signal.signal(signal.SIGUSR2, self._handler)

    def _handler(self, signum: int, _frame: Any) -> None:
        self.received = signum


def batch_sizes(spec: SpacySpec, skip: int) -> Iterator[float]:
    """spaCy's compounding batch sizes, `skip` of them already used (before a requeue)."""
    from spacy.util import compounding

    sizes = iter(compounding(spec.batch_start, spec.batch_stop, spec.batch_compound))
    for _ in range(skip):
        next(sizes)
    return sizes


def drop_incomplete(run_dir: Path) -> None:
    """A checkpoint without its COMPLETE marker was cut short: it must never be resumed from."""
    root = run_dir / "checkpoints"
    done = set(complete_checkpoints(run_dir))
    for path in root.glob("checkpoint-*") if root.is_dir() else []:
        if path.is_dir() and path not in done:
            print(f"removing incomplete {path.name}", flush=True)
            shutil.rmtree(path, ignore_errors=True)


def prune(run_dir: Path, keep: int | None) -> None:
    """Keep the `keep` latest complete checkpoints (train.save_total_limit)."""
    if keep:
        for path in complete_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(path, ignore_errors=True)


def resume_state(run_dir: Path) -> tuple[Path | None, int, int, int]:
    """(latest complete checkpoint, epochs done, sentences used of the next epoch, updates so far)."""
    latest = latest_complete(run_dir)
    if latest is None:
        return None, 0, 0, 0
    info = json.loads((latest / MARKER).read_text())
    partial = info.get("partial")
    epoch = int(info["step"])
    if partial:
        return latest, epoch - 1, int(partial["offset"]), int(info.get("updates", 0))
    return latest, epoch, 0, int(info.get("updates", 0))


def train_examples(nlp: Language, sentences: Sequence[Sentence]) -> list[Any]:
    from spacy.training import Example as SpacyExample

    return [
        SpacyExample(gmb_doc(nlp.vocab, s.tokens), gmb_doc(nlp.vocab, s.tokens, s.tags)) for s in sentences
    ]


def train(recipe: Recipe, run_dir: Path) -> int:
    import spacy
    from spacy.util import fix_random_seed, minibatch

    from jobs import wandb_run
    from jobs.data.gmb import eval_sentences, recipe_split
    from jobs.uploads import BackgroundUploader
    from launcher.runs.progress import Progress, eta_seconds, write_progress

    t, d = recipe.train, recipe.data
    spec = recipe.spacy or SpacySpec()
    epochs = int(t.epochs)
    fix_random_seed(t.seed)
    split = recipe_split(d)
    train_sents = split.train[: d.max_train_samples] if d.max_train_samples else split.train
    dev_sents = split.validation[: d.max_eval_samples] if d.max_eval_samples else split.validation
    test_sents = eval_sentences(recipe, split)  # eval.split, as the eval-only scoring of a checkpoint

    stop = StopSignal()
    uploader = BackgroundUploader(recipe, run_dir)
    drop_incomplete(run_dir)
    uploader.submit_pending()
    latest, done, offset, updates = resume_state(run_dir)
    source = str(latest) if latest else resolve(recipe.model.name_or_path)
    nlp = spacy.load(source, exclude=spec.exclude)
    ner: Any = nlp.get_pipe("ner")
    labels = sorted({kind for s in train_sents for _, _, kind in strict_spans(s.tags)})
    for label in labels:
        ner.add_label(label)
    optimizer = nlp.resume_training()
    optimizer.learn_rate = t.lr
    examples = train_examples(nlp, train_sents)
    active = ner_pipes(nlp)
    print(
        f"spaCy {spacy.__version__}: {nlp.meta.get('name')} {nlp.meta.get('version')} from {source}; "
        f"training {', '.join(active)} (other pipes disabled) on {len(examples)} sentences, "
        f"{len(dev_sents)} validation, labels {', '.join(labels)}; "
        + (f"resuming after {latest.name} ({done} epochs, {offset} sentences)" if latest else "from scratch"),
        flush=True,
    )  # fmt: skip

    wandb = wandb_run.start(recipe, run_dir, "train", spacy=spec.model_dump())
    if wandb is not None:
        wandb.define_metric("train/epoch")
        wandb.define_metric("*", step_metric="train/epoch")
    sizes = batch_sizes(spec, updates)
    started, first_updates, first_epoch = time.time(), updates, done
    history: list[dict[str, Any]] = []
    last = latest
    stopped = False
    spent = bool(t.max_steps and updates >= t.max_steps)  # max_steps reached before a restart
    for epoch in range(done + 1, epochs + 1 if not spent else done + 1):
        order = list(range(len(examples)))
        random.Random(t.seed * 100_003 + epoch).shuffle(order)
        losses: dict[str, float] = {}
        epoch_start, words = time.time(), 0
        with nlp.select_pipes(enable=active):
            for batch in minibatch([examples[i] for i in order[offset:]], size=sizes):
                nlp.update(batch, drop=spec.dropout, sgd=optimizer, losses=losses)
                offset += len(batch)
                words += sum(len(ex.reference) for ex in batch)
                updates += 1
                if stop.received is not None or (t.max_steps and updates >= t.max_steps):
                    stopped = offset < len(examples)
                    break
        partial = {"offset": offset} if stopped else None
        dev = score_tags(dev_sents, predict(nlp, dev_sents))["strict"] if dev_sents else None
        entry = {"epoch": epoch, "loss": round(float(losses.get("ner", 0.0)), 4), "updates": updates,
                 "seconds": round(time.time() - epoch_start, 1),
                 "dev_f1": dev["f1"] if dev else None}  # fmt: skip
        history.append(entry)
        last = save_checkpoint(nlp, run_dir, epoch, entry, partial)
        prune(run_dir, t.save_total_limit)
        uploader.submit(f"checkpoints/{last.name}")
        print(
            f"epoch {epoch}/{epochs}{' (partial)' if partial else ''}: loss {entry['loss']}, dev strict F1 "
            f"{entry['dev_f1'] if dev is None else round(dev['f1'], 4)}, {updates} updates, "
            f"{entry['seconds']}s; saved {last.name}",
            flush=True,
        )
        elapsed = time.time() - started
        if t.max_steps:
            eta = eta_seconds(elapsed, updates - first_updates, t.max_steps - updates)
        else:
            eta = eta_seconds(elapsed, epoch - first_epoch, epochs - epoch)
        write_progress(run_dir, Progress(
            step=updates, total_steps=t.max_steps or None, epoch=float(epoch), loss=entry["loss"], lr=t.lr,
            tokens_per_s=round(words / max(time.time() - epoch_start, 1e-9), 1),
            eta_s=None if eta is None else round(eta, 1), updated_at=now_iso(),
        ))  # fmt: skip
        if wandb is not None:
            values = {"train/epoch": epoch, "train/loss": entry["loss"], "train/updates": updates}
            if dev:
                values.update({"dev/f1": dev["f1"], "dev/precision": dev["precision"],
                               "dev/recall": dev["recall"]})  # fmt: skip
            wandb.log(values)
        offset = 0
        if stop.received is not None or (t.max_steps and updates >= t.max_steps):
            break
    seconds = time.time() - started
    write_summary(run_dir, history, seconds, len(examples), updates)
    if wandb is not None:
        wandb.finish()
    if stop.received is not None:
        uploader.finish(timeout=120)
        print(f"stopped by signal {stop.received} after {updates} updates; requeue", flush=True)
        return REQUEUE_EXIT
    if last is not None:
        out = checkpoint_results(run_dir, last.name, self_eval_recipe(recipe))
        scored = eval_recipe_for(recipe, last, out)
        final = spacy.load(str(last))
        metrics = write_results(scored, run_dir, final, str(last.resolve()), out, test_sents)
        results.log_ner(scored, run_dir, metrics, recipe.name)
        results.upload(recipe, run_dir, out)
    uploader.finish()
    return 0


def save_checkpoint(
    nlp: Language, run_dir: Path, epoch: int, entry: dict[str, Any], partial: dict[str, int] | None
) -> Path:
    """The whole pipeline as checkpoint-<epoch>, the marker last (a partial epoch says so)."""
    path = checkpoint_dir(run_dir, epoch)
    if path.exists():
        shutil.rmtree(path)  # a partial epoch saved before a requeue, now finished
    path.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(path)
    mark_complete(path, step=epoch, epoch=epoch, updates=entry["updates"], loss=entry["loss"],
                  dev_f1=entry["dev_f1"], partial=partial)  # fmt: skip
    return path


def write_summary(
    run_dir: Path, history: list[dict[str, Any]], seconds: float, samples: int, updates: int
) -> None:
    """results/train.json: this attempt's epochs, time and the run's complete checkpoints."""
    out = run_dir / "results"
    out.mkdir(exist_ok=True)
    summary = {"updates": updates, "seconds": round(seconds, 1), "samples": samples, "history": history,
               "checkpoints": [p.name for p in complete_checkpoints(run_dir)]}  # fmt: skip
    atomic_write_json(out / "train.json", summary)


# --------------------------------------------------------------------------------- eval only


def evaluate_only(recipe: Recipe, run_dir: Path) -> int:
    """Score the pipeline at model.name_or_path on the test split; nothing is trained."""
    import spacy

    from jobs.data.gmb import eval_sentences

    name = recipe.model.name_or_path
    nlp = spacy.load(resolve(name), exclude=(recipe.spacy or SpacySpec()).exclude)
    out = results_dir(recipe, run_dir)
    sentences = eval_sentences(recipe)
    print(f"evaluating {name} on {len(sentences)} {recipe.eval.split} sentences", flush=True)
    metrics = write_results(recipe, run_dir, nlp, name, out, sentences)
    results.log_ner(recipe, run_dir, metrics, results.training_recipe_name(Path(name)))
    results.upload(recipe, run_dir, out)
    return 0


def main(argv: list[str] | None = None) -> int:
    loaded = read_run(argv, __doc__.splitlines()[0])
    if loaded is None:
        return BAD_INPUT
    recipe, run_dir = loaded
    return evaluate_only(recipe, run_dir) if recipe.eval.only else train(recipe, run_dir)
