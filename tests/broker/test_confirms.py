"""Pipelined publisher confirms on the real broker: every publish counted, the refused ones
named, and on kombu's in-memory transport a plain synchronous publish."""

from __future__ import annotations

import uuid

from kombu import Connection, Exchange, Producer, Queue

from tclisten.confirms import Confirms


def test_one_wait_confirms_a_run_of_publishes_and_names_the_refused_ones(broker_url):
    name = f"tclisten-test-confirms-{uuid.uuid4().hex[:8]}"
    with Connection(broker_url, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        exchange = Exchange(name, "direct", durable=False, auto_delete=True)
        roomy = Queue(f"{name}-roomy", exchange, routing_key="roomy", auto_delete=True)
        full = Queue(f"{name}-full", exchange, routing_key="full", auto_delete=True,
                     queue_arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
        for queue in (roomy, full):
            queue(channel).declare()
        confirms = Confirms(Producer(conn.channel(), exchange=exchange))
        try:
            for token in range(6):
                confirms.publish(token, b'{"n": 1}', routing_key="full" if token % 2 else "roomy", headers={"k": token},
                                 content_type="application/json", content_encoding="utf-8")
            assert confirms.outstanding <= 6  # py-amqp's publish reads what already arrived
            assert confirms.wait() == [5]  # the third publish to the full queue (tokens 1, 3 fit)
            assert confirms.outstanding == 0
            assert confirms.wait() == []
            assert channel.queue_declare(roomy.name, passive=True).message_count == 3
            message = roomy(channel).get(no_ack=True)
            assert (message.properties["delivery_mode"], message.headers) == (2, {"k": 0})
        finally:
            roomy(channel).delete()
            full(channel).delete()


def test_on_the_memory_transport_a_publish_is_done_when_it_returns():
    with Connection("memory://") as conn:
        exchange = Exchange("confirms", "direct")
        queue = Queue("confirms-q", exchange, routing_key="k")
        queue(conn.channel()).declare()
        confirms = Confirms(Producer(conn.channel(), exchange=exchange))
        confirms.publish("t", "{}", routing_key="k", headers={}, content_type="application/json",
                         content_encoding="utf-8")
        assert (confirms.outstanding, confirms.wait()) == (0, [])
        assert queue(conn.channel()).get(no_ack=True).body == b"{}"
