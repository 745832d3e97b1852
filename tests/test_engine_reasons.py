"""What the Docker SDK raises, in one plain clause: the wrapping of the HTTP library (tuples,
pool reprs) never reaches the user, whichever way a closed connection surfaces."""

from __future__ import annotations

import http.client

import docker.errors
import pytest
import requests

from imagescope.sources.engine import _reason


def raised_by_the_sdk(inner: BaseException) -> BaseException:
    """As docker.from_env raises it: a DockerException over requests' ConnectionError."""
    wrapped = requests.exceptions.ConnectionError(("Connection aborted.", inner))
    try:
        try:
            raise wrapped
        except requests.exceptions.ConnectionError as exc:
            raise docker.errors.DockerException(
                f"Error while fetching server API version: {exc}") from exc
    except docker.errors.DockerException as outer:
        return outer


@pytest.mark.parametrize("inner, said", [
    (http.client.RemoteDisconnected("Remote end closed connection without response"),
     "did not answer as a Docker engine does"),
    (ConnectionResetError(104, "Connection reset by peer"), "Connection reset by peer"),
    (FileNotFoundError(2, "No such file or directory"), "No such file or directory"),
])
def test_a_closed_connection_is_one_plain_clause(inner: BaseException, said: str) -> None:
    text = _reason(raised_by_the_sdk(inner))
    assert said in text
    assert "('" not in text and "Connection aborted." not in text
