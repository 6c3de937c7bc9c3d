"""Smoke tests of the private-broker fixtures (tests/support/nodes.py, tests/broker/conftest.py).

A private node and a 3-node cluster start, answer AMQP and rabbitmqctl, survive what the fault
tests will do to them, and the machine's own broker on 5672 is not touched by any of it (that
check runs last in this file).
"""

from __future__ import annotations

import secrets
import time

import amqp
import kombu
import pytest

from support.nodes import pulse_permissions, system_broker_state


@pytest.fixture(scope="module", autouse=True)
def system_broker_before():
    """The 5672 broker's pid, uptime, vhosts and users before this module starts any node (read
    only; None when it is not there)."""
    return system_broker_state()


def wait_for(condition, timeout=60.0, interval=0.2, what="condition"):
    """Poll ``condition()`` until it returns a truthy value; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
            if last:
                return last
        except (KeyError, amqp.exceptions.AMQPError, OSError) as e:  # not there yet
            last = e
        time.sleep(interval)
    raise AssertionError(f"{what}: not true within {timeout} s (last: {last!r})")


def confirming(url):
    return kombu.Connection(url, connect_timeout=15, transport_options={"confirm_publish": True})


def publish(url, queue, bodies):
    with confirming(url) as conn:
        producer = kombu.Producer(conn.channel())
        for body in bodies:
            producer.publish(body, routing_key=queue, delivery_mode=2, confirm_timeout=60)


def get(url, queue, ack=True):
    """One message body from ``queue`` (basic.get), polled until there is one."""
    with kombu.Connection(url, connect_timeout=15) as conn:
        channel = conn.channel()

        def one():
            msg = channel.basic_get(queue, no_ack=False)
            if msg is not None and ack:
                channel.basic_ack(msg.delivery_tag)
            return msg

        msg = wait_for(one, what=f"a message in {queue}")
        return kombu.serialization.loads(msg.body, msg.content_type, msg.content_encoding)


# ------------------------------------------------------------------------------------------
# a private node
# ------------------------------------------------------------------------------------------


def test_private_node_serves_amqp_and_counts_a_queue_with_slashes(private_node):
    assert private_node.amqp_port != 5672 and private_node.name != "rabbit@localhost"
    queue = f"queue/guest/smoke-{secrets.token_hex(3)}"
    with kombu.Connection(private_node.url, connect_timeout=15) as conn:
        channel = conn.channel()
        channel.queue_declare(queue, durable=True, auto_delete=False)
        producer = kombu.Producer(channel)
        for i in range(3):
            producer.publish({"i": i}, routing_key=queue, delivery_mode=2)
        held = wait_for(lambda: channel.basic_get(queue, no_ack=False), what="a delivery")
        assert wait_for(lambda: private_node.queue_counts(queue) == (2, 1)), private_node.queue_counts(queue)
        assert any(c["user"] == "guest" for c in private_node.connections())
        channel.basic_ack(held.delivery_tag)
        assert wait_for(lambda: private_node.queue_counts(queue) == (2, 0))
    with pytest.raises(KeyError):
        private_node.queue_counts("queue/guest/no-such-queue")


def test_private_node_restarts_and_recovers_from_a_kill(private_node):
    queue = f"queue/guest/durable-{secrets.token_hex(3)}"
    with kombu.Connection(private_node.url, connect_timeout=15) as conn:
        conn.channel().queue_declare(queue, durable=True, auto_delete=False)
    publish(private_node.url, queue, [{"n": 1}, {"n": 2}])

    private_node.stop_app()
    assert not private_node.port_open() and private_node.process_alive()
    private_node.start_app()
    assert private_node.queue_counts(queue) == (2, 0)

    private_node.kill()
    assert not private_node.process_alive() and private_node.beam_pid() is None
    private_node.start()
    assert wait_for(lambda: private_node.queue_counts(queue) == (2, 0))
    assert get(private_node.url, queue) == {"n": 1}


def test_pulse_user_has_pulseguardians_permissions(private_node, pulse_user):
    perms = private_node.rabbitmqctl_json("list_user_permissions", pulse_user.name)
    assert [(p["configure"], p["write"], p["read"]) for p in perms] == [pulse_permissions(pulse_user.name)]

    # the publisher's exchange, as Taskcluster declares it (guest is administrator here)
    exchange = "exchange/taskcluster-queue/v1/task-completed"
    with kombu.Connection(pulse_user.admin_url, connect_timeout=15) as admin:
        admin.channel().exchange_declare(exchange, "topic", durable=True, auto_delete=False)

    queue = pulse_user.queue("smoke")
    with kombu.Connection(pulse_user, connect_timeout=15) as conn:
        channel = conn.channel()
        channel.queue_declare(queue, durable=True, auto_delete=False)
        channel.queue_bind(queue, exchange, "#")
        with pytest.raises(amqp.exceptions.AccessRefused):
            conn.channel().queue_declare("queue/someone-else/x", durable=True, auto_delete=False)
        with pytest.raises(amqp.exceptions.AccessRefused):
            conn.channel().exchange_declare("exchange/taskcluster-queue/v1/mine", "topic",
                                            durable=True, auto_delete=False)
    with kombu.Connection(pulse_user.admin_url, connect_timeout=15) as admin:
        kombu.Producer(admin.channel()).publish({"status": "completed"}, exchange=exchange,
                                                routing_key="primary.task.x")
    assert wait_for(lambda: private_node.queue_counts(queue)[0] == 1)


def test_node_factory_with_a_short_consumer_timeout(node_factory):
    node = node_factory(consumer_timeout=2000)
    with kombu.Connection(node.url, connect_timeout=15) as conn:
        channel = conn.channel()
        channel.queue_declare("slow", durable=True, auto_delete=False)
        kombu.Producer(channel).publish({"x": 1}, routing_key="slow")
        received = []
        channel.basic_consume("slow", callback=received.append)
        started = time.monotonic()
        with pytest.raises(amqp.exceptions.PreconditionFailed, match="acknowledgement .* timed out"):
            while time.monotonic() - started < 60:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass
        assert received and time.monotonic() - started < 20
    assert wait_for(lambda: node.queue_counts("slow") == (1, 0))  # back in the queue


# ------------------------------------------------------------------------------------------
# the cluster
# ------------------------------------------------------------------------------------------


def test_cluster_has_three_running_nodes(cluster):
    names = sorted(n.name for n in cluster)
    assert len(set(names)) == 3 and len({n.amqp_port for n in cluster}) == 3
    for node in cluster:
        assert sorted(node.rabbitmqctl_json("cluster_status")["running_nodes"]) == names
    assert cluster.failover_url == ";".join(cluster.urls)

    with kombu.Connection(cluster.failover_url, connect_timeout=15) as conn:
        conn.connect()
        assert cluster.node_of_connection(conn) == 0
        local_port = conn.connection.sock.getsockname()[1]
        assert cluster.node_of_connection(local_port) == 0
    with kombu.Connection(cluster.urls[2], connect_timeout=15) as conn:
        conn.connect()
        assert cluster.node_of_connection(conn) == 2


def test_quorum_queue_keeps_serving_while_a_node_is_down(cluster):
    queue = f"qq-smoke-{secrets.token_hex(3)}"
    args = {"x-queue-type": "quorum"}
    with kombu.Connection(cluster.urls[0], connect_timeout=15) as conn:
        conn.channel().queue_declare(queue, durable=True, auto_delete=False, arguments=args)
    with kombu.Connection(cluster.urls[2], connect_timeout=15) as conn:  # visible from node 3
        name, _count, _consumers = conn.channel().queue_declare(queue, passive=True)
        assert name == queue
    assert cluster[2].queues()[queue]["type"] == "quorum"

    try:
        cluster.stop_node(0)
        assert not cluster[0].process_alive()
        wait_for(lambda: len(cluster.running_nodes()) == 2, what="node 1 seen down")
        publish(cluster.urls[1], queue, [{"n": 1}, {"n": 2}])
        assert get(cluster.urls[2], queue) == {"n": 1}
        assert get(cluster.urls[2], queue) == {"n": 2}
    finally:
        cluster.start_node(0)
    assert len(cluster.running_nodes()) == 3
    with kombu.Connection(cluster.urls[0], connect_timeout=15) as conn:
        conn.channel().queue_delete(queue)


# ------------------------------------------------------------------------------------------
# last: the machine's own broker was left alone
# ------------------------------------------------------------------------------------------


def test_the_machines_broker_was_not_touched(system_broker_before):
    if system_broker_before is None:
        pytest.skip("no broker rabbit@localhost to compare (rabbitmqctl status failed)")
    after = system_broker_state()
    assert after is not None, "rabbit@localhost stopped answering"
    assert after["pid"] == system_broker_before["pid"], "rabbit@localhost was restarted"
    assert after["uptime"] >= system_broker_before["uptime"]
    # tests/test_examples.py makes short-lived vhosts tclisten-examples-* on this broker; another
    # run of it at the same time must not fail this test (anything else added or removed does)
    def ours(vhosts):
        return sorted(v for v in vhosts if not v.startswith("tclisten-examples-"))

    assert ours(after["vhosts"]) == ours(system_broker_before["vhosts"])
    assert after["users"] == system_broker_before["users"]
