"""The exchanges classes give exactly what the official ``taskcluster`` client gives.

Every exchange of every bundled exchanges reference is compared with the official client's
class built from the same reference data (``taskcluster.client.createApiClient``), and, where
the official package ships the service, with its own generated class too.
"""

from __future__ import annotations

import copy

import pytest

taskcluster = pytest.importorskip("taskcluster")
official_client = pytest.importorskip("taskcluster.client")

from tclisten.exchanges import exchanges_class  # noqa: E402
from tclisten.taskcluster.references import ExchangesReference, bundled, reference_facts  # noqa: E402

ROOT_URL = "https://tc.example.com"

EXCHANGES = [(name, entry.name) for name, ref in sorted(bundled().items())
             if isinstance(ref, ExchangesReference) for entry in ref.exchanges]


def official_class(class_name: str):
    facts = copy.deepcopy(reference_facts(bundled()[class_name]))  # the official one edits it
    return official_client.createApiClient(class_name, {"reference": facts})


def argument_sets(entry):
    """(args, kwargs) combinations that both clients accept for this exchange."""
    free = [w for w in entry.routing_key if w.constant is None]
    singles = [w for w in free if not w.multiple_words]
    multis = [w for w in free if w.multiple_words]
    constants = [w for w in entry.routing_key if w.constant is not None]
    every = {}
    for i, word in enumerate(free):
        every[word.name] = "a.b" if word.multiple_words else f"v{i}"
    combos = [((), {}), (({},), {}), (("primary.#",), {}), (("#",), {}), (("route.index.x.#",), {}),
              (({**every},), {}), ((), {**every})]
    if singles:
        first, last = singles[0].name, singles[-1].name
        combos += [(({first: "abc"},), {}), ((), {first: "abc"}), ((), {last: 7}),
                   ((), {first: "*"}), (({first: "#", last: "x_y-z"},), {})]
    for word in multis:
        combos += [((), {word.name: "#"}), ((), {word.name: "*"}), (({word.name: "a.*.#"},), {}),
                   ((), {word.name: "one"})]
    for word in constants:
        combos += [((), {word.name: word.constant})]
    return combos


@pytest.mark.parametrize("class_name,entry_name", EXCHANGES, ids=[f"{c}.{e}" for c, e in EXCHANGES])
def test_same_dict_as_the_official_client(class_name, entry_name):
    entry = bundled()[class_name].exchange(entry_name)
    ours_cls = exchanges_class(class_name)
    theirs_cls = official_class(class_name)
    for options in ({"rootUrl": ROOT_URL}, {"rootUrl": ROOT_URL, "exchangePrefix": "exchange/tc-staging/v2/"},
                    {"rootUrl": ROOT_URL, "exchangePrefix": "exchange/x/v1"}):
        ours = getattr(ours_cls(options), entry_name)
        theirs = getattr(theirs_cls(dict(options)), entry_name)
        for args, kwargs in argument_sets(entry):
            expected = theirs(*copy.deepcopy(args), **dict(kwargs))
            assert ours(*args, **kwargs) == expected, (args, kwargs)
            if not args or not isinstance(args[0], str):
                fields = args[0] if args else None
                assert ours.pattern(fields, **kwargs) == expected["routingKeyPattern"]
    # the class attribute (no instance) uses the reference's prefix, like a default instance
    assert getattr(ours_cls, entry_name)() == getattr(theirs_cls({"rootUrl": ROOT_URL}), entry_name)()


def test_same_as_the_generated_official_classes():
    compared = 0
    for class_name, ref in bundled().items():
        generated = getattr(taskcluster, class_name, None)
        if not isinstance(ref, ExchangesReference) or generated is None:
            continue
        theirs = generated({"rootUrl": ROOT_URL})
        ours = exchanges_class(class_name)({"rootUrl": ROOT_URL})
        for entry in ref.exchanges:
            if not hasattr(theirs, entry.name):
                continue  # an exchange newer or older than the installed package
            for args, kwargs in argument_sets(entry):
                assert getattr(ours, entry.name)(*args, **kwargs) == getattr(theirs, entry.name)(
                    *copy.deepcopy(args), **dict(kwargs)), (class_name, entry.name, args, kwargs)
                compared += 1
    assert compared > 100
