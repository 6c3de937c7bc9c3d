"""Micro-measure: routing-key matching, tclisten's TopicMatcher vs one regex per binding.

Not a test (no timing is asserted anywhere); run it by hand:

    python bench/bench_matching.py [--keys 20000] [--rounds 5]

Prints nanoseconds per routing key for 1, 10 and 100 bindings and the ratio
regex / matcher measured in the same round (absolute figures drift on shared machines;
the ratios are what to compare).  Keys are realistic Taskcluster keys: 10-word primary keys
with a unique taskId each, and ``route.*`` CC keys (1.6 keys per message on average).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tclisten.matching import TopicMatcher  # noqa: E402

SLUG = string.ascii_letters + string.digits + "-_"


def slug(rng: random.Random) -> str:
    return "".join(rng.choice(SLUG) for _ in range(22))


def regex_for(pattern: str) -> re.Pattern:
    """One compiled regex per binding, matched against '.' + key (so '' has no words)."""
    parts = []
    for word in (pattern.split(".") if pattern else []):
        if word == "*":
            parts.append(r"\.[^.]*")
        elif word == "#":
            parts.append(r"(?:\.[^.]*)*")
        else:
            parts.append(r"\." + re.escape(word))
    return re.compile("".join(parts))


class RegexMatcher:
    def __init__(self) -> None:
        self.compiled: list[tuple[re.Pattern, object]] = []

    def add(self, pattern: str, value: object) -> None:
        self.compiled.append((regex_for(pattern), value))

    def match(self, key: str) -> list:
        dotted = "." + key if key else ""
        found = []
        for rx, value in self.compiled:
            if rx.fullmatch(dotted) and value not in found:
                found.append(value)
        return found


def make_patterns(n: int, rng: random.Random, groups: list[str], provs: list[str]) -> list[str]:
    shapes = [
        lambda: f"primary.*.*.*.*.*.*.*.{rng.choice(groups)}.#",
        lambda: f"primary.*.*.*.*.{rng.choice(provs)}.wt-{rng.randrange(20)}.*.*.#",
        lambda: f"route.index.project.p{rng.randrange(50)}.#",
        lambda: f"route.notify.email.u{rng.randrange(50)}@example.com.*",
        lambda: f"primary.{slug(rng)}.#",
        lambda: "primary.#",
        lambda: f"route.checks.#",
    ]
    return [rng.choice(shapes)() for _ in range(n)]


def make_keys(count: int, rng: random.Random, groups: list[str], provs: list[str]) -> list[str]:
    keys = []
    while len(keys) < count:
        keys.append(".".join(["primary", slug(rng), str(rng.randrange(3)), "wg", "wi-" + slug(rng)[:8],
                              rng.choice(provs), f"wt-{rng.randrange(20)}", "sched",
                              rng.choice(groups), "_"]))
        if rng.random() < 0.6:
            keys.append(f"route.index.project.p{rng.randrange(60)}.build.{slug(rng)}")
    return keys[:count]


def measure(matcher, keys: list[str]) -> float:
    match = matcher.match
    start = time.perf_counter_ns()
    for key in keys:
        match(key)
    return (time.perf_counter_ns() - start) / len(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(42)
    groups = [slug(rng) for _ in range(30)]
    provs = [f"prov-{i}" for i in range(5)]
    keys = make_keys(args.keys, rng, groups, provs)
    print(f"{len(keys)} keys, median of {args.rounds} rounds, ns per key")
    print(f"{'bindings':>8} {'trie ns':>10} {'regex ns':>10} {'regex/trie':>10}")
    for n in (1, 10, 100):
        patterns = make_patterns(n, rng, groups, provs)
        trie, regex = TopicMatcher(), RegexMatcher()
        for i, p in enumerate(patterns):
            trie.add(p, i)
            regex.add(p, i)
        for key in keys[:2000]:  # same answers, and the trie's lazy states warmed up
            if list(trie.match(key)) != regex.match(key):
                raise SystemExit(f"disagreement on {key!r}")
        fresh = make_keys(args.keys, rng, groups, provs)  # unseen taskIds
        trie_ns, regex_ns, ratios = [], [], []
        for _ in range(args.rounds):
            t = measure(trie, fresh)
            r = measure(regex, fresh)
            trie_ns.append(t)
            regex_ns.append(r)
            ratios.append(r / t)
        print(f"{n:>8} {statistics.median(trie_ns):>10.0f} {statistics.median(regex_ns):>10.0f} "
              f"{statistics.median(ratios):>10.1f}")


if __name__ == "__main__":
    main()
