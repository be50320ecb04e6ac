"""Connect to a Dask cluster: ``local`` / ``local:N`` (a LocalCluster of worker processes) or a
running scheduler's address (``tcp://HOST:8786``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from distributed import Client, LocalCluster

LOCAL = re.compile(r"^local(?::(\d+))?$")
ADDRESS = re.compile(r"^(tcp|tls|ws|wss|ucx)://[^\s/]+:\d+$")
THREADS_PER_WORKER = 1  # the feature kernel is one thread; more threads share one GIL-held pass


@dataclass(frozen=True)
class ClusterSpec:
    """Where to compute: a local cluster of ``workers`` processes, or a scheduler ``address``."""

    workers: int | None = None
    address: str | None = None
    memory_limit: str | None = None

    @classmethod
    def parse(cls, text: str, memory_limit: str | None = None) -> ClusterSpec:
        """``local``, ``local:N`` or ``tcp://HOST:PORT``; anything else is a clear error."""
        text = text.strip()
        match = LOCAL.match(text)
        if match:
            workers = int(match.group(1)) if match.group(1) else None
            if workers is not None and workers < 1:
                raise ValueError(f"--cluster {text!r}: local:N needs N >= 1")
            return cls(workers=workers, memory_limit=memory_limit)
        if ADDRESS.match(text):
            return cls(address=text)
        raise ValueError(f"--cluster {text!r}: use local, local:N or a scheduler address such "
                         "as tcp://HOST:8786")


@dataclass(frozen=True)
class ClusterSize:
    """What the run had: workers, threads and memory limit per worker (bytes, 0 = none)."""

    workers: int
    threads: int
    memory_limit: int

    def as_params(self) -> dict[str, int]:
        return {"cluster_workers": self.workers, "cluster_threads": self.threads,
                "cluster_worker_memory_limit": self.memory_limit}


def cluster_size(client: Client) -> ClusterSize:
    """The workers connected now, their threads and the smallest memory limit among them."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    limits = [int(w.get("memory_limit") or 0) for w in workers]
    return ClusterSize(workers=len(limits), threads=sum(int(w["nthreads"]) for w in workers),
                       memory_limit=min(limits) if limits else 0)


@contextmanager
def connect(spec: ClusterSpec, say: Callable[[str], None] = print) -> Iterator[Client]:
    """A client on the cluster; a local cluster is started (its dashboard address is told to
    ``say``) and closed afterwards, a remote one is only connected to."""
    if spec.address is not None:
        with Client(spec.address) as client:
            say(f"connected to {spec.address}; dashboard {client.dashboard_link}")
            yield client
        return
    with LocalCluster(n_workers=spec.workers, threads_per_worker=THREADS_PER_WORKER,
                      processes=True, memory_limit=spec.memory_limit or "auto",
                      dashboard_address="127.0.0.1:0", host="127.0.0.1") as cluster, \
            Client(cluster) as client:
        say(f"local Dask cluster: {len(cluster.workers)} worker processes; dashboard "
            f"{client.dashboard_link}")
        yield client
