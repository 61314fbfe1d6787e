"""One streaming callback, two sinks: a run sent to the Ray mailbox carries what a run written into the store does.

A local worker streams a run into SQLite (StoreCallback: the streaming
callback over a StoreSink); a task on a Ray cluster streams it into the
dispatcher's mailbox (MailboxCallback: the same callback over a
MailboxSink). Ray itself is optional, so the mailbox side runs here on a
stand-in for the few Ray calls it makes (an actor is a plain object, a
remote call returns its value), which is enough to compare what arrives.
"""
import importlib
import io
import sys
import types

import pytest
import torch

import mtlcore.runs
from mtlcore.config import ExperimentConfig
from mtlcore.engine import fit
from mtlcore.runs import RunStore, load_checkpoint
from mtlcore.runs.callback import StoreCallback, StreamingCallback
from mtlcore.runs.processes import worker_name


def stand_in_ray() -> types.ModuleType:
    """Ray's ``remote``, ``get`` and actor handles, in this process."""
    ray = types.ModuleType("ray")

    class Handle:  # an actor: its methods are called at once, their value is the "object ref"
        def __init__(self, actor):
            self._actor = actor

        def __getattr__(self, name):
            return types.SimpleNamespace(remote=getattr(self._actor, name))

    class Remote:
        def __init__(self, target):
            self.target = target

        def remote(self, *args, **kwargs):
            made = self.target(*args, **kwargs)
            return Handle(made) if isinstance(self.target, type) else made

    def remote(*args, **options):
        return Remote(args[0]) if len(args) == 1 and callable(args[0]) and not options else Remote

    ray.remote = remote
    ray.get = lambda ref, timeout=None: ref
    return ray


@pytest.fixture
def ray_remote(monkeypatch):
    """mtlcore.runs.ray_remote imported over the stand-in; forgotten afterwards (the real Ray may import it)."""
    monkeypatch.setitem(sys.modules, "ray", stand_in_ray())
    sys.modules.pop("mtlcore.runs.ray_remote", None)
    module = importlib.import_module("mtlcore.runs.ray_remote")
    yield module
    sys.modules.pop("mtlcore.runs.ray_remote", None)
    if getattr(mtlcore.runs, "ray_remote", None) is module:
        delattr(mtlcore.runs, "ray_remote")


def test_a_run_streamed_to_the_mailbox_carries_what_the_store_gets(ray_remote, tmp_path, tiny):
    config = ExperimentConfig.from_flat({**tiny, "train.epochs": 2})
    store = RunStore(tmp_path / "home")
    store.add_run(config)
    record = store.claim_next(worker_name())  # as a local worker takes it
    fit(config, callbacks=[StoreCallback(store, record.id, claim=record.claim)])

    mailbox = ray_remote.Mailbox.remote()
    callback = ray_remote.MailboxCallback(mailbox, "on-the-cluster")
    assert isinstance(callback, StreamingCallback)  # one callback, another sink
    fit(config, callbacks=[callback])
    messages, checkpoint = mailbox.take.remote(["on-the-cluster"])["on-the-cluster"]

    assert messages[0] == ("device", "cpu")
    steps = [log for kind, *rest in messages if kind == "steps" for log in rest[0]]
    epochs = [rest[0] for kind, *rest in messages if kind == "epoch"]
    assert [s["step"] for s in steps] == [s["step"] for s in store.step_metrics(record.id)]
    assert [e["epoch"] for e in epochs] == [e["epoch"] for e in store.epoch_metrics(record.id)] == [1, 2]
    assert all("t" in log for log in steps + epochs)
    # The checkpoint travels as the bytes of the same file format.
    sent = torch.load(io.BytesIO(checkpoint), weights_only=True)
    assert sent["model"].keys() == load_checkpoint(store.checkpoint_path(record.id))["model"].keys()


def test_a_stop_asked_through_the_mailbox_stops_the_run_as_a_cancel_in_the_store_does(ray_remote, tiny):
    config = ExperimentConfig.from_flat({**tiny, "train.epochs": 3})
    mailbox = ray_remote.Mailbox.remote()
    mailbox.request_stop.remote("stopped")
    result = fit(config, callbacks=[ray_remote.MailboxCallback(mailbox, "stopped")])
    assert result.status == "cancelled"
    messages, checkpoint = mailbox.take.remote(["stopped"])["stopped"]
    assert [m for m in messages if m[0] == "epoch"] == []  # stopped within its first epoch
    assert checkpoint is not None  # and its checkpoint kept, as a local run's is
