"""Structure-aware fuzzing of safetensors model folders through open, fingerprint, serialize,
add and compare.

    python scripts/fuzz_safetensors.py [--cases 10000] [--seed 0] [--dir fuzz-out] [--json]
        [--doc docs/hardening.md]

Seeds are real model folders written by the safetensors library (a single-file model, a sharded
one with its index, a config and a card). Each case copies one seed and applies 1 to 3
mutations chosen from `MUTATIONS`: edits of the header JSON (dtypes, shapes, offsets, names,
metadata, duplicate keys, non-finite numbers, deep nesting), of the raw bytes (length prefix,
truncation, trailing bytes, flipped bytes, header or data), and of the sidecar files (config,
shard index, card). Then, in one process, the case goes through:

- open: `hub.local.open_local_model`;
- fingerprint: `fingerprint.signature.compute_signature` (CPU);
- serialize: `Signature.to_bytes` and back (`from_bytes` must give the same signature);
- add: `lineage.pipeline.add_local` + `fingerprint_models` on a copy of a store that holds the
  seeds, as `lineage add` does; a rejected add must leave the store file byte-identical, and no
  model may be stored `ok` without a signature;
- compare: `lineage.pipeline.compare_refs` of a stored seed and the folder.

An outcome is fine when each step returns or raises one of the errors meant for users
(`HubError`, `FingerprintError`, `LineageError`) with a one-line message. Anything else is a
crash; a case over `--hang` seconds (SIGALRM) a hang; a case that raises the process's peak RSS by
more than `--blowup-mb` a memory blowup. Counts are printed (and written into the
`--doc` file between its `fuzz` markers); the exit status is 1 when any is not zero.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fingerprint.errors import FingerprintError  # noqa: E402
from fingerprint.signature import Signature, compute_signature  # noqa: E402
from hub.errors import HubError  # noqa: E402
from hub.local import open_local_model  # noqa: E402
from lineage.errors import LineageError  # noqa: E402
from lineage.pipeline import add_local, compare_refs, fingerprint_models  # noqa: E402
from lineage.store import Store  # noqa: E402

USER_ERRORS = (HubError, FingerprintError, LineageError)
STEPS = ("open", "fingerprint", "serialize", "add", "compare")


# ---- seeds ----------------------------------------------------------------------------------


def _tensors(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    hidden, inter, vocab = 64, 128, 256
    t = {"model.embed_tokens.weight": rng.standard_normal((vocab, hidden), dtype=np.float32)}
    for i in range(2):
        p = f"model.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            t[p + f"self_attn.{name}.weight"] = rng.standard_normal((hidden, hidden)).astype(
                np.float16
            )
        t[p + "mlp.up_proj.weight"] = rng.standard_normal((inter, hidden), dtype=np.float32)
        t[p + "mlp.down_proj.weight"] = rng.standard_normal((hidden, inter), dtype=np.float32)
        t[p + "input_layernorm.weight"] = np.ones(hidden, dtype=np.float32)
    t["lm_head.weight"] = rng.standard_normal((vocab, hidden), dtype=np.float32)
    return t


def write_seeds(root: Path) -> list[Path]:
    """Real folders written by the safetensors library: single-file and sharded."""
    from safetensors.numpy import save_file

    seeds = []
    shutil.rmtree(root / "seeds", ignore_errors=True)
    for i, shards in enumerate((1, 2)):
        folder = root / "seeds" / f"seed-{i}"
        folder.mkdir(parents=True)
        t = _tensors(i)
        names = sorted(t)
        if shards == 1:
            save_file(t, str(folder / "model.safetensors"), metadata={"format": "pt"})
        else:
            wm = {}
            for s in range(shards):
                fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
                save_file({n: t[n] for n in names[s::shards]}, str(folder / fname))
                wm.update({n: fname for n in names[s::shards]})
            (folder / "model.safetensors.index.json").write_text(
                json.dumps({"metadata": {}, "weight_map": wm})
            )
        (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
        (folder / "README.md").write_text("---\nlicense: mit\nbase_model: org/base\n---\n# m\n")
        seeds.append(folder)
    return seeds


# ---- mutations ------------------------------------------------------------------------------


def _split(raw: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _join(header: dict | bytes, data: bytes) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


def _tensor_names(header: dict) -> list[str]:
    return [k for k in header if k != "__metadata__"]


def _odd_int(rng: random.Random) -> object:
    return rng.choice(
        [-1, 0, 1, 2**31, 2**32 + 1, 2**63, 2**64, 2**64 + 5, 10**30, 1.5, "7", True, None, []]
    )


def _odd_name(rng: random.Random) -> str:
    return rng.choice(
        [
            "w" * rng.choice([300, 1025, 70_000]),
            "a.\ud800.b",
            "",
            "__metadata__x",
            "model.layers.0.self_attn.q_proj.weight\x00",
            "../../escape",
            "ééé.weight",
            "x" * 65_536,
        ]
    )


def _deep(depth: int) -> object:
    doc: object = 1
    for _ in range(depth):
        doc = [doc]
    return doc


def m_shape(h: dict, rng: random.Random) -> dict:
    name = rng.choice(_tensor_names(h))
    shape = list(h[name]["shape"])
    op = rng.randrange(6)
    if op == 0 and shape:
        shape[rng.randrange(len(shape))] = _odd_int(rng)
    elif op == 1:
        shape = [1] * rng.choice([65, 255, 256, 300]) + shape
    elif op == 2:
        shape = shape[::-1]
    elif op == 3:
        shape = [*shape, rng.choice([0, 1, 2])]
    elif op == 4:
        shape = rng.choice([None, "64,64", {}, [[64]], []])
    else:
        shape = [2**40, 0, 2**40]
    h[name]["shape"] = shape
    return h


def m_offsets(h: dict, rng: random.Random) -> dict:
    name = rng.choice(_tensor_names(h))
    a, b = h[name]["data_offsets"]
    h[name]["data_offsets"] = rng.choice(
        [[b, a], [a + 1, b + 1], [a, b + 8], [0, b - a], [a, 2**64], [-1, b], [a], [a, b, b],
         [float(a), b], [a + 4, b], "0-4", [a, a]]
    )  # fmt: skip
    return h


def m_dtype(h: dict, rng: random.Random) -> dict:
    name = rng.choice(_tensor_names(h))
    h[name]["dtype"] = rng.choice(
        ["F32", "F16", "BF16", "I8", "U8", "F64", "I64", "BOOL", "F8_E4M3", "F4", "Q4_K", "f32",
         "", None, 3, ["F32"]]
    )  # fmt: skip
    return h


def m_name(h: dict, rng: random.Random) -> dict:
    name = rng.choice(_tensor_names(h))
    h[_odd_name(rng)] = h.pop(name)
    return h


def m_entry(h: dict, rng: random.Random) -> dict:
    name = rng.choice(_tensor_names(h))
    op = rng.randrange(5)
    if op == 0:
        del h[name]
    elif op == 1:
        del h[name][rng.choice(["dtype", "shape", "data_offsets"])]
    elif op == 2:
        h[name] = rng.choice([None, 1, "x", [], _deep(rng.choice([10, 100, 500]))])
    elif op == 3:
        h[name]["extra"] = _deep(rng.choice([3, 50, 500]))
    else:
        h[name + ".copy"] = dict(h[name])  # two tensors over the same bytes
    return h


def m_metadata(h: dict, rng: random.Random) -> dict:
    h["__metadata__"] = rng.choice(
        [{"format": 1}, {"a": None}, "pt", [], {"x": "y" * 100_000}, {"\ud800": "v"},
         _deep(rng.choice([5, 500]))]
    )  # fmt: skip
    return h


HeaderEdit = Callable[[dict, random.Random], dict]
HEADER_EDITS: dict[str, HeaderEdit] = {
    "shape": m_shape,
    "offsets": m_offsets,
    "dtype": m_dtype,
    "name": m_name,
    "entry": m_entry,
    "metadata": m_metadata,
}


def _text_edit(raw: bytes, rng: random.Random) -> bytes:
    """Edits only raw JSON text can make: duplicate keys, NaN, deep nesting, bad UTF-8."""
    header, data = _split(raw)
    text = json.dumps(header)
    name = rng.choice(_tensor_names(header))
    entry = json.dumps(header[name])
    op = rng.randrange(6)
    if op == 0:  # the same key twice, the second one pointing elsewhere
        text = text[:-1] + f", {json.dumps(name)}: {entry}" + "}"
    elif op == 1:
        text = text.replace("[", "[NaN, ", 1)
    elif op == 2:
        text = text.replace(entry, entry.replace("]", ", Infinity]", 1), 1)
    elif op == 3:
        d = rng.choice([100, 1000, 100_000])
        text = text[:-1] + ', "deep": ' + "[" * d + "]" * d + "}"
    elif op == 4:
        return _join(text.encode()[:-5] + b"\xff\xfe" + text.encode()[-5:], data)
    else:
        text = text.replace(":", ": " + "1" * 5000 + " ,", 1)  # a 5000-digit number
    return _join(text.encode(), data)


def _byte_edit(raw: bytes, rng: random.Random) -> bytes:
    n = min(int.from_bytes(raw[:8], "little"), max(0, len(raw) - 8))
    op = rng.randrange(7)
    if op == 0:  # another header length
        m = rng.choice([0, 1, n - 1, n + 1, n + 8, len(raw), 2**27, 2**63, 2**64 - 1])
        return m.to_bytes(8, "little") + raw[8:]
    if op == 1:
        return raw[: rng.randrange(0, len(raw))]
    if op == 2:
        return raw + bytes(rng.choice([1, 8, 4096]))
    if op == 3:  # flip bytes in the header
        b = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(8, 8 + n)] ^= 1 << rng.randrange(8)
        return bytes(b)
    if op == 4:  # flip bytes in the data (a valid file with other values: NaN, inf...)
        b = bytearray(raw)
        for _ in range(rng.randint(1, 64)):
            if len(b) > 8 + n:
                b[rng.randrange(8 + n, len(b))] = rng.choice([0x00, 0x7F, 0x80, 0xFF])
        return bytes(b)
    if op == 5:  # data all NaN
        return raw[: 8 + n] + b"\xff" * (len(raw) - 8 - n)
    return raw[:8] + raw[8 : 8 + n].replace(b" ", b"\t") + raw[8 + n :]


def _sidecar_edit(folder: Path, rng: random.Random) -> None:
    target = rng.choice(["config.json", "README.md", "index"])
    if target == "index":
        index = next(folder.glob("*.index.json"), None)
        try:
            doc = json.loads(index.read_text()) if index is not None else None
        except (ValueError, RecursionError):
            doc = None  # an earlier mutation broke it already
        if (
            index is None
            or not isinstance(doc, dict)
            or not isinstance(doc.get("weight_map"), dict)
        ):
            target = "config.json"
        else:
            wm = doc["weight_map"]
            key = rng.choice(sorted(wm))
            op = rng.randrange(5)
            if op == 0:
                wm[key] = rng.choice(["../outside.safetensors", "/etc/passwd", "nope.safetensors"])
            elif op == 1:
                doc["weight_map"] = _deep(rng.choice([50, 500]))
            elif op == 2:
                wm[_odd_name(rng)] = wm.pop(key)
            elif op == 3:
                index.write_text("[" * 100_000)
                return
            else:
                del wm[key]
            index.write_text(json.dumps(doc))
            return
    if target == "config.json":
        text = rng.choice(["[" * 100_000, "{", '{"a": NaN}', json.dumps(_deep(600)), "\ud800"])
        (folder / "config.json").write_bytes(text.encode("utf-8", "surrogatepass"))
        return
    (folder / "README.md").write_text(
        rng.choice(
            [
                "---\n" + "\n".join(f"- {i}" for i in range(200_000)) + "\n---\n",
                "---\nbase_model: " + "[" * 10_000 + "\n---\n",
                "---\nbase_model: &a [*a]\n---\n",
                '---\nbase_model: "\\ud800"\nlicense: "\\ud800"\n---\n',
                "---\nmodel_id: ../../x\n---\n",
            ]
        )
    )


@dataclass(frozen=True, slots=True)
class Mutation:
    kind: str
    apply: Callable[[Path, random.Random], None]


def _on_weights(edit: Callable[[bytes, random.Random], bytes]) -> Callable:
    def apply(folder: Path, rng: random.Random) -> None:
        path = rng.choice(sorted(folder.glob("*.safetensors")))
        raw = path.read_bytes()
        try:
            raw = edit(raw, rng)
        except Exception:  # an earlier mutation left what this edit cannot edit
            return
        path.write_bytes(raw)

    return apply


def _header_edit(edit: HeaderEdit) -> Callable[[bytes, random.Random], bytes]:
    def apply(raw: bytes, rng: random.Random) -> bytes:
        try:
            header, data = _split(raw)
        except (ValueError, UnicodeDecodeError, RecursionError, MemoryError):
            return raw  # an earlier mutation broke the JSON already
        if not _tensor_names(header) or not all(
            isinstance(header[k], dict) and "shape" in header[k] and "data_offsets" in header[k]
            for k in _tensor_names(header)
        ):
            return raw
        try:
            return _join(edit(header, rng), data)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
            return raw  # an earlier mutation left a shape this edit does not handle

    return apply


def _safe(edit: Callable[[bytes, random.Random], bytes]) -> Callable[[bytes, random.Random], bytes]:
    def apply(raw: bytes, rng: random.Random) -> bytes:
        try:
            return edit(raw, rng)
        except (ValueError, UnicodeDecodeError, KeyError, IndexError, RecursionError):
            return raw

    return apply


MUTATIONS: tuple[Mutation, ...] = (
    *(Mutation(f"header.{k}", _on_weights(_header_edit(e))) for k, e in HEADER_EDITS.items()),
    Mutation("text", _on_weights(_safe(_text_edit))),
    Mutation("bytes", _on_weights(_safe(_byte_edit))),
    Mutation("sidecar", _sidecar_edit),
)


# ---- one case -------------------------------------------------------------------------------


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang()


@dataclass
class Counts:
    cases: int = 0
    crashes: int = 0
    hangs: int = 0
    blowups: int = 0
    store_changed: int = 0
    ok_without_signature: int = 0
    roundtrip_mismatch: int = 0
    lenient: int = 0  # files we opened that the safetensors library refuses
    outcomes: Counter = field(default_factory=Counter)  # step results, e.g. "open:malformed"
    mutations: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)  # (case, step, error) of the crashes

    def as_dict(self) -> dict:
        return {
            "cases": self.cases,
            "crashes": self.crashes,
            "hangs": self.hangs,
            "memory_blowups": self.blowups,
            "store_changed_after_rejected_add": self.store_changed,
            "ok_without_signature": self.ok_without_signature,
            "roundtrip_mismatch": self.roundtrip_mismatch,
            "accepted_but_library_refuses": self.lenient,
            "outcomes": dict(sorted(self.outcomes.items())),
            "mutations": dict(sorted(self.mutations.items())),
            "failures": self.failures[:20],
        }


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checked(step: str, fn: Callable, counts: Counts, case: int) -> object:
    """Run one step: its value, or None after a user error (counted) or a crash (counted)."""
    try:
        return fn()
    except USER_ERRORS as err:
        msg = str(err)
        if "\n" in msg or not msg:
            counts.crashes += 1
            counts.failures.append((case, step, f"not one line: {msg[:200]!r}"))
        counts.outcomes[f"{step}:{getattr(err, 'status', type(err).__name__)}"] += 1
        return None
    except Hang:
        raise
    except Exception as err:  # a crash: what the harness is for
        counts.crashes += 1
        tb = traceback.format_exc().strip().splitlines()[-3:]
        counts.failures.append((case, step, f"{type(err).__name__}: {str(err)[:200]}", tb))
        return None


def _library_opens(path: Path) -> bool:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "np") as f:
            for name in f.keys():  # noqa: SIM118 (a safe_open handle, not a dict)
                f.get_slice(name)
    except Exception:
        return False
    return True


def run_case(case: int, folder: Path, base_db: Path, work: Path, counts: Counts) -> None:
    mid = f"fuzz/case-{case}"
    model = _checked("open", lambda: open_local_model(folder, model_id=mid), counts, case)
    sig = None
    if model is not None:
        counts.outcomes["open:ok"] += 1
        if not all(_library_opens(folder / rel) for rel in model.headers):
            counts.lenient += 1
            counts.failures.append((case, "open", "accepted a file the library refuses"))
        sig = _checked("fingerprint", lambda: compute_signature(model, device="cpu"), counts, case)
    if sig is not None:
        counts.outcomes["fingerprint:ok"] += 1
        blob = _checked("serialize", sig.to_bytes, counts, case)
        if blob is not None:
            back = Signature.from_bytes(blob)
            if back != sig or back.to_bytes() != blob:
                counts.roundtrip_mismatch += 1
                counts.failures.append((case, "serialize", "round trip differs"))
    db = work / "case.sqlite"
    shutil.copyfile(base_db, db)
    before = _sha(db)

    def add() -> tuple:
        with Store(db) as store:
            added = add_local(store, [folder], model_id=mid)
            ids = [*added.new, *added.changed]
            fp = fingerprint_models(store, ids, device="cpu") if ids else None
            rows = [(r.status, store.get_signature(r.id) is not None) for r in store.models()]
            return added, fp, rows

    result = _checked("add", add, counts, case)
    if result is not None:
        added, fp, rows = result
        counts.ok_without_signature += sum(1 for status, has in rows if status == "ok" and not has)
        if added.failed:
            counts.outcomes[f"add:{added.failed[0].status}"] += 1
            if _sha(db) != before:
                counts.store_changed += 1
                counts.failures.append((case, "add", "store changed by a rejected add"))
        elif fp is not None and fp.failed:
            counts.outcomes[f"add:fingerprint-{fp.failed[0].status}"] += 1
        else:
            counts.outcomes["add:ok"] += 1
    with Store(base_db) as store:
        pair = _checked(
            "compare", lambda: compare_refs(store, "seed/seed-0", str(folder), device="cpu"),
            counts, case,
        )  # fmt: skip
    if pair is not None:
        counts.outcomes["compare:ok"] += 1


def fuzz(
    cases: int, seed: int, root: Path, *, hang_s: float, blowup_mb: float, progress: bool = False
) -> Counts:
    seeds = write_seeds(root)
    base_db = root / "base.sqlite"
    base_db.unlink(missing_ok=True)
    with Store(base_db) as store:
        for i, folder in enumerate(seeds):
            add_local(store, [folder], model_id=f"seed/seed-{i}")
        fingerprint_models(store, device="cpu")
    with Store(base_db):
        pass  # opened and closed once: the bytes a read-only visit leaves
    rng = random.Random(seed)
    counts = Counts()
    signal.signal(signal.SIGALRM, _alarm)
    for case in range(cases):
        work = root / "case"
        shutil.rmtree(work, ignore_errors=True)
        folder = work / "model"
        shutil.copytree(rng.choice(seeds), folder)
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            mutation = rng.choice(MUTATIONS)
            counts.mutations[mutation.kind] += 1
            mutation.apply(folder, rng)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        signal.setitimer(signal.ITIMER_REAL, hang_s)
        try:
            run_case(case, folder, base_db, work, counts)
        except Hang:
            counts.hangs += 1
            counts.failures.append((case, "hang", f"over {hang_s} s"))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - peak > blowup_mb:
            counts.blowups += 1
            counts.failures.append((case, "memory", f"peak RSS up over {blowup_mb} MB"))
        counts.cases += 1
        if progress and counts.cases % 500 == 0:
            print(f"{counts.cases} cases, {counts.crashes} crashes", file=sys.stderr, flush=True)
    return counts


# ---- report ---------------------------------------------------------------------------------

MARK_BEGIN, MARK_END = "<!-- fuzz:begin -->", "<!-- fuzz:end -->"


def table(counts: Counts, seed: int, seconds: float) -> str:
    d = counts.as_dict()
    rows = [
        ("cases", d["cases"]),
        ("crashes (an error other than HubError / FingerprintError / LineageError)", d["crashes"]),
        ("hangs (a case over the time limit)", d["hangs"]),
        ("memory blowups", d["memory_blowups"]),
        ("store changed by a rejected add", d["store_changed_after_rejected_add"]),
        ("models stored ok without a signature", d["ok_without_signature"]),
        ("signature round trips that differ", d["roundtrip_mismatch"]),
        ("files opened that the safetensors library refuses", d["accepted_but_library_refuses"]),
    ]
    lines = [
        f"Seed {seed}, {counts.cases} cases in {seconds:.0f} s "
        f"(`python scripts/fuzz_safetensors.py --cases {counts.cases} --seed {seed}`).",
        "",
        "| what | count |",
        "|---|---:|",
        *(f"| {k} | {v} |" for k, v in rows),
        "",
        "Step outcomes (a case reaches a step only when the one before it succeeded, except add "
        "and compare, which every case runs):",
        "",
        "| step:outcome | cases |",
        "|---|---:|",
        *(f"| {k} | {v} |" for k, v in d["outcomes"].items()),
    ]
    return "\n".join(lines)


def write_doc(doc: Path, text: str) -> None:
    old = doc.read_text() if doc.exists() else ""
    if MARK_BEGIN in old and MARK_END in old:
        head, rest = old.split(MARK_BEGIN, 1)
        _, tail = rest.split(MARK_END, 1)
        doc.write_text(f"{head}{MARK_BEGIN}\n{text}\n{MARK_END}{tail}")
    else:
        doc.write_text(f"{old}\n{MARK_BEGIN}\n{text}\n{MARK_END}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp one)")
    ap.add_argument("--hang", type=float, default=10.0, help="seconds before a case is a hang")
    ap.add_argument("--blowup-mb", type=float, default=1024.0)
    ap.add_argument("--json", action="store_true", help="print the counts as JSON")
    ap.add_argument("--progress", action="store_true", help="a line on stderr per 500 cases")
    ap.add_argument("--doc", type=Path, default=None, help="write the table into this file")
    args = ap.parse_args(argv)
    with contextlib.ExitStack() as stack:
        root = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        root.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        counts = fuzz(
            args.cases, args.seed, root, hang_s=args.hang, blowup_mb=args.blowup_mb,
            progress=args.progress,
        )  # fmt: skip
        seconds = time.monotonic() - started
    if args.json:
        print(json.dumps({**counts.as_dict(), "seconds": round(seconds, 1)}, default=str))
    else:
        print(table(counts, args.seed, seconds))
        for failure in counts.failures[:20]:
            print("failure:", failure)
    if args.doc is not None:
        write_doc(args.doc, table(counts, args.seed, seconds))
    bad = (
        counts.crashes + counts.hangs + counts.blowups + counts.store_changed
        + counts.ok_without_signature + counts.roundtrip_mismatch + counts.lenient
    )  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
