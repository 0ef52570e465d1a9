"""An unreachable Ray cluster is named in the error (the fresh-user walkthrough)."""

from __future__ import annotations

import pytest

from marketcast.orchestration.backends import _start_ray


class _Unreachable:
    """A stand-in for the ray module whose init fails as Ray Client does on a dead address."""

    shut_down = False

    def init(self, **init: object) -> None:
        raise ConnectionError("ray client connection timeout")

    def shutdown(self) -> None:
        self.shut_down = True


def test_a_cluster_that_cannot_be_reached_is_named() -> None:
    """It said only "ray client connection timeout", after 30 s, naming no address."""
    ray = _Unreachable()
    with pytest.raises(ConnectionError, match=r"the cluster at ray://127\.0\.0\.1:1: ray client"):
        _start_ray(ray, {"address": "ray://127.0.0.1:1"})
    assert ray.shut_down  # what Ray had started is stopped
    with pytest.raises(ConnectionError, match=r"^ray client connection timeout$"):
        _start_ray(_Unreachable(), {"num_cpus": 2})  # a local start has no address to name


class _BadEnvironment(_Unreachable):
    def init(self, **init: object) -> None:
        raise ValueError("bad runtime_env")


def test_a_start_up_error_that_is_no_connection_error_is_not_called_one() -> None:
    with pytest.raises(ValueError, match=r"^bad runtime_env$"):
        _start_ray(_BadEnvironment(), {"address": "ray://h:10001"})
