"""Exchanges classes: generation, Topic declarations, patterns, parsing, CC routes."""

from __future__ import annotations

import logging
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tclisten import exchanges
from tclisten.exceptions import (BindingError, ConfigError, ReferenceFormatError,
                                 TaskclusterTopicExchangeFailure)
from tclisten.exchanges import (AuthEvents, ExchangesClient, GithubEvents, HooksEvents, NotifyEvents,
                                QueueEvents, SchedulerEvents, Topic, WorkerManagerEvents, cc_routes,
                                exchanges_class)
from tclisten.matching import TopicMatcher
from tclisten.taskcluster.references import Exchange, ExchangesReference, bundled, parse

TASK_ID = "fQGgk0ZbTSOcE6gWAqqH7g"
GROUP_ID = "Z8x9oxYoRzqBfJmJtHqjUA"
KEY = f"primary.{TASK_ID}.0.us-east-1.i-0abc.proj-releng.b-linux.gecko-level-3.{GROUP_ID}._"


def custom_reference(entries, prefix="exchange/my-service/v1/", name=None):
    data = {"serviceName": "my-service", "apiVersion": "v1", "exchangePrefix": prefix,
            "entries": [{"type": "topic-exchange", "name": n, "exchange": n.lower(), "routingKey": words}
                        for n, words in entries]}
    return parse(data, "test", class_name=name)


def word(name, **facts):
    return {"name": name, "required": True, "multipleWords": False, **facts}


# ------------------------------------------------------------------------- classes


def test_every_bundled_exchanges_reference_has_a_class():
    classes = [AuthEvents, GithubEvents, HooksEvents, NotifyEvents, QueueEvents, SchedulerEvents,
               WorkerManagerEvents]
    for cls in classes:
        ref = bundled()[cls.__name__]
        assert issubclass(cls, ExchangesClient)
        assert cls.reference is ref
        assert cls.exchangePrefix == ref.exchange_prefix
        assert exchanges_class(cls.__name__) is cls is exchanges_class(ref)
        assert getattr(exchanges, cls.__name__) is cls
        assert cls.__module__ == "tclisten.exchanges"
        assert cls.__doc__
        assert list(cls.topics()) == [e.name for e in ref.exchanges]
        assert cls.serviceName == ref.service_name
        assert cls.apiVersion == ref.api_version
    assert set(exchanges.__all__) >= {c.__name__ for c in classes}
    assert "QueueEvents" in dir(exchanges)
    assert SchedulerEvents.taskGraphRunning.exchange == "exchange/taskcluster-scheduler/v1/task-graph-running"


def test_unknown_names():
    with pytest.raises(AttributeError):
        exchanges.NopeEvents  # noqa: B018
    with pytest.raises(AttributeError):
        exchanges.Queue  # an API, not exchanges  # noqa: B018
    with pytest.raises(ImportError):
        from tclisten.exchanges import Nothing  # noqa: F401
    with pytest.raises(ConfigError, match="QueueEvents"):
        exchanges_class("Queue")
    with pytest.raises(ConfigError, match="did you mean 'QueueEvents'"):
        exchanges_class("QueueEvent")
    with pytest.raises(ConfigError):
        exchanges_class(3)
    with pytest.raises(KeyError, match="did you mean 'taskCompleted'"):
        QueueEvents.topic("taskComplete")
    assert QueueEvents.topic("taskFailed") is QueueEvents.taskFailed


def test_class_from_any_reference_at_run_time():
    ref = custom_reference([("thingHappened", [word("kind", constant="primary"), word("thing"),
                                                {"name": "rest", "multipleWords": True}])],
                           name="MyServiceEvents")
    cls = exchanges_class(ref)
    assert cls.__name__ == "MyServiceEvents"
    assert exchanges_class(ref) is cls
    assert exchanges_class(custom_reference(ref_entries(ref), name="MyServiceEvents")) is cls  # equal ref
    topic = cls.thingHappened
    assert topic.exchange == "exchange/my-service/v1/thinghappened"
    assert topic.pattern(thing=4) == "primary.4.#"
    assert topic.parse("primary.x.a.b") == {"kind": "primary", "thing": "x", "rest": "a.b"}
    assert cls({"exchangePrefix": "exchange/mine/v2/"}).thingHappened() == {
        "exchange": "exchange/mine/v2/thinghappened", "routingKeyPattern": "primary.*.#"}


def ref_entries(ref):
    return [(e.name, [{"name": w.name, "required": w.required, "multipleWords": w.multiple_words,
                       **({"constant": w.constant} if w.constant else {})} for w in e.routing_key])
            for e in ref.exchanges]


def test_entry_names_cannot_hide_the_class_api():
    ref = custom_reference([("options", [word("a")])], name="BadEvents")
    with pytest.raises(ReferenceFormatError, match="options"):
        exchanges_class(ref)


# ------------------------------------------------------------------------- Topic


def test_topic_on_the_class():
    topic = QueueEvents.taskCompleted
    assert isinstance(topic, Topic)
    assert topic.exchange == "exchange/taskcluster-queue/v1/task-completed"
    assert topic.name == "taskCompleted"
    assert topic.service == "QueueEvents"
    assert isinstance(topic.entry, Exchange)
    assert topic.entry.exchange == "task-completed"
    assert isinstance(topic.reference, ExchangesReference)
    assert topic.reference is QueueEvents.reference
    assert topic.fields[0] == "routingKeyKind"
    assert topic.fields[-1] == "reserved"
    assert topic.routing_key == topic.entry.routing_key
    assert repr(topic) == "<Topic QueueEvents.taskCompleted>"
    assert "task-completed" in topic.__doc__
    assert "taskId" in topic.__doc__
    assert QueueEvents.taskCompleted is topic


def test_topic_on_an_instance_uses_its_prefix():
    default = QueueEvents()
    assert default.taskCompleted is QueueEvents.taskCompleted
    staging = QueueEvents({"exchangePrefix": "exchange/tc-staging/v1/", "rootUrl": "https://x"})
    bound = staging.taskCompleted
    assert bound is staging.taskCompleted  # cached on the instance
    assert bound.exchange == "exchange/tc-staging/v1/task-completed"
    assert repr(bound) == "<Topic QueueEvents.taskCompleted exchange/tc-staging/v1/task-completed>"
    assert QueueEvents.taskCompleted.exchange == "exchange/taskcluster-queue/v1/task-completed"
    assert bound != QueueEvents.taskCompleted
    assert bound == QueueEvents.taskCompleted.with_prefix("exchange/tc-staging/v1")
    assert hash(bound) == hash(QueueEvents.taskCompleted.with_prefix("exchange/tc-staging/v1/"))
    assert QueueEvents(exchange_prefix="exchange/p/v1/").taskFailed.exchange == "exchange/p/v1/task-failed"
    with pytest.raises(ConfigError):
        QueueEvents.taskCompleted.with_prefix(None)


def test_topic_pickles():
    for topic in (QueueEvents.taskCompleted, QueueEvents({"exchangePrefix": "exchange/x/v1/"}).taskFailed):
        again = pickle.loads(pickle.dumps(topic))
        assert again == topic
        assert again.exchange == topic.exchange
        assert again.parse(KEY) == topic.parse(KEY)


# ------------------------------------------------------------------------- options


def test_options():
    options = {"rootUrl": "https://tc.example.com", "credentials": {"clientId": "c", "accessToken": "SECRET"},
               "maxRetries": 3, "exchangePrefix": "exchange/a/v1/"}
    client = QueueEvents(options)
    assert options["credentials"]["accessToken"] == "SECRET"
    assert len(options) == 4  # not mutated
    assert "credentials" not in client.options
    assert "SECRET" not in repr(client)
    assert "SECRET" not in repr(vars(client))
    assert client.exchangePrefix == "exchange/a/v1/"
    assert repr(client) == "<QueueEvents exchange/a/v1/>"
    with pytest.raises(ConfigError, match="did you mean 'exchangePrefix'"):
        QueueEvents({"exchangePrefx": "exchange/a/v1/"})
    with pytest.raises(ConfigError, match="not both"):
        QueueEvents({"exchangePrefix": "a/"}, exchange_prefix="b/")
    with pytest.raises(ConfigError):
        QueueEvents({"exchangePrefix": ""})
    with pytest.raises(ConfigError):
        QueueEvents("exchange/a/v1/")
    assert QueueEvents(None, None).exchangePrefix == QueueEvents.exchangePrefix


# ------------------------------------------------------------------------- patterns


def test_patterns_follow_the_rules():
    t = QueueEvents.taskCompleted
    assert t.pattern() == "primary.*.*.*.*.*.*.*.*.#"
    assert t.pattern(taskGroupId=GROUP_ID) == f"primary.*.*.*.*.*.*.*.{GROUP_ID}.#"
    assert t.pattern({"taskGroupId": GROUP_ID}) == t.pattern(taskGroupId=GROUP_ID)
    assert t.pattern({}) == t.pattern(None) == t.pattern()
    assert t.pattern(runId=0) == "primary.*.0.*.*.*.*.*.*.#"
    assert t.pattern(workerId="*", reserved="#") == t.pattern()
    assert t.pattern(taskId="#") == "primary.#.*.*.*.*.*.*.*.#"
    assert t.pattern(reserved="a.*.#") == "primary.*.*.*.*.*.*.*.*.a.*.#"
    assert t.pattern(routingKeyKind="primary") == t.pattern()
    assert t.pattern("primary.#") == "primary.#"
    with pytest.raises(BindingError, match="unknown routing-key word 'fields'"):
        t.pattern(fields="x")  # the dict parameter is positional-only
    assert NotifyEvents.notify.pattern(topic="a.b") == "primary.a.b"
    assert AuthEvents.clientCreated.pattern() == "#"
    fields = {"taskId": TASK_ID}
    t.pattern(fields)
    assert fields == {"taskId": TASK_ID}


def test_call_gives_the_official_dict():
    client = QueueEvents({"rootUrl": "https://tc.example.com"})
    expected = {"exchange": "exchange/taskcluster-queue/v1/task-completed",
                "routingKeyPattern": "primary.x.*.*.*.*.*.*.*.#"}
    assert client.taskCompleted({"taskId": "x"}) == expected
    assert client.taskCompleted(taskId="x") == expected
    assert client.taskCompleted("primary.#")["routingKeyPattern"] == "primary.#"
    assert QueueEvents.taskCompleted(taskId="x") == expected
    with pytest.raises(TaskclusterTopicExchangeFailure, match="either"):
        client.taskCompleted({"taskId": "x"}, {"runId": 0})
    with pytest.raises(TaskclusterTopicExchangeFailure):
        client.taskCompleted({"taskId": "x"}, runId=0)
    with pytest.raises(TaskclusterTopicExchangeFailure):
        client.taskCompleted("primary.#", runId=0)


@pytest.mark.parametrize("call,problem", [
    (lambda t: t.pattern({"taskId": "x"}, runId=0), "not both"),
    (lambda t: t.pattern(taskid="x"), "did you mean 'taskId'"),
    (lambda t: t.pattern(taskGroup="x"), "did you mean 'taskGroupId'"),
    (lambda t: t.pattern(colour="x"), "unknown routing-key word 'colour'"),
    (lambda t: t.pattern(workerType="a.b"), "contains '.'"),
    (lambda t: t.pattern(taskId="x" * 23), "more than its maximum of 22"),
    (lambda t: t.pattern(runId=1000), "more than its maximum of 3"),
    (lambda t: t.pattern(routingKeyKind="route"), "always 'primary'"),
    (lambda t: t.pattern(taskId=None), "str or an int"),
    (lambda t: t.pattern(taskId=1.5), "str or an int"),
    (lambda t: t.pattern(taskId=True), "str or an int"),
    (lambda t: t.pattern(taskId=b"x"), "str or an int"),
    (lambda t: t.pattern(taskId=""), "empty"),
    (lambda t: t.pattern(reserved="a..b"), "empty word"),
    (lambda t: t.pattern(reserved=".a"), "empty word"),
    (lambda t: t.pattern(["taskId"]), "must be a dict"),
    (lambda t: t.pattern("p." * 128), "255"),
    (lambda t: t.pattern(reserved=".".join(["w" * 30] * 8)), "255"),
])
def test_declaration_errors(call, problem):
    with pytest.raises(BindingError, match=problem) as info:
        call(QueueEvents.taskCompleted)
    err = info.value
    assert isinstance(err, TaskclusterTopicExchangeFailure)
    assert isinstance(err, ValueError)
    assert "QueueEvents.taskCompleted" in str(err)
    assert "task-completed" in str(err)
    assert err.exchange == "exchange/taskcluster-queue/v1/task-completed"
    assert pickle.loads(pickle.dumps(err)).exchange == err.exchange


def test_errors_name_the_field():
    with pytest.raises(BindingError) as info:
        QueueEvents.taskFailed.pattern(workerType="a.b")
    assert info.value.field == "workerType"
    assert "QueueEvents.taskFailed" in str(info.value)


def test_values_are_plain_text():
    import enum

    class Pool(str, enum.Enum):
        BUILD = "b-linux"

    class Run(enum.IntEnum):
        FIRST = 0

    assert QueueEvents.taskCompleted.pattern(workerType=Pool.BUILD, runId=Run.FIRST) == \
        "primary.*.0.*.*.*.b-linux.*.*.#"


def test_route_patterns():
    t = QueueEvents.taskCompleted
    assert t.route_pattern("index.project.foo.#") == "route.index.project.foo.#"
    assert t.route_pattern("notify.*") == "route.notify.*"
    for bad, problem in [("", "empty"), ("a..b", "empty word"), (".a", "empty word"),
                         ("a.", "empty word"), (None, "must be a str"), ("x" * 250, "255")]:
        with pytest.raises(BindingError, match=problem):
            t.route_pattern(bad)


def test_route_prefix_given_twice_is_kept_but_warned(caplog):
    with caplog.at_level(logging.WARNING, logger="tclisten.exchanges"):
        assert QueueEvents.taskFailed.route_pattern("route.x") == "route.route.x"
    assert "already starts with" in caplog.text


def test_patterns_match_the_keys_they_describe():
    t = QueueEvents.taskCompleted
    m = TopicMatcher()
    m.add(t.pattern(taskGroupId=GROUP_ID), "group")
    m.add(t.pattern(provisionerId="proj-releng", workerType="b-linux"), "pool")
    m.add(t.pattern(taskGroupId="other"), "other")
    m.add(t.route_pattern("index.project.#"), "indexed")
    assert m.match(KEY) == ("group", "pool")
    assert m.match_many([KEY, "route.index.project.foo"]) == ("group", "pool", "indexed")


# ------------------------------------------------------------------------- parse


def test_parse_queue_keys():
    fields = QueueEvents.taskCompleted.parse(KEY)
    assert fields == {"routingKeyKind": "primary", "taskId": TASK_ID, "runId": "0",
                      "workerGroup": "us-east-1", "workerId": "i-0abc", "provisionerId": "proj-releng",
                      "workerType": "b-linux", "schedulerId": "gecko-level-3", "taskGroupId": GROUP_ID,
                      "reserved": "_"}
    assert list(fields) == list(QueueEvents.taskCompleted.fields)
    assert QueueEvents.taskCompleted.parse(KEY + ".more.words")["reserved"] == "_.more.words"
    assert QueueEvents.taskCompleted.parse(KEY[: -len("._")])["reserved"] == ""
    assert NotifyEvents.notify.parse("primary.a.b.c") == {"routingKeyKind": "primary", "topic": "a.b.c"}
    assert AuthEvents.clientCreated.parse("") == {"reserved": ""}
    assert AuthEvents.clientCreated.parse("x.y") == {"reserved": "x.y"}
    assert GithubEvents.push.parse("primary.mozilla.gecko") == {
        "routingKeyKind": "primary", "organization": "mozilla", "repository": "gecko"}


@pytest.mark.parametrize("key,problem", [
    ("route.index.project.foo", "at least 9 .* CC route"),
    ("route.a.b.c.d.e.f.g.h.i", "constant 'primary'.* CC route"),
    ("primary.a.b", "at least 9 were expected"),
    ("", "has 0 words"),
    (KEY.replace("primary", "secondary"), "constant 'primary'"),
])
def test_parse_errors(key, problem):
    with pytest.raises(TaskclusterTopicExchangeFailure, match=problem) as info:
        QueueEvents.taskCompleted.parse(key)
    assert info.value.routing_key == key
    assert "QueueEvents.taskCompleted" in str(info.value)


def test_parse_exact_and_unusual_layouts():
    ref = custom_reference([
        ("exact", [word("kind", constant="k"), word("a"), word("b")]),
        ("middle", [word("a"), {"name": "rest", "multipleWords": True}, word("z", constant="end")]),
        ("twoMulti", [{"name": "x", "multipleWords": True}, {"name": "y", "multipleWords": True}]),
        ("noConstant", [word("a"), {"name": "rest", "multipleWords": True}]),
    ], name="OddEvents")
    cls = exchanges_class(ref)
    assert cls.exact.parse("k.1.2") == {"kind": "k", "a": "1", "b": "2"}
    with pytest.raises(TaskclusterTopicExchangeFailure, match="has 4 words where 3"):
        cls.exact.parse("k.1.2.3")
    with pytest.raises(TaskclusterTopicExchangeFailure):
        cls.exact.parse("")
    assert cls.middle.parse("a.r1.r2.end") == {"a": "a", "rest": "r1.r2", "z": "end"}
    assert cls.middle.parse("a.end") == {"a": "a", "rest": "", "z": "end"}
    with pytest.raises(TaskclusterTopicExchangeFailure, match="constant 'end'"):
        cls.middle.parse("a.r1.r2.x")
    with pytest.raises(TaskclusterTopicExchangeFailure, match="several multi-word"):
        cls.twoMulti.parse("a.b")
    assert cls.twoMulti.pattern(x="1") == "1.#"
    assert cls.noConstant.parse("1.2.3") == {"a": "1", "rest": "2.3"}
    with pytest.raises(TaskclusterTopicExchangeFailure):
        cls.noConstant.parse("")


KEY_WORDS = st.sampled_from(["", "primary", "a", "b", "_", TASK_ID])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([t for cls in (QueueEvents, NotifyEvents, AuthEvents, GithubEvents)
                        for t in cls.topics().values()]),
       st.lists(KEY_WORDS, max_size=12).map(".".join))
def test_fast_parse_equals_the_general_one(topic, key):
    try:
        expected = Topic.parse(topic, key)  # the class's parse: the general one, for any layout
    except TaskclusterTopicExchangeFailure as exc:
        with pytest.raises(TaskclusterTopicExchangeFailure) as info:
            topic.parse(key)
        assert str(info.value) == str(exc)
    else:
        assert topic.parse(key) == expected
        # and the key matches the pattern built from what was parsed
        if all(expected.values()) and expected:
            m = TopicMatcher()
            single = {k: v for k, v in expected.items()
                      if not next(w for w in topic.routing_key if w.name == k).multiple_words}
            try:
                pattern = topic.pattern(single)
            except BindingError:  # a value over its maxSize: the key was not the queue's
                return
            m.add(pattern, True)
            assert m.match(key) == (True,)


def test_pattern_of_every_word_parses_back():
    for cls in (QueueEvents, SchedulerEvents, WorkerManagerEvents, GithubEvents, HooksEvents):
        for topic in cls.topics().values():
            values = {w.name: (w.constant or ("r1.r2" if w.multiple_words else f"v{i}"))
                      for i, w in enumerate(topic.routing_key)}
            assert topic.parse(topic.pattern(values)) == values


# ------------------------------------------------------------------------- CC routes


def test_cc_routes():
    headers = {"CC": [b"route.index.project.foo", "route.notify.email.me@example.com.on-failed",
                      "primary.not.a.route", b"route."]}
    assert cc_routes(headers) == ["index.project.foo", "notify.email.me@example.com.on-failed", ""]
    assert cc_routes({"CC": "route.x"}) == ["x"]
    assert cc_routes({"CC": []}) == [] == cc_routes({}) == cc_routes(None) == cc_routes({"other": 1})
    assert cc_routes({"CC": [3, None, "route.y"]}) == ["y"]
    assert headers["CC"][0] == b"route.index.project.foo"


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(exchanges, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10
    assert not result.failed
