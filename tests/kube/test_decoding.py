"""Typed decoding: a shape changes how fast an object is read, never what is read from it.

The oracle is ``json.loads``: every object, decoded into its resource's shape, must project to
the same record (or be refused with the same message) as the object decoded in full. The
objects are the builders' valid ones with one field the shape declares, drawn by path from
the shape itself, set to any JSON value, so a field the projection reads but the shape
forgets, or a misfit the slow path does not catch, fails here.
"""

from __future__ import annotations

import copy
import itertools
import json
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.kube.decoding import Decoder
from exporter.store.projecting import (
    BadObject,
    CronJobShape,
    JobShape,
    PodShape,
    project_cronjob,
    project_job,
    project_pod,
)
from tests.builders import complete, cronjob, failed, pod, running

RESOURCES: dict[str, tuple[type[Any], Callable[[Any], Any], list[dict[str, Any]]]] = {
    "jobs": (JobShape, project_job, [running(), complete(), failed()]),
    "cronjobs": (CronJobShape, project_cronjob, [cronjob(last=60, last_success=30)]),
    "pods": (PodShape, project_pod, [pod(), pod(phase="Failed", reason="Error")]),
}


def declared(shape: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every path the shape declares (an int is the first item of a list)."""
    for name, hint in typing.get_type_hints(shape).items():
        path = (*prefix, name)
        yield path
        if typing.get_origin(hint) is list:
            yield (*path, 0)
            hint = typing.get_args(hint)[0]
            path = (*path, 0)
        if typing.is_typeddict(hint):
            yield from declared(hint, path)


def put(body: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    """Set ``path`` in ``body``, making the containers on the way as the path says."""
    node: Any = body
    for part, after in itertools.pairwise(path):
        child: dict[str, Any] | list[Any] = {} if isinstance(after, str) else [{}]
        if isinstance(part, int):
            if not isinstance(node, list) or not node:
                return  # the container is already something else: nothing to set
            node = node[0]
        else:
            if not isinstance(node.get(part), type(child)):
                node[part] = child
            node = node[part]
    last = path[-1]
    if isinstance(last, int):
        node[0:1] = [value]
    elif isinstance(node, dict):
        node[last] = value


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "True", "2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "\ud800"])
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def outcome(project: Callable[[Any], Any], raw: Any) -> object:
    """The record, or the refusal's message: what the caches go by."""
    try:
        return project(raw)
    except BadObject as exc:
        return f"bad: {exc}"


@pytest.mark.parametrize("resource", sorted(RESOURCES))
@settings(max_examples=300, derandomize=True, deadline=None)
@given(data=st.data())
def test_the_shape_projects_as_the_whole_object_does(resource: str, data: st.DataObject) -> None:
    shape, project, bases = RESOURCES[resource]
    body = copy.deepcopy(data.draw(st.sampled_from(bases)))
    path = data.draw(st.sampled_from(sorted(declared(shape), key=str)))
    put(body, path, data.draw(JSON))
    body["unread"] = data.draw(JSON)  # what the shape does not declare is skipped, whatever
    line = json.dumps(body).encode()
    page = b'{"metadata": {"resourceVersion": "7"}, "items": [' + line + b"]}"
    listed = Decoder(shape).page(page)
    event = Decoder(shape).event(b'{"type": "MODIFIED", "object": ' + line + b"}")
    expected = outcome(project, json.loads(line))
    assert listed.unreadable == 0 and listed.resource_version == "7"
    assert outcome(project, listed.items[0]) == expected
    assert outcome(project, event["object"]) == expected


def test_fields_no_projection_reads_are_never_decoded() -> None:
    body = {**pod(), "spec": {"containers": [{"name": "c", "image": "x"}]}, "kind": "Pod"}
    body["metadata"]["managedFields"] = [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}]
    (item,) = Decoder(PodShape).page(json.dumps({"items": [body]}).encode()).items
    started = {
        "running": {
            "startedAt": pod()["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
        }
    }
    statuses = [{"restartCount": 0, "state": started}]  # no name; running has no exit code
    assert item == {
        "metadata": pod()["metadata"],
        "status": {"phase": "Running", "containerStatuses": statuses},
    }


def test_a_misfit_item_is_read_in_full_and_the_rest_of_its_page_in_the_shape() -> None:
    misfit = {**running(), "status": "garbage"}
    misfit["metadata"] = {**misfit["metadata"], "uid": "bad", "managedFields": "x"}
    page = json.dumps({"items": [running(), misfit, "not an object"], "junk": 1}).encode()
    decoded = Decoder(JobShape).page(page)
    assert decoded.unreadable == 1
    good, full = decoded.items
    assert good == running()  # every field it has is one the shape declares
    assert full == misfit  # so the projection names the bad field, exactly as without a shape
    with pytest.raises(BadObject, match="status"):
        project_job(full)


def test_pages_no_decoder_accepts_still_lose_only_their_bad_items() -> None:
    page = b'{"metadata": {"continue": "c2"}, "items": [' + json.dumps(running()).encode()
    page += b', {not json}, {"metadata": {"uid": "\\ud800"}}]}'
    decoded = Decoder(JobShape).page(page)
    assert decoded.continue_token == "c2"
    assert decoded.unreadable == 1
    assert decoded.items[0]["metadata"]["uid"] == "j1"
    with pytest.raises(BadObject, match="Unicode"):
        project_job(decoded.items[1])


def test_an_event_whose_object_misfits_is_read_in_full() -> None:
    gone = {"kind": "Status", "status": "Failure", "code": 410, "message": "too old"}
    event = Decoder(PodShape).event(json.dumps({"type": "ERROR", "object": gone}).encode())
    assert event == {"type": "ERROR", "object": gone}
    with pytest.raises(ValueError):
        Decoder(PodShape).event(b"not json")
