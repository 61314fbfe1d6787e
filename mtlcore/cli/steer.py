"""Live steering from a terminal: ``steer``, ``pause``, ``resume``, ``fork`` (mtlcore.runs.steering).

    python -m mtlcore steer RUN_ID --set loss.weights.shape=3 --set optim.lr=0.001
    python -m mtlcore pause RUN_ID          # the worker holds it between two steps
    python -m mtlcore resume RUN_ID
    python -m mtlcore fork RUN_ID --set optim.lr=0.0003 [--label NAME]   # prints the new run's id

As ``cancel``, these act as the machine's user, who may change anyone's run
(see mtlcore.owners); the store records "the machine's user" as who asked.
A change acts from the run's next step; ``runs --json`` and the Train page
show it, and the curves mark it.
"""
from __future__ import annotations

from .common import CommandError
from .runs import _add_home, _store


def register(subparsers) -> None:
    parser = subparsers.add_parser("steer", help="change a running run's loss weights or learning rate from its next step")
    parser.add_argument("run_id")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                        help="loss.weights.<task>=W or optim.lr=LR (repeatable)")
    _add_home(parser)
    parser.set_defaults(func=steer)
    for name, what in (("pause", "hold a running run between two steps"), ("resume", "let a paused run train on")):
        parser = subparsers.add_parser(name, help=what)
        parser.add_argument("run_id")
        _add_home(parser)
        parser.set_defaults(func=pause if name == "pause" else resume)
    parser = subparsers.add_parser("fork", help="queue a new run from a run's last saved weights with other settings")
    parser.add_argument("run_id")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                        help="a setting the fork changes (repeatable): weights, optimiser, epochs, regularisers")
    parser.add_argument("--label", help="the fork's label (default: the parent's, with the step)")
    _add_home(parser)
    parser.set_defaults(func=fork)


def _pairs(sets: list[str]) -> dict[str, str]:
    pairs = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--set takes KEY=VALUE (e.g. loss.weights.shape=2), not {item!r}.")
        pairs[key.strip()] = value.strip()
    return pairs


def _guarded(act):
    from ..runs import NotOwnerError, QueueFullError

    try:
        return act()
    except (ValueError, NotOwnerError, QueueFullError) as error:
        raise CommandError(str(error)) from None


def steer(args) -> int:
    from ..runs import steering

    store = _store(args)
    pairs = _pairs(args.sets)
    if not pairs:
        raise CommandError("Say what to change with --set, e.g. --set loss.weights.shape=2 or --set optim.lr=0.001.")
    for key, text in pairs.items():
        try:
            value = float(text)
        except ValueError:
            raise CommandError(f"{key} takes a number, not {text!r}.") from None
        print(_guarded(lambda: steering.steer(store, args.run_id, key, value)))
    return 0


def pause(args) -> int:
    from ..runs import steering

    print(_guarded(lambda: steering.pause(_store(args), args.run_id)))
    return 0


def resume(args) -> int:
    from ..runs import steering

    print(_guarded(lambda: steering.resume(_store(args), args.run_id)))
    return 0


def fork(args) -> int:
    from ..runs import Runner, steering

    runner = Runner(_store(args), max_workers=1)
    print(_guarded(lambda: steering.fork(runner, args.run_id, _pairs(args.sets), label=args.label)))
    return 0
