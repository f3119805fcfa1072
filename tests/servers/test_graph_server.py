"""The Graph-shaped test server itself: tokens checked as Graph does, delta, moves, faults.

Plain ``requests`` calls, so a fault in the server is not mistaken for one in ackmail.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import msal
import pytest
import requests

from tests.auth.conftest import ALICE, APP_ID, APP_SECRET, PUBLIC_ID, SHARED
from tests.servers.graph import GraphServer
from tests.servers.idp import IdentityProvider
from tests.sources.mail import unrelated


def _session(idp: IdentityProvider) -> requests.Session:
    """Trusting only the test CA (the environment's CA bundle would override verify)."""
    session = requests.Session()
    session.trust_env, session.verify = False, idp.ca_pem
    return session


def _app_token(idp: IdentityProvider, scope: str = "https://graph.microsoft.com/.default") -> str:
    idp.register_client(APP_ID, secret=APP_SECRET)
    app = msal.ConfidentialClientApplication(APP_ID, client_credential=APP_SECRET,
                                             authority=idp.authority, http_client=_session(idp),
                                             instance_discovery=False)
    result = app.acquire_token_for_client([scope])
    assert "access_token" in result, result
    return str(result["access_token"])


class Client:
    """Calls to one mailbox with one token."""

    def __init__(self, graph: GraphServer, idp: IdentityProvider, token: str,
                 upn: str = SHARED) -> None:
        self.base = f"{graph.endpoint}/v1.0/users/{upn}"
        self.session = _session(idp)
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("https://") else self.base + path
        return self.session.get(url, timeout=10, **kwargs)

    def post(self, path: str, body: dict[str, Any], **kwargs: Any) -> requests.Response:
        return self.session.post(self.base + path, json=body, timeout=10, **kwargs)


@pytest.fixture
def client(graph: GraphServer, idp: IdentityProvider) -> Client:
    return Client(graph, idp, _app_token(idp))


def test_a_token_for_graph_with_mail_readwrite_reads_the_inbox(client: Client) -> None:
    answer = client.get("/mailFolders/inbox")
    assert answer.status_code == 200, answer.text
    assert answer.json()["displayName"] == "Inbox"


def test_tokens_for_another_audience_or_without_the_permission_are_refused(
        graph: GraphServer, idp: IdentityProvider) -> None:
    exchange = Client(graph, idp, _app_token(idp, "https://outlook.office365.com/.default"))
    assert exchange.get("/mailFolders/inbox").status_code == 401
    idp.graph_grants = {"roles": ["User.Read.All"], "scp": "User.Read"}
    denied = Client(graph, idp, _app_token(idp)).get("/mailFolders/inbox")
    assert denied.status_code == 403
    assert denied.json()["error"] == {**denied.json()["error"], "code": "ErrorAccessDenied",
                                      "message": "Access is denied. Check credentials and try "
                                                 "again."}


def test_an_app_scoped_to_other_mailboxes_is_denied_this_one(graph: GraphServer,
                                                             client: Client) -> None:
    graph.scope_app(APP_ID, {"other@example.test"})
    assert client.get("/mailFolders/inbox").json()["error"]["code"] == "ErrorAccessDenied"


def test_delta_pages_then_hands_out_a_delta_link_that_sees_only_new_mail(
        graph: GraphServer, client: Client) -> None:
    graph.deliver_many(SHARED, [unrelated(f"m{n} ") for n in range(5)])
    first = client.get("/mailFolders/inbox/messages/delta",
                       headers={"Prefer": "odata.maxpagesize=2"}).json()
    seen = [m["id"] for m in first["value"]]
    link = first["@odata.nextLink"]
    while "@odata.nextLink" in (page := client.get(link, headers={
            "Prefer": "odata.maxpagesize=2"}).json()):
        seen += [m["id"] for m in page["value"]]
        link = page["@odata.nextLink"]
    seen += [m["id"] for m in page["value"]]
    assert len(set(seen)) == 5
    graph.deliver(SHARED, unrelated("late "))
    later = client.get(page["@odata.deltaLink"]).json()
    assert [m["subject"].split()[:2] for m in later["value"]] == [["Lunch", "late"]]


def test_an_invalidated_delta_link_answers_410_gone(graph: GraphServer, client: Client) -> None:
    link = client.get("/mailFolders/inbox/messages/delta").json()["@odata.deltaLink"]
    graph.invalidate_delta(SHARED)
    gone = client.get(link)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "SyncStateNotFound"


def test_move_gives_a_new_id_unless_immutable_ids_are_preferred(graph: GraphServer,
                                                                 client: Client) -> None:
    immutable = [graph.deliver(SHARED, unrelated(label)) for label in ("a ", "b ")]
    created = client.post("/mailFolders/inbox/childFolders", {"displayName": "Done"}).json()
    rest_ids = [m["id"] for m in client.get("/mailFolders/inbox/messages/delta").json()["value"]]
    moved = client.post(f"/messages/{rest_ids[0]}/move", {"destinationId": created["id"]})
    assert moved.status_code == 201 and moved.json()["id"] not in rest_ids
    kept = client.post(f"/messages/{rest_ids[1]}/move", {"destinationId": created["id"]},
                       headers={"Prefer": 'IdType="ImmutableId"'})
    assert kept.json()["id"] == immutable[1]
    first = immutable[0]
    assert graph.list_folder(SHARED, "Inbox/Done") == 2 and graph.list_folder(SHARED) == 0
    assert client.get(f"/messages/{first}/$value").content.startswith(b"From: someone@")


def test_child_folders_are_found_by_display_name(client: Client) -> None:
    client.post("/mailFolders/inbox/childFolders", {"displayName": "Approvals"})
    found = client.get("/mailFolders/inbox/childFolders",
                       params={"$filter": "displayName eq 'approvals'"}).json()["value"]
    assert [f["displayName"] for f in found] == ["Approvals"]
    again = client.post("/mailFolders/inbox/childFolders", {"displayName": "Approvals"})
    assert again.status_code == 409


def test_throttling_answers_carry_retry_after(graph: GraphServer, client: Client) -> None:
    graph.throttle_next(1, retry_after=3)
    answer = client.get("/mailFolders/inbox")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "3"
    assert client.get("/mailFolders/inbox").status_code == 200


def test_a_fifth_concurrent_request_on_a_mailbox_is_throttled(graph: GraphServer,
                                                              client: Client) -> None:
    graph.delay = 0.3
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(
        Client.get(client, "/mailFolders/inbox").status_code)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert graph.max_in_flight[SHARED] >= 5
    assert 429 in statuses and 200 in statuses


def test_revoked_tokens_answer_401(graph: GraphServer, client: Client) -> None:
    assert client.get("/mailFolders/inbox").status_code == 200
    graph.revoke_seen_tokens()
    refused = client.get("/mailFolders/inbox")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_a_delegated_token_opens_only_the_users_own_mailbox(
        graph: GraphServer, idp: IdentityProvider, tmp_path: Path) -> None:
    idp.register_client(PUBLIC_ID)
    idp.auto_approve_as = ALICE
    app = msal.PublicClientApplication(PUBLIC_ID, authority=idp.authority,
                                       http_client=_session(idp), instance_discovery=False)
    flow = app.initiate_device_flow(["https://graph.microsoft.com/Mail.ReadWrite"])
    token = app.acquire_token_by_device_flow(flow)["access_token"]
    assert Client(graph, idp, token, ALICE).get("/mailFolders/inbox").status_code == 200
    assert Client(graph, idp, token, SHARED).get("/mailFolders/inbox").status_code == 403
