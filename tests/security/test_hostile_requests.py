"""Every endpoint fed hostile query strings and forms by the weakest user allowed to use it: the
answer is a page, a redirect on this site or a 4xx, never a 500; nothing in the database
changes; another firm's data never shows; another firm's ids answer 404.

(tests/mirror/test_hostile_input.py goes deeper into the lists and their selections.)"""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from unlinker.connections.views import PENDING, TENANT_CHOICES
from unlinker.mirror.models import SyncRun
from unlinker.reconciliation.models import ReconciliationRun

from .endpoints import (
    ALL_FIELDS,
    ENDPOINTS,
    Endpoint,
    changed_tables,
    database_state,
    is_local,
    is_oauth_provider,
    weakest_allowed_role,
)
from .scene import MARKER, Scene
from .strategies import HOSTILE, HTMX_HEADERS, encode, parameters, values

pytestmark = pytest.mark.django_db

NOWHERE = (10**6, 2**63, 10**30)  # ids of nothing: past the table, past bigint, past both
SEEDS = ("9" * 4301, "' OR 1=1 --")


def body(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode(errors="replace")


def unreachable_targets(endpoint: Endpoint, scene: Scene, role) -> list[int]:
    """Ids in the endpoint's URL that the user may not reach: they must answer 404."""
    if endpoint.target == "batch":
        return [scene.other_batch.pk, *NOWHERE]
    other = [] if endpoint.allows("admin") and role == "admin" else [scene.other.connection.pk]
    # A disconnected connection's pages stay readable by its members (its history is kept);
    # nothing may act on it.
    gone = [] if endpoint.method == "GET" else [scene.gone.pk]
    return [*other, *gone, *NOWHERE]


def targets(endpoint: Endpoint, scene: Scene, role) -> st.SearchStrategy[int | None]:
    if endpoint.target is None:
        return st.none()
    unreachable = st.sampled_from(unreachable_targets(endpoint, scene, role))
    if endpoint.acts_on_target:
        return unreachable
    return st.one_of(st.just(endpoint.target_id(scene)), unreachable)


# What some endpoints need in place so that hostile input reaches their interesting branch, or
# so that a request which is allowed to act finds nothing left to do.
def _busy(client, scene: Scene, user) -> None:
    """A sync and a reconciliation already queued: Refresh and Run answer with them."""
    SyncRun.objects.get_or_create(connection=scene.connection, state=SyncRun.State.QUEUED)
    ReconciliationRun.objects.get_or_create(
        connection=scene.connection, state=ReconciliationRun.State.QUEUED
    )


def _session(**values):
    def prepare(client, scene: Scene, user) -> None:
        session = client.session
        session.update({key: value(scene) for key, value in values.items()})
        session.save()

    return prepare


PREPARE = {
    "sync:start": _busy,
    "reconciliation:run": _busy,
    "logout": lambda client, scene, user: client.force_login(user),
    "connections:xero_tenant": _session(
        **{TENANT_CHOICES: lambda s: {"connection": s.connection.pk, "tenants": {"t-1": "Smith"}}}
    ),
    # a consent answer without a state finds this entry: the callback goes on to Authlib's check
    "connections:xero_callback": _session(
        **{PENDING: lambda s: {"": {"provider": "xero", "connection": s.connection.pk}}}
    ),
    "connections:actionstep_callback": _session(
        **{PENDING: lambda s: {"": {"provider": "actionstep", "connection": None, "zone": ""}}}
    ),
}


@pytest.mark.parametrize("endpoint", ENDPOINTS.values(), ids=lambda e: e.name)
def test_hostile_input_is_refused_cleanly(scene, signed_in, endpoint: Endpoint):
    role = weakest_allowed_role(endpoint)
    client = signed_in(role)
    user = scene.users.get(role)
    prepare = PREPARE.get(endpoint.name, lambda client, scene, user: None)
    foreign = scene.foreign_ids()
    unreachable = set(unreachable_targets(endpoint, scene, role))
    fields = parameters(endpoint.fields, ALL_FIELDS, foreign)
    # Every field at once with each of a few values that broke something once.
    seed_target = sorted(unreachable)[0] if endpoint.acts_on_target else endpoint.target_id(scene)
    seeds = [{name: [value] for name in endpoint.fields} for value in SEEDS]

    @HOSTILE
    @example(query=seeds[0], form=seeds[0], target=seed_target, headers={}, multipart=False)
    @example(query=seeds[1], form=seeds[1], target=seed_target, headers={}, multipart=True)
    @given(
        query=fields,
        form=fields,
        target=targets(endpoint, scene, role),
        headers=HTMX_HEADERS,
        multipart=st.booleans(),
    )
    def check(query, form, target, headers, multipart):
        prepare(client, scene, user)
        url = endpoint.url(target) + (f"?{encode(query)}" if query else "")
        before = database_state()
        if endpoint.method == "GET":
            response = client.get(url, headers=headers)
        elif multipart:
            response = client.post(url, form, headers=headers)
        else:
            urlencoded = "application/x-www-form-urlencoded"
            response = client.post(url, encode(form), content_type=urlencoded, headers=headers)

        assert response.status_code < 500
        if target in unreachable:
            assert response.status_code == 404
        if 300 <= response.status_code < 400:
            location = response["Location"]
            assert is_local(location) or (endpoint.redirects_away and is_oauth_provider(location))
        assert MARKER not in body(response)
        assert changed_tables(before, database_state()) == []

    check()


def test_retry_takes_only_its_own_failed_steps(scene, signed_in):
    """Retry reads the `step` ids it is given: any that are not a failed step of the batch (other
    batches' steps, junk) retry nothing."""
    client = signed_in("operator")
    retriable = scene.retriable_step_ids()
    url = ENDPOINTS["unlinking:retry"].url(scene.batch.pk)

    def names_a_retriable_step(value: str) -> bool:
        return value.isdecimal() and len(value) <= 19 and int(value) in retriable

    steps = st.lists(
        values(scene.foreign_ids()).filter(lambda v: not names_a_retriable_step(v)),
        min_size=1,
        max_size=5,
    )

    @HOSTILE
    @example(steps=[SEEDS[0]], junk={})
    @given(steps=steps, junk=parameters((), ALL_FIELDS, scene.foreign_ids()))
    def check(steps, junk):
        before = database_state()
        response = client.post(url, {**junk, "step": steps})
        assert response.status_code == 302
        assert changed_tables(before, database_state()) == []

    check()
