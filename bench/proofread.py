"""Proofreading benchmark: a 10,000-character post against a 50,000-entry lexicon.

    .venv/bin/python bench/proofread.py

The lexicon is the presets' real entries (national-2019 + guizhou-2013) plus synthetic entries
(two to four characters drawn from the 3,500 most common characters' range, a third of them
with an exception) up to 50,000, a leaders registry of 60 names and the 115 names of Guizhou's
org table. The post is 10,000 characters of the same alphabet with real misstatements, typos,
absolute terms, leaders and org near-misses sprinkled in. It prints the time to compile the
lexicon (once per change of the lexicon, then cached), the time of one check (median and worst
of 50 runs, wall clock and the process's CPU time; target under 20 ms of CPU, as wall time on a
shared machine counts other processes' turns too; the load average is printed) and, measured in
the same run, a naive baseline: every term looked for with ``str.find`` and its exceptions
checked the same way.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.proofread.presets import preset_entries  # noqa: E402
from hub.proofread.rules import Category, Entry, Leader, Severity, compile_lexicon  # noqa: E402

ENTRIES = 50_000
TEXT_LENGTH = 10_000
RUNS = 50
TARGET_MS = 20.0


def alphabet() -> list[str]:
    # the block of CJK unified ideographs most common characters fall in
    return [chr(c) for c in range(0x4E00, 0x4E00 + 3500)]


def synthetic(rng: random.Random, chars: list[str], count: int) -> list[Entry]:
    out: dict[str, Entry] = {}
    while len(out) < count:
        term = "".join(rng.choice(chars) for _ in range(rng.choice((2, 3, 3, 4))))
        exceptions = (term + rng.choice(chars),) if rng.random() < 0.33 else ()
        out[term] = Entry(Category.wording, term, "", "synthetic", Severity.warn, exceptions)
    return list(out.values())


def org_names() -> list[str]:
    names = []
    for line in (ROOT / "hub/data/guizhou-divisions.csv").read_text("utf-8").splitlines()[1:]:
        names.append(line.split(",")[1])
    for line in (ROOT / "hub/data/guizhou-departments.csv").read_text("utf-8").splitlines()[1:]:
        names.append(line.split(",")[1])
    return names


def post(rng: random.Random, chars: list[str]) -> str:
    pieces = [
        "台湾政府",
        "农业部",
        "农业部门",
        "按装",
        "既使用",
        "全省第一",
        "最佳",
        "省长贾明元",
        "副省长甄立新",
        "贵州省人民政府新闻办",
        "黔东南自治州",
        "截止目前",
        "。",
    ]
    text: list[str] = []
    while sum(len(t) for t in text) < TEXT_LENGTH:
        text.append("".join(rng.choice(chars) for _ in range(rng.randint(20, 60))))
        text.append(rng.choice(pieces))
    return "".join(text)[:TEXT_LENGTH]


def naive(entries: list[Entry], text: str) -> int:
    hits = 0
    for entry in entries:
        at = text.find(entry.term)
        while at >= 0:
            excepted = False
            for exception in entry.exceptions:
                offset = exception.find(entry.term)
                if at >= offset and text.startswith(exception, at - offset):
                    excepted = True
            hits += not excepted
            at = text.find(entry.term, at + 1)
    return hits


def main() -> None:
    rng = random.Random(17)
    chars = alphabet()
    real = list(preset_entries(("national-2019", "guizhou-2013")))
    entries = real + synthetic(rng, chars, ENTRIES - len(real))
    leaders = [Leader("甄立新", "省委书记", 1, "贵州省"), Leader("贾明远", "省长", 2, "贵州省")]
    leaders += [
        Leader("".join(rng.choice(chars) for _ in range(3)), "副省长", 10 + i, "贵州省")
        for i in range(58)
    ]
    orgs = org_names()
    text = post(rng, chars)

    started = time.perf_counter()
    lexicon = compile_lexicon(entries, leaders, orgs)
    compile_s = time.perf_counter() - started

    lexicon.check(text)  # warm up
    times, cpu = [], []
    for _ in range(RUNS):
        started, started_cpu = time.perf_counter(), time.process_time()
        hits = lexicon.check(text)
        cpu.append((time.process_time() - started_cpu) * 1000)
        times.append((time.perf_counter() - started) * 1000)
    median, median_cpu = statistics.median(times), statistics.median(cpu)
    worst, worst_cpu = max(times), max(cpu)

    naive_cpu = []
    for _ in range(3):
        started_cpu = time.process_time()
        naive(entries, text)
        naive_cpu.append((time.process_time() - started_cpu) * 1000)
    baseline = statistics.median(naive_cpu)

    by_category: dict[str, int] = {}
    for hit in hits:
        by_category[hit.category.value] = by_category.get(hit.category.value, 0) + 1
    print(
        f"lexicon: {len(entries):,} entries ({len(real)} from the presets), "
        f"{len(leaders)} leaders, {len(orgs)} org names; post: {len(text):,} characters"
    )
    print(f"compile (once, cached): {compile_s * 1000:.0f} ms")
    print(
        f"check: CPU median {median_cpu:.1f} ms, worst {worst_cpu:.1f} ms; wall median "
        f"{median:.1f} ms, worst {worst:.1f} ms over {RUNS} runs (load average "
        f"{os.getloadavg()[0]:.1f}); {len(hits)} hits {dict(sorted(by_category.items()))}"
    )
    print(
        f"naive baseline (str.find per term): CPU {baseline:.0f} ms  ->  "
        f"{baseline / median_cpu:.0f}x"
    )
    if median_cpu > TARGET_MS:
        print(f"FAIL: median {median_cpu:.1f} ms is over the {TARGET_MS:.0f} ms target")
        sys.exit(1)
    print(f"OK: under the {TARGET_MS:.0f} ms target")


if __name__ == "__main__":
    main()
