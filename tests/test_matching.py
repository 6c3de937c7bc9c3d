"""TopicMatcher against a plain recursive reference of AMQP topic matching."""

from __future__ import annotations

import pickle
import re
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tclisten import matching
from tclisten.exceptions import BindingError
from tclisten.matching import ExchangeMatcher, TopicMatcher, split_words, topic_matches


def reference_match(pattern: str, key: str) -> bool:
    """Obvious recursive definition: '*' one word, '#' zero or more, '' has no words."""

    def rec(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        if p[0] == "#":
            return rec(p[1:], k) or (bool(k) and rec(p, k[1:]))
        if not k:
            return False
        return (p[0] == "*" or p[0] == k[0]) and rec(p[1:], k[1:])

    return rec(pattern.split(".") if pattern else [], key.split(".") if key else [])


def regex_match(pattern: str, key: str) -> bool:
    """A second, independent reference: each word as '\\.word' in a regex."""
    parts = []
    for word in (pattern.split(".") if pattern else []):
        parts.append({"*": r"\.[^.]*", "#": r"(?:\.[^.]*)*"}.get(word, r"\." + re.escape(word)))
    return re.fullmatch("".join(parts), "." + key if key else "") is not None


KEY_WORDS = st.sampled_from(["", "a", "b", "ab", "*", "#"])
PATTERN_WORDS = st.sampled_from(["", "a", "b", "ab", "*", "#", "#", "*"])


def joined(words):
    return st.lists(words, max_size=6).map(".".join)


KEYS = joined(KEY_WORDS)
PATTERNS = joined(PATTERN_WORDS) | st.sampled_from(["#", "#.#", "#.#.#", "*.#", "#.*", "#.a.#", ""])


# Observed on RabbitMQ 3.10 (tests/test_matching_broker.py re-checks a random sample live).
BROKER_OBSERVED = {
    "": [""],
    "*": ["a", "b", "*", "#"],
    "*.*": [".", "a.", ".a", "a.b", "a.a", "a.*"],
    "#.a": ["a", ".a", "a.a"],
    "#.": [".", "a.", ".."],
    ".*": [".", ".a"],
    "a.#.b": ["a..b", "a.b", "a.b.b", "a.#.b"],
    "*.*.*": ["a..b", "..", "a.b.c", "a.b.b", "x.y.z", "a.#.b"],
    "#.b": ["a..b", "a.b", "b", "a.b.b", "a.#.b"],
}
BROKER_KEYS = ["", ".", "a", "a.", ".a", "a..b", "a.b", "b", "..", "a.b.c", "a.a", "a.b.b",
               "x.y.z", "*", "#", "a.*", "a.#.b"]


def test_references_agree_with_each_other_and_the_broker():
    for pattern, expected in BROKER_OBSERVED.items():
        assert [k for k in BROKER_KEYS if reference_match(pattern, k)] == expected
        assert [k for k in BROKER_KEYS if regex_match(pattern, k)] == expected


@pytest.mark.parametrize("pattern", sorted(BROKER_OBSERVED))
def test_matches_what_the_broker_delivered(pattern):
    m = TopicMatcher()
    m.add(pattern, "v")
    assert [k for k in BROKER_KEYS if m.match(k)] == BROKER_OBSERVED[pattern]


def test_empty_key_has_no_words():
    assert split_words("") == []
    assert split_words("a..") == ["a", "", ""]
    assert topic_matches("#", "")
    assert topic_matches("", "")
    assert topic_matches("#.#", "")
    assert not topic_matches("*", "")
    assert not topic_matches("", ".")


@settings(max_examples=400, deadline=None)
@given(PATTERNS, KEYS)
def test_one_pattern(pattern, key):
    expected = reference_match(pattern, key)
    assert regex_match(pattern, key) == expected
    assert topic_matches(pattern, key) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(PATTERNS, st.integers(0, 5)), max_size=12), st.lists(KEYS, max_size=12))
def test_many_patterns_values_once_in_insertion_order(bindings, keys):
    m = TopicMatcher()
    for pattern, value in bindings:
        m.add(pattern, value)
    order = list(dict.fromkeys(value for _, value in bindings))
    for key in keys + keys:  # twice: the second pass runs on cached states
        hits = {value for pattern, value in bindings if reference_match(pattern, key)}
        assert m.match(key) == tuple(v for v in order if v in hits)
    hits = {value for pattern, value in bindings for key in keys if reference_match(pattern, key)}
    assert m.match_many(keys) == tuple(v for v in order if v in hits)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(PATTERNS, st.integers(0, 3)), min_size=1, max_size=8), st.data())
def test_remove_and_add_between_matches(bindings, data):
    m = TopicMatcher()
    for pattern, value in bindings:
        m.add(pattern, value)
    keys = data.draw(st.lists(KEYS, min_size=1, max_size=6))
    for key in keys:
        m.match(key)
    gone = data.draw(st.sampled_from(bindings))
    assert m.remove(*gone)
    assert not m.remove(*gone)
    left = [b for b in dict.fromkeys(bindings) if b != gone]
    # a value keeps the rank of its first add while any of its bindings is left
    order = list(dict.fromkeys(value for _, value in bindings))
    for key in keys:
        hits = {value for pattern, value in left if reference_match(pattern, key)}
        assert m.match(key) == tuple(v for v in order if v in hits)


def test_add_after_match_is_seen():
    m = TopicMatcher()
    m.add("primary.#", "p")
    assert m.match("primary.t1.0") == ("p",)
    m.add("primary.t1.*", "t1")
    m.add("#", "all")
    assert m.match("primary.t1.0") == ("p", "t1", "all")
    assert m.match("route.x") == ("all",)


def test_same_pair_twice_and_bookkeeping():
    m = TopicMatcher()
    m.add("a.*", "x")
    m.add("a.*", "x")
    m.add("#", "y")
    assert len(m) == 2
    assert m.bindings() == [("a.*", "x"), ("#", "y")] == list(m)
    assert "2 bindings" in repr(m)
    m.clear()
    assert len(m) == 0
    assert m.match("a.b") == ()


def test_unique_words_do_not_grow_the_cache():
    m = TopicMatcher()
    m.add("primary.*.*.*.*.*.*.*.tg.#", 1)
    m.add("primary.tid.#", 2)
    for i in range(2000):
        assert m.match(f"primary.task{i}.0.wg.wi.prov.wt.sched.tg._") == (1,)
    assert m.match("primary.tid.0.wg.wi.prov.wt.sched.tg._") == (1, 2)
    assert m.cached_states < 30


def test_state_cap_starts_afresh(monkeypatch):
    monkeypatch.setattr(matching, "MAX_STATES", 3)
    m = TopicMatcher()
    for i in range(10):
        m.add(f"w{i}.#", i)
        m.add(f"*.w{i}", 100 + i)
    for i in range(10):
        assert m.match(f"w{i}.w{i}") == (i, 100 + i)
        assert m.match(f"x.w{i}") == (100 + i,)
    assert m.cached_states <= 3


def test_bad_input():
    m = TopicMatcher()
    with pytest.raises(BindingError, match="must be a str"):
        m.add(b"a.b", 1)
    with pytest.raises(BindingError, match="255 bytes"):
        m.add("a." * 128, 1)
    with pytest.raises(TypeError):
        m.add("a", [1])
    m.add("é" * 127, 1)  # 254 bytes is fine
    assert m.match("é" * 127) == (1,)


def test_threads_agree():
    m = TopicMatcher()
    for i in range(30):
        m.add(f"primary.*.{i}.#", i)
        m.add(f"route.index.p{i}.#", i)
    errors = []

    def work(offset):
        for n in range(300):
            i = (n + offset) % 30
            if m.match(f"primary.t{n}.{i}.x") != (i,) or m.match(f"route.index.p{i}.y") != (i,):
                errors.append((offset, n))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_exchange_matcher():
    qc = "exchange/taskcluster-queue/v1/task-completed"
    qf = "exchange/taskcluster-queue/v1/task-failed"
    m = ExchangeMatcher()
    m.add(qc, "primary.*.*.*.*.*.*.*.tg.#", "group")
    m.add(qc, "route.index.project.#", "indexed")
    m.add(qf, "primary.#", "failed")
    m.add(qf, "route.index.project.#", "indexed")
    key = "primary.t1.0.wg.wi.prov.wt.sched.tg._"
    assert m.match(qc, key) == ("group",)
    assert m.match(qc, key, cc=["route.index.project.foo"]) == ("group", "indexed")
    assert m.match(qc, key, cc=[b"route.index.project.foo", "route.other"]) == ("group", "indexed")
    assert m.match(qc, "primary.t1.0.wg.wi.prov.wt.sched.other._", cc=None) == ()
    assert m.match(qf, "primary.x", cc=["route.index.project.a", "route.index.project.b"]) == (
        "failed", "indexed")
    assert m.match("exchange/unknown", key) == ()
    assert m.exchanges() == [qc, qf]
    assert len(m) == 4
    assert len(m.bindings()) == 4
    assert m.matcher(qc) is not None
    assert m.matcher("nope") is None
    assert m.remove(qf, "primary.#", "failed")
    assert m.remove(qf, "route.index.project.#", "indexed")
    assert not m.remove(qf, "primary.#", "failed")
    assert m.exchanges() == [qc]
    with pytest.raises(BindingError):
        m.add("", "#", 1)


def test_match_many_keeps_order_across_keys():
    m = TopicMatcher()
    for value, pattern in enumerate(["route.a", "route.b", "primary.#", "route.#"]):
        m.add(pattern, value)
    assert m.match_many(["route.b", "primary.x", "route.a"]) == (0, 1, 2, 3)
    assert m.match_many([]) == ()
    assert m.match_many(["nothing"]) == ()


def test_binding_error_pickles():
    m = TopicMatcher()
    with pytest.raises(BindingError) as info:
        m.add(3, 1)
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value)


def test_adding_while_other_threads_match():
    m = TopicMatcher()
    m.add("primary.#", "p")
    errors: list = []
    stop = threading.Event()

    def reader():
        n = 0
        while not stop.is_set():
            n += 1
            try:
                values = m.match(f"primary.t{n}.{n % 50}.x")
                if not values or values[0] != "p":
                    errors.append(values)
            except Exception as exc:  # pragma: no cover - what this test is about
                errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(50):
            m.add(f"primary.*.{i}.#", i)
            m.add(f"primary.lit{i}.*.x", -i)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    assert m.match("primary.t.7.x") == ("p", 7)


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(matching)
    assert result.attempted > 10
    assert not result.failed
