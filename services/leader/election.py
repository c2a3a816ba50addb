"""Which replica is the leader: only the leader runs the drift scan and posts its alerts.

A single replica needs no Kubernetes: `AlwaysLeader`. With `leader.enabled`, replicas elect one
leader through a Kubernetes Lease (`LeaseLeadership`, in `services.leader.lease`, where the reasons for not
using `kubernetes.leaderelection` are written down).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from services.leader.lease import LeaseLeadership
from services.settings.model import LeaderSettings, Settings

__all__ = ["AlwaysLeader", "Leadership", "LeaseLeadership", "build_leadership", "default_identity"]


class Leadership(Protocol):
    def is_leader(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None:
        """Release the lease if held (holderIdentity cleared, or left to expire) and join threads."""


class AlwaysLeader:
    """A single replica: always the leader, nothing to start or stop."""

    def is_leader(self) -> bool:
        return True

    def start(self) -> None:
        """Nothing to run."""

    def stop(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "AlwaysLeader()"


def default_identity(environ: Mapping[str, str] | None = None) -> str:
    """This replica's name in the Lease: the pod name (`POD_NAME`, from the downward API), else
    the host name and a random part, as client-go does: two processes on one machine (outside
    Kubernetes) must not both believe they hold the Lease."""
    env = os.environ if environ is None else environ
    return env.get("POD_NAME", "").strip() or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _api_client(leader: LeaderSettings) -> Any:
    configuration = k8s.Configuration()
    # Retry only connections that failed (the request never arrived); the elector retries the rest
    # on its own schedule, and a read retried by urllib3 could overrun the renew deadline.
    configuration.retries = urllib3.Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0)
    if leader.in_cluster:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return k8s.ApiClient(configuration)
    return k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(leader.kubeconfig),
        context=leader.context,
        persist_config=False,  # never write refreshed credentials back into the user's file
        client_configuration=configuration,
    )


def build_leadership(settings: Settings, identity: str) -> Leadership:
    """`AlwaysLeader` unless `leader.enabled`; then a (not yet started) `LeaseLeadership`.

    Raises `kubernetes.config.ConfigException` (or OSError) when the kubeconfig or the in-cluster
    service account cannot be loaded: a replica that cannot elect must not start as a leader.
    """
    leader = settings.leader
    if not leader.enabled:
        return AlwaysLeader()
    return LeaseLeadership(
        _api_client(leader),
        namespace=leader.namespace,
        name=leader.lease_name,
        identity=identity,
        lease_duration=leader.lease_duration,
        renew_deadline=leader.renew_deadline,
        retry_period=leader.retry_period,
    )
