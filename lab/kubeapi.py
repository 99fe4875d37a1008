"""Plain REST calls for the lab's own clients of the API (the kubelet's agent, the addons).

The official client does the TLS, the kubeconfig and the connection pool; requests and answers
stay plain JSON, as in the cockpit's own kube source: the typed API classes would need a model
object for every body the lab builds as data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

REQUEST_TIMEOUT = (2.0, 5.0)  # connect, read: no call waits longer
# What a call may raise when the API server is down, refuses, or answers nonsense.
API_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError, KeyError, TypeError)
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


class Rest:
    """One identity (a kubeconfig) talking to one API server."""

    def __init__(self, kubeconfig: str) -> None:
        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        configuration.retries = False  # one try per call: the caller's loop is the retry
        self.api = client.ApiClient(configuration)

    def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """The JSON answer; ApiException (with the status) for any answer but a 2xx."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        request = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=dict(body) if body is not None else None,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request, _request_timeout=REQUEST_TIMEOUT)
        data = response.read()
        if not 200 <= response.status <= 299:
            raise ApiException(http_resp=response, body=data.decode(errors="replace"), data=None)
        answer = json.loads(data) if data else {}
        return answer if isinstance(answer, dict) else {}

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """POSTs `body`; None when it already exists (409)."""
        try:
            return self.call("POST", path, body)
        except ApiException as exc:
            if exc.status == 409:
                return None
            raise
