"""Text classification with confidence through an OpenAI-compatible API or a local model.

    python -m jobs.classify --run-dir DIR

Reads DIR/recipe.yaml. Draws `classify.sample` items with `classify.seed` from the data (the shipped
AG News test split, or `data.path` with the columns `classify.columns` names), then classifies them
level by level (`classify.levels`): a level's candidates are the children of the gold parent
(`mode: oracle`, the research's protocol) or of the model's own top-1 one level up (`cascade`).
`eval.shots` examples from the rows not being classified go into each prompt. Each answer is
parsed with the research's matcher into up to `classify.n_predictions` ranked candidates, each
with the confidence the model wrote and, where the engine gives token log-probabilities, the
probability of the label renormalised over the candidates found.

Writes into DIR/results/<model name>/<recipe name>/: predictions.jsonl (one row per item and level) and
metrics.json (launcher.scoring.classification, plus the cell's dataset, level, shots, mode, model,
engine, requests_sent, cached), metrics.json last; written, uploaded and logged to W&B through
jobs.results. Answers are cached under $LAUNCH_HOME (see jobs.classify.cache): a rerun or a
requeued job sends no request for what was answered; a cache that cannot be used is said in one
line naming its file, and the job runs without it. A malformed 200 or an empty answer is a failed
item (`parse_status: error`, counted in `failures`), never cached; stored answers are capped at
jobs.classify.answer.MAX_ANSWER_BYTES (64 KiB) with a marker. Exit codes: 0 done, 1 environment
(no API key, engine missing), 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs import results
from jobs.classify.answer import label_distribution, parse_answer, token_span
from jobs.classify.cache import ResponseCache
from jobs.classify.engines import ClassifyHFEngine, OpenAIEngine, Query, Reply, Stats, softmax
from jobs.classify.prompt import load_template, render
from jobs.data.classification import Dataset, Item, load_dataset, sample_items, support_examples
from jobs.entry import start_log_times
from launcher.config.checks import check_inputs
from launcher.config.kind_sections import ClassifySpec
from launcher.config.recipe import Recipe, read_resolved
from launcher.errors import UserError
from launcher.kinds.classify import is_loopback
from launcher.runs.progress import now_iso
from launcher.runs.results import results_dir
from launcher.scoring.cls_match import match
from launcher.scoring.labels import Label

LOCAL_KEY = "sk-no-key-local"  # what a loopback server is sent when key_env is unset: it checks none


class EnvironmentFailure(Exception):
    """Something about this machine, not the recipe: exit 1 with one line."""


class ReplyProgress:
    """The replies of one level as they arrive: a rich progress bar on a terminal, else a line on
    stdout every `every_s` seconds (and at the end). Nothing is written to progress.json."""

    def __init__(self, total: int, label: str, every_s: float) -> None:
        self.total, self.label, self.every_s = total, label, every_s
        self.done = self.failed = self.cached = 0
        self.started = self._last = time.monotonic()
        self._bar: Any = None
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]} items/s, {task.fields[failed]} failed"),
                                 TimeRemainingColumn())  # fmt: skip
            self._bar.start()
            self._task = self._bar.add_task(label, total=total, rate="0.0", failed=0)

    def reply(self, reply: Reply) -> None:
        self.done += 1
        self.failed += reply.error is not None
        self.cached += reply.cached
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, rate=f"{rate:.1f}", failed=self.failed)
        elif time.monotonic() - self._last >= self.every_s or self.done == self.total:
            self._last = time.monotonic()
            left = (self.total - self.done) / rate if rate else 0
            print(f"  {self.label}: {self.done}/{self.total} items, {rate:.2f} items/s, ETA {left:.0f} s, "
                  f"{self.failed} failed, {self.cached} cached", flush=True)  # fmt: skip

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# ------------------------------------------------------------------------------------ engines


def api_key(recipe: Recipe) -> str:
    """The key from the environment variable the recipe names; a placeholder for a loopback
    server when that variable is unset; else an EnvironmentFailure."""
    api = recipe.eval.api
    assert api is not None
    key = os.environ.get(api.key_env)
    if key:
        return key
    if is_loopback(api.base_url):
        return LOCAL_KEY
    raise EnvironmentFailure(
        f"eval.api.key_env: ${api.key_env} is not set; export it (the key reaches the job through the "
        f"environment only) or point eval.api.base_url at a local server"
    )


def sampling(recipe: Recipe) -> dict[str, Any]:
    s = recipe.classify.sampling if recipe.classify else None
    assert s is not None
    out: dict[str, Any] = {
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": recipe.eval.max_new_tokens,
    }
    if s.seed is not None:
        out["seed"] = s.seed
    return out


def response_format(kind: str, cands: list[Label], n: int) -> dict[str, Any] | None:
    """The `response_format` a request sends (classify.response_format), for these candidates."""
    if kind == "none":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    item = {"type": "object", "required": ["category", "confidence"], "additionalProperties": False,
            "properties": {"category": {"type": "string", "enum": [x.label for x in cands]},
                           "confidence": {"type": "number"}}}  # fmt: skip
    schema = {"type": "object", "required": ["predictions"], "additionalProperties": False,
              "properties": {"predictions": {"type": "array", "items": item, "minItems": 1,
                                             "maxItems": min(n, len(cands))}}}  # fmt: skip
    if kind == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    return {"type": "json_object", "schema": schema}


def build_engine(recipe: Recipe, cache: ResponseCache, stats: Stats, log: Callable[[str], None]) -> Any:
    c, e = recipe.classify, recipe.eval
    assert c is not None
    wants_logprobs = e.confidence in ("logprobs", "auto")
    if e.engine == "openai":
        assert e.api is not None
        return OpenAIEngine(
            e.api.base_url, api_key(recipe), recipe.model.name_or_path, sampling(recipe),
            timeout_s=e.api.timeout_s, attempts=c.attempts, concurrency=e.api.max_concurrency, rpm=c.rpm,
            logprobs=wants_logprobs, cache=cache, stats=stats, log=log,
        )  # fmt: skip
    from jobs.classify.hf import hf_ident, load_hf

    return ClassifyHFEngine(
        lambda: load_hf(recipe), hf_ident(recipe), c.hf_mode, sampling(recipe), cache, stats
    )


# ------------------------------------------------------------------------------------- levels


def candidates_for(data: Dataset, level: int, parent: str | None) -> list[Label]:
    return data.tree.level(1) if level == 1 else data.tree.children(parent, level - 1)


def row_for(item: Item, level: int, cands: list[Label], reply: Reply | None, spec: ClassifySpec,
            engine: str, hf_mode: str) -> dict[str, Any]:  # fmt: skip
    """One predictions.jsonl row (the shape launcher.scoring.classification reads)."""
    base = {
        "id": item.id,
        "level": level,
        "gold": item.gold.get(level),
        "candidates": [c.code for c in cands],
    }
    if reply is None:
        return {**base, "predictions": [], "raw": "", "parse_status": "failed", "latency_ms": None,
                "prompt_tokens": 0, "completion_tokens": 0, "cached": False,
                "note": "no candidates: the level above has no prediction"}  # fmt: skip
    usage = {"latency_ms": round(reply.latency_ms, 1), "prompt_tokens": reply.prompt_tokens,
             "completion_tokens": reply.completion_tokens, "cached": reply.cached}  # fmt: skip
    if reply.error is not None:
        return {**base, "predictions": [], "raw": reply.error, "parse_status": "error", **usage}
    if engine == "hf" and hf_mode == "loglik":
        probs = softmax(reply.scores or {})
        by_label = {c.label: c.code for c in cands}
        ranked = sorted(probs, key=lambda k: -probs[k])[: spec.n_predictions]
        preds = [{"label": by_label[k], "confidence_verbal": None, "confidence_logprob": round(probs[k], 6)}
                 for k in ranked]  # fmt: skip
        return {**base, "predictions": preds, "raw": reply.text, "parse_status": "ok",
                "loglik": reply.scores, **usage}  # fmt: skip
    found = match(reply.text, cands, "seed")
    dist: dict[str, float] | None = None
    if reply.tokens is not None:
        answer = parse_answer(reply.text)
        labels = {c.code: c.label for c in cands}
        span = token_span(reply.tokens, reply.text, answer.first_span) if answer.first_span else None
        dist = label_distribution(reply.tokens, span, labels) if span else {}
    preds = [{"label": p.code, "confidence_verbal": p.confidence,
              "confidence_logprob": round(dist.get(p.code or "", 0.0), 6) if dist else None}
             for p in found.picks[: spec.n_predictions]]  # fmt: skip
    return {**base, "predictions": preds, "raw": reply.text, "parse_status": found.status, **usage}


def classify(recipe: Recipe, run_dir: Path) -> int:
    """Classify, score and write one cell (module docstring); returns 0."""
    c, e = recipe.classify, recipe.eval
    assert c is not None
    log: Callable[[str], None] = lambda line: print(line, flush=True)  # noqa: E731
    data = load_dataset(recipe)
    template = load_template(c.prompt, recipe.source)
    cell, pool = sample_items(data.items, c.sample, c.seed)
    for note in data.tree.skipped:
        log(f"note: {note}")
    cache = ResponseCache(enabled=e.cache, warn=log)  # an unusable cache: one line, then none
    stats = Stats()
    engine = build_engine(recipe, cache, stats, log)
    where = e.api.base_url if e.engine == "openai" and e.api else "in-process"
    cached = "off" if not e.cache else "off (unusable, see above)" if cache.broken else f"on: {cache.path}"
    log(f"classifying {len(cell)} {data.name} items (seed {c.seed}) at level(s) {c.levels}, mode {c.mode}, "
        f"{e.shots}-shot, model {recipe.model.name_or_path} via {e.engine} ({where}), cache "
        f"{cached}")  # fmt: skip
    rows: list[dict[str, Any]] = []
    top1: dict[str, str | None] = {}  # item id -> the model's top-1 at the level just done
    started = time.perf_counter()
    support: dict[tuple[int, str | None], list[tuple[str, Label]]] = {}
    for level in c.levels:
        jobs: list[tuple[Item, list[Label], Query | None]] = []
        for item in cell:
            if item.gold.get(level) is None:
                continue
            parent = (
                None
                if level == 1
                else (item.gold.get(level - 1) if c.mode == "oracle" else top1.get(item.id))
            )
            cands = candidates_for(data, level, parent) if level == 1 or parent else []
            if not cands:
                jobs.append((item, cands, None))
                continue
            key = (level, parent)
            if key not in support:
                support[key] = [(ex.text, lab) for ex, lab in support_examples(
                    pool, cands, level, e.shots, c.support.strategy, c.support.seed)]  # fmt: skip
            prompt = render(template, cands, support[key], item.text, c.n_predictions, level)
            fmt = response_format(c.response_format, cands, c.n_predictions)
            messages = ({"role": "user", "content": prompt},)
            jobs.append((item, cands, Query(messages, tuple(x.label for x in cands), fmt)))
        queries = [q for _, _, q in jobs if q is not None]
        progress = ReplyProgress(len(queries), f"level {level}", c.progress_every_s)
        try:
            replies = iter(engine.run(queries, progress.reply))
        finally:
            progress.close()
        for item, cands, query in jobs:
            row = row_for(item, level, cands, next(replies) if query else None, c, e.engine, c.hf_mode)
            rows.append(row)
            top1[item.id] = row["predictions"][0]["label"] if row["predictions"] else None
    seconds = time.perf_counter() - started
    return write_results(recipe, run_dir, data, rows, stats, seconds, log)


def write_results(recipe: Recipe, run_dir: Path, data: Dataset, rows: list[dict[str, Any]], stats: Stats,
                  seconds: float, log: Callable[[str], None]) -> int:  # fmt: skip
    from launcher.scoring.classification import score_classification, score_levels, write_reliability_png

    c, e = recipe.classify, recipe.eval
    assert c is not None
    out = results_dir(recipe, run_dir)
    deepest = max(c.levels)
    metrics = score_classification([r for r in rows if r["level"] == deepest])
    if len(c.levels) > 1:
        metrics["hierarchy"] = score_levels(rows)
    logprobs = any(p.get("confidence_logprob") is not None for r in rows for p in r["predictions"])
    metrics.update(
        dataset=data.name, level=deepest, levels=c.levels, shots=e.shots, mode=c.mode,
        model=recipe.model.name_or_path, engine=e.engine if e.engine != "hf" else f"hf-{c.hf_mode}",
        requests_sent=stats.requests_sent, cached=stats.cached, failures=stats.failures,
        logprobs_available=logprobs and stats.logprobs_missing == 0,
        notes=[*data.tree.skipped, *stats.notes], recipe=recipe.name, run_id=run_dir.name,
        sample=c.sample, seed=c.seed, support=c.support.strategy, response_format=c.response_format,
        concurrency=stats.in_flight or (e.api.max_concurrency if e.engine == "openai" and e.api else 1),
        seconds=round(seconds, 3), requests_per_s=round(stats.requests_sent / max(seconds, 1e-9), 3),
        items_per_s=round(len(rows) / max(seconds, 1e-9), 3), ece_bins=10,
        created_at=now_iso(),
    )  # fmt: skip
    results.write_predictions(out, rows)
    title = f"{recipe.name}: {recipe.model.name_or_path}, level {deepest}, {e.shots}-shot"
    png = write_reliability_png(metrics["calibration"], out / "reliability.png", title)
    metrics["reliability_png"] = png.name if png else None
    results.write_metrics(out, metrics)
    cal = metrics["calibration"]
    p50 = metrics["latency_ms"]["p50"]
    p50 = "n/a" if p50 is None else f"{p50:.0f}"
    eces = ", ".join(f"ECE {k} {v['ece']:.4f}" for k, v in cal.items() if isinstance(v, dict) and "ece" in v)
    log(f"top-1 {metrics['top1']:.4f} top-3 {metrics['top3']:.4f} on {metrics['n']} items; "
        f"{eces or 'no ECE'}; p50 latency {p50} ms; {stats.requests_sent} requests "
        f"sent, {stats.cached} answers from the cache, {stats.failures} failed; wrote {out}")  # fmt: skip
    results.log_classification(recipe, run_dir, metrics)
    results.upload(recipe, run_dir, out)
    return 0


def main(argv: list[str] | None = None) -> int:
    start_log_times()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    run_dir = parser.parse_args(argv).run_dir
    try:
        recipe = read_resolved(run_dir)
        check_inputs(recipe)
        if recipe.job != "classify" or recipe.classify is None:
            raise UserError(f"{recipe.source}: job: jobs.classify runs job classify (got {recipe.job})")
        return classify(recipe, run_dir)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except EnvironmentFailure as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
