"""Character language models: a positional split, bits per character, sampling.

The text is split by position (train, then validation, then test at the end), the vocabulary
comes from the training part only, and the model predicts every next character of
non-overlapping ``--seq-len`` windows. Its loss is cross-entropy in nats; reports convert it
to bits per character (divide by ln 2) to compare with the unigram baseline.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import rnnkit as rk
from rnnkit.data import Text, Vocab, char_lm_windows, chronological_split, unigram_bits_per_char
from rnnkit.errors import DataError
from rnnkit.functional import softmax

from .prepared import Prepared, describe
from .settings import Settings

SAMPLE_PRIME = 120  # characters of held-out text that start sample.txt


def _windows(ids: np.ndarray, seq_len: int, name: str, part: str):
    if len(ids) < seq_len + 1:
        raise DataError(
            f"{name}: the {part} part has {len(ids)} characters; --seq-len "
            f"{seq_len} needs at least {seq_len + 1} (use a longer text, a larger "
            f"fraction or a smaller --seq-len)"
        )
    return char_lm_windows(ids, seq_len)


def prepare(text: Text, s: Settings, name: str) -> Prepared:
    tr, va, te = chronological_split(len(text.text), val=s.val, test=s.test)
    vocab = Vocab.build(text.text[tr])
    ids = vocab.encode(text.text)  # (L,)
    X, Y = _windows(ids[tr], s.seq_len, name, "training")
    val = _windows(ids[va], s.seq_len, name, "validation") if s.val > 0 else None
    held_part, held = ("test", te) if s.test > 0 else ("val", va)
    if held.stop == held.start:
        raise DataError(f"{name}: nothing held out to test on; use --test or --val above 0")
    Xh, Yh = _windows(ids[held], s.seq_len, name, held_part)
    counts = np.bincount(ids[tr], minlength=vocab.size)
    meta = {
        "task": "charlm",
        "dataset": name,
        "vocab": vocab.to_dict(),
        "seq_len": s.seq_len,
        "unigram_counts": counts.tolist(),
    }
    return Prepared(
        "charlm",
        name,
        X,
        Y,
        val,
        "cross_entropy",
        "accuracy",
        vocab.size,
        meta,
        held_out={
            "X": Xh,
            "y": Yh,
            "ids": ids[held],
            "part": held_part,
            "train_ids": ids[tr],
            "n_chars": len(text.text),
        },
        vocab_size=vocab.size,
    )


def bits_per_char(model: rk.Sequential, X: np.ndarray, Y: np.ndarray, batch: int = 256) -> float:
    """Mean cross-entropy of the next character, in bits, batch by batch (memory)."""
    total, n = 0.0, 0
    for i in range(0, len(X), batch):
        logits = np.asarray(model.predict(X[i : i + batch]), np.float64)  # (B, S, V)
        z = logits - logits.max(axis=-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        total -= float(np.take_along_axis(logp, Y[i : i + batch, :, None], axis=-1).sum())
        n += Y[i : i + batch].size
    return total / n / math.log(2)


def in_bits(epochs: list[dict[str, float]]) -> list[dict[str, float]]:
    """Per-epoch records with the cross-entropy losses (nats) in bits per character."""
    return [{k: v / math.log(2) if k in ("loss", "val_loss") else v for k, v in e.items()}
            for e in epochs]


def _unigram(meta: dict[str, Any], ids: np.ndarray) -> float:
    """Bits per char of add-one-smoothed training character frequencies on ``ids``."""
    counts = np.asarray(meta["unigram_counts"], np.float64)
    p = (counts + 1.0) / (counts.sum() + len(counts))
    return float(-np.mean(np.log2(p[ids])))


def _results(table: dict, what: str, n: int) -> dict[str, Any]:
    return {
        "task": "charlm",
        "what": what,
        "n": n,
        "columns": ["bits_per_char"],
        "scores": table,
        "rows": [[k, v["bits_per_char"]] for k, v in table.items()],
    }


def report(model: rk.Sequential, p: Prepared) -> dict[str, Any]:
    h = p.held_out
    table = {
        describe(model): {"bits_per_char": bits_per_char(model, h["X"], h["y"])},
        "unigram": {"bits_per_char": unigram_bits_per_char(h["train_ids"], h["ids"], p.vocab_size)},
    }
    what = (
        f"{p.name}: next-character prediction on the {h['part']} part, "
        f"{len(h['ids'])} of {h['n_chars']} characters (lower is better)"
    )
    return _results(table, what, len(h["ids"]))


def evaluate(model: rk.Sequential, meta: dict[str, Any], text: Text) -> dict[str, Any]:
    vocab = Vocab.from_dict(meta["vocab"])
    ids = vocab.encode(text.text)
    X, Y = _windows(ids, meta["seq_len"], text.name, "given")
    table = {
        describe(model): {"bits_per_char": bits_per_char(model, X, Y)},
        "unigram": {"bits_per_char": _unigram(meta, ids)},
    }
    return _results(table, f"{text.name}: all {len(ids)} characters", len(ids))


def sample(
    model: rk.Sequential, vocab: Vocab, prime: str, length: int, temperature: float, seed: int
) -> str:
    """``length`` characters drawn one at a time after ``prime``, the state carried by
    ``model.stream()``; temperature 0 takes the likeliest character, never ``<unk>``."""
    rng = np.random.default_rng(seed)
    stream = model.stream()
    ids = vocab.encode(prime) if prime else np.array([_start_id(vocab)])
    logits = None
    for i in ids:
        logits = stream.step(int(i))
    out = []
    for _ in range(length):
        z = np.asarray(logits, np.float64).copy()
        z[0] = -np.inf if len(z) > 1 else z[0]  # <unk> is not a character to print
        if temperature == 0:
            nxt = int(np.argmax(z))
        else:
            p = softmax(np.where(np.isfinite(z), z / temperature, -1e30))
            nxt = int(rng.choice(len(p), p=p / p.sum()))
        out.append(nxt)
        logits = stream.step(nxt)
    return vocab.decode(np.array(out, dtype=np.int64))


def _start_id(vocab: Vocab) -> int:
    return vocab.index.get("\n", vocab.index.get(" ", 1 if vocab.size > 1 else 0))


def plots(model: rk.Sequential, p: Prepared, results: dict[str, Any], out: Any) -> list[str]:
    """No picture for text: ``sample.txt`` holds what the model writes."""
    from .common import write_text

    vocab = Vocab.from_dict(p.meta["vocab"])
    # prime with the start of the held-out text: the model continues text it never saw
    prime = vocab.decode(p.held_out["ids"][:SAMPLE_PRIME])
    text = sample(model, vocab, prime, 600, 0.6, 0)
    write_text(out / "sample.txt", f"{prime}{text}\n")
    results["sample"] = {"prime": prime, "text": text}
    return ["sample.txt"]
