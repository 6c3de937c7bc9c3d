"""TopicMatcher decides like RabbitMQ itself: the same patterns bound on a real topic
exchange, the same keys (and CC headers) published, the same deliveries."""

from __future__ import annotations

import random
import uuid

import pytest

kombu = pytest.importorskip("kombu")
amqp = pytest.importorskip("amqp")

from tclisten.matching import ExchangeMatcher, TopicMatcher  # noqa: E402

WORDS = ["", "a", "b", "ab", "*", "#"]


def random_text(rng: random.Random, wildcards: bool) -> str:
    """A pattern (with wildcards) or a key (whose words are literal, even '*' or '#')."""
    pool = WORDS if wildcards or rng.random() < 0.1 else WORDS[:4]
    return ".".join(rng.choice(pool) for _ in range(rng.randrange(0, 6)))


@pytest.fixture
def channel(broker_url):
    conn = kombu.Connection(broker_url, connect_timeout=5)
    conn.connect()
    raw = conn.connection  # the py-amqp connection: no kombu logic between us and the broker
    ch = raw.channel()
    ch.confirm_select()
    created = []
    yield ch, created
    for kind, name in created:
        try:
            if kind == "exchange":
                ch.exchange_delete(name)
            else:
                ch.queue_delete(name)
        except Exception:  # pragma: no cover - the broker already dropped it
            pass
    conn.close()


def drain(ch, queue: str) -> list[int]:
    got = []
    while True:
        msg = ch.basic_get(queue, no_ack=True)
        if msg is None:
            return sorted(got)
        got.append(int(msg.body))


def test_same_deliveries_as_rabbitmq(channel):
    ch, created = channel
    rng = random.Random(20151021)
    patterns = ["", "#", "*", "#.#", "*.#", "#.*", "a.#.b", "#.a.#", "*.*"]
    patterns += list(dict.fromkeys(random_text(rng, True) for _ in range(40)))
    patterns = list(dict.fromkeys(patterns))
    messages = [(random_text(rng, False), [random_text(rng, False) for _ in range(rng.randrange(3))])
                for _ in range(60)]
    messages += [("", []), (".", []), ("a..", ["", "."])]

    exchange = f"tclisten-test-{uuid.uuid4().hex}"
    ch.exchange_declare(exchange, "topic", durable=False, auto_delete=False)
    created.append(("exchange", exchange))
    queues = {}
    for i, pattern in enumerate(patterns):
        name = f"tclisten-test-{uuid.uuid4().hex}-{i}"
        ch.queue_declare(name, exclusive=True, auto_delete=True)
        created.append(("queue", name))
        ch.queue_bind(name, exchange, pattern)
        queues[pattern] = name
    # one queue bound with several patterns gets each message once
    several = f"tclisten-test-{uuid.uuid4().hex}-several"
    ch.queue_declare(several, exclusive=True, auto_delete=True)
    created.append(("queue", several))
    for pattern in patterns[:12]:
        ch.queue_bind(several, exchange, pattern)

    for index, (key, cc) in enumerate(messages):
        headers = {"CC": cc} if cc else None
        ch.basic_publish_confirm(amqp.Message(str(index), application_headers=headers),
                                 exchange=exchange, routing_key=key, confirm_timeout=10)

    by_exchange = ExchangeMatcher()
    delivered = 0
    for pattern in patterns:
        by_exchange.add(exchange, pattern, pattern)
        single = TopicMatcher()
        single.add(pattern, True)
        expected = [i for i, (key, cc) in enumerate(messages)
                    if single.match(key) or any(single.match(k) for k in cc)]
        assert drain(ch, queues[pattern]) == expected, pattern
        delivered += len(expected)
    assert 0 < delivered < len(patterns) * len(messages)  # the sample tells matches apart
    expected = [i for i, (key, cc) in enumerate(messages)
                if set(by_exchange.match(exchange, key, cc=cc)) & set(patterns[:12])]
    assert drain(ch, several) == expected
