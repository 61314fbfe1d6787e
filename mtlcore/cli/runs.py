"""Background runs from a terminal: ``worker``, ``submit``, ``cancel``, ``delete``, ``runs``.

    python -m mtlcore worker                      # train queued runs, one after another
    python -m mtlcore submit --set tasks=shape,color --label baseline   # prints the run id
    python -m mtlcore runs                        # a table; --json for scripts
    python -m mtlcore cancel RUN_ID
    python -m mtlcore delete RUN_ID               # an ended run, with its metrics and checkpoint

All share the data folder given by ``--home`` (default: MTL_HOME, else
~/.mtl-lab) with the app.

The command line acts as the machine's own user (``Owner.machine()`` in
mtlcore.owners): whoever can run commands here can also open the data
folder's files, so ``cancel`` and ``delete`` may change anyone's run and say
that they acted as the machine's user. ``--owner NAME`` there is a guard
against a wrong id, not an identity: it refuses unless the run is shown
under that name. Runs queued by ``submit`` carry no browser key, so in the
app only the teacher can stop or delete them.
"""
from __future__ import annotations

import json
import sys
import time

from .common import CommandError, add_config_arguments, config_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser("worker", help="train queued background runs, one after another")
    _add_home(parser)
    parser.add_argument("--once", action="store_true", help="train at most one queued run, then exit")
    parser.add_argument("--idle-exit", type=float, metavar="SECONDS",
                        help="exit after this many seconds with nothing queued (default: wait forever)")
    parser.add_argument("--device", help="train on this device (e.g. cuda:1) unless a run asks for cpu")
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="train on a Ray cluster instead (auto, local or ray://host:10001); needs requirements-ray.txt")
    parser.set_defaults(func=worker)

    parser = subparsers.add_parser("submit", help="queue a background run; prints its id")
    add_config_arguments(parser)
    parser.add_argument("--label", required=True, help="a name for the run, shown in the app")
    parser.add_argument("--owner", default="anonymous",
                        help="the name the run is shown under (default: anonymous); it has no browser key, so in "
                             "the app only the teacher can stop or delete it")
    _add_home(parser)
    parser.set_defaults(func=submit)

    parser = subparsers.add_parser("cancel", help="stop a queued or running background run (as the machine's user)")
    parser.add_argument("run_id", metavar="ID")
    parser.add_argument("--owner", help="refuse unless the run is shown under this name")
    _add_home(parser)
    parser.set_defaults(func=cancel)

    parser = subparsers.add_parser("delete", help="delete an ended run with its metrics and checkpoint "
                                                  "(as the machine's user)")
    parser.add_argument("run_id", metavar="ID")
    parser.add_argument("--owner", help="refuse unless the run is shown under this name")
    _add_home(parser)
    parser.set_defaults(func=delete)

    parser = subparsers.add_parser("runs", help="list background runs, newest first")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--owner", help="only this person's runs")
    parser.add_argument("--state", action="append", metavar="STATE", help="only runs in this state (repeatable)")
    _add_home(parser)
    parser.set_defaults(func=list_runs)


def _add_home(parser) -> None:
    parser.add_argument("--home", metavar="DIR", help="the data folder (default: $MTL_HOME, else ~/.mtl-lab)")


def _store(args):
    from ..runs import RunStore, StoreError

    try:
        return RunStore(args.home)
    except StoreError as error:
        raise CommandError(str(error)) from None


def worker(args) -> int:
    from ..runs import run_worker

    _store(args)  # a clear sentence for an unwritable folder, before loading torch models
    if args.ray:
        return _ray_worker(args)
    from ..studies import advance_studies  # studies move on after every run, with no page open

    trained = run_worker(args.home, once=args.once, idle_exit=args.idle_exit, device=args.device,
                         after_each_run=[advance_studies])
    print(f"Worker stopped after training {trained} run(s).")
    return 0


def _ray_worker(args) -> int:
    """The Ray dispatcher: claims queued runs and trains them on the cluster at ``--ray``."""
    try:
        from ..runs.ray_dispatcher import run_ray_dispatcher
        import ray  # noqa: F401  (only to say clearly when it is missing)
    except ImportError:
        raise CommandError("--ray needs Ray: pip install -r requirements-ray.txt") from None
    # --once means "until the queue is empty" here: runs train side by side, not one at a time.
    idle_exit = 0.0 if args.once else args.idle_exit
    from ..studies import advance_studies

    ended = run_ray_dispatcher(args.home, args.ray, idle_exit=idle_exit, after_each_run=[advance_studies])
    print(f"Ray dispatcher stopped after {ended} run(s) ended.")
    return 0


def submit(args) -> int:
    from ..runs import QueueFullError, Runner

    store = _store(args)
    config = config_from_args(args)
    try:
        run_id = Runner(store, max_workers=1).submit(config, label=args.label, owner=args.owner)
    except QueueFullError as error:
        raise CommandError(str(error)) from None
    print(run_id)  # only the id on stdout, so scripts can capture it
    if not store.live_workers():
        print("Queued. No worker is running yet: start one with `python -m mtlcore worker`.", file=sys.stderr)
    return 0


def cancel(args) -> int:
    return _change(args, "stop", lambda runner, by: runner.cancel(args.run_id, by=by))


def delete(args) -> int:
    return _change(args, "delete", lambda runner, by: runner.delete(args.run_id, by=by))


def _change(args, verb: str, act) -> int:
    """Stop or delete a run as the machine's user, after the ``--owner`` guard; print what happened."""
    from ..owners import MACHINE_NAME, Owner, fold_name
    from ..runs import NotOwnerError, Runner, StoreError

    store = _store(args)
    try:
        if args.owner is not None:
            shown = store.get_run(args.run_id).owner
            if fold_name(shown) != fold_name(args.owner):
                raise CommandError(f"Only {shown} can {verb} this run. It is shown under {shown!r}, not "
                                   f"{args.owner!r}; leave out --owner to {verb} it as {MACHINE_NAME}.")
        print(act(Runner(store, max_workers=1), Owner.machine()))
    except (StoreError, NotOwnerError) as error:
        raise CommandError(str(error)) from None
    return 0


def list_runs(args) -> int:
    from ..runs import STATES

    for state in args.state or []:
        if state not in STATES:
            raise CommandError(f"Unknown state {state!r}; choose one of: {', '.join(STATES)}.")
    store = _store(args)
    runs = store.list_runs(owner=args.owner, states=args.state)
    places = store.queue_places() if any(run.state == "queued" for run in runs) else {}
    if args.json:
        print(json.dumps([_with_place(run.as_dict(), places.get(run.id)) for run in runs], indent=2))
    else:
        print(format_table(runs, places))
    _warn_of_damage(store)
    return 0


def _warn_of_damage(store) -> None:
    """Say on stderr when the store lost runs that their folders still hold (never forget them silently)."""
    from ..runs.integrity import quick_check

    for finding in quick_check(store):
        print(f"warning: {finding.sentence}", file=sys.stderr)


def _with_place(row: dict, place) -> dict:
    """A queued run's JSON row gains ``queue``: its position, the queue's length and the estimated start."""
    if place is not None:
        row["queue"] = {"position": place.position, "of": place.of, "estimated_start": place.estimated_start}
    return row


def format_table(runs, places=None) -> str:
    """Runs as an aligned table, one a line; a queued run's message is its place in the fair queue."""
    places = places or {}
    now = time.time()
    if not runs:
        return "No runs yet; queue one with `python -m mtlcore submit --label NAME`."
    header = ("ID", "LABEL", "OWNER", "STATE", "PROGRESS", "CREATED", "MESSAGE")
    rows = [header] + [
        (r.id, r.label, r.owner, r.state, f"{r.progress:.0%}",
         time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)),
         places[r.id].sentence(now) if r.id in places and not r.message else r.message)
        for r in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows)
    return "\n".join(line.rstrip() for line in lines)
