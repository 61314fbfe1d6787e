"""What a reproduction is: a paper's claim, the paper's number, ours, and a verdict.

A reproduction is one small module in this package that subclasses
``Reproduction`` and registers it by name::

    @REPRODUCTIONS.register("toy")
    class ToyReproduction(Reproduction):
        title = "..."; paper = "..."; claim = "..."; paper_value = "..."
        def run(self, seeds, progress=print, **options) -> ReproductionResult: ...

``run`` does the experiment on embedded data and returns a
``ReproductionResult``: one ``ClaimRow`` per claim checked (claim, paper,
ours, verdict), never leaving out a miss, plus whatever the figures need
(``details``, plain JSON). ``python -m mtlcore reproduce NAME`` prints the
table and writes the result as JSON; the app shows the stored results.
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..registry import Registry

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)


@dataclass(frozen=True)
class ClaimRow:
    """One claim checked: what the paper says and finds, what we find, and the verdict."""

    claim: str
    paper: str
    ours: str
    verdict: str  # one of VERDICTS
    note: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"A claim's verdict is one of {', '.join(VERDICTS)}, got {self.verdict!r}.")


@dataclass
class ReproductionResult:
    """A reproduction's table and the data behind its figures, as written to result.json."""

    name: str
    title: str
    paper: str
    rows: list[ClaimRow]
    seeds: int
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    machine: str = field(default_factory=lambda: f"{platform.machine()} {platform.processor() or ''}".strip())

    @property
    def verdict(self) -> str:
        """The whole reproduction: reproduced only if every claim is; not reproduced if any is not."""
        verdicts = {row.verdict for row in self.rows}
        if NOT_REPRODUCED in verdicts:
            return NOT_REPRODUCED
        return REPRODUCED if verdicts == {REPRODUCED} else INCONCLUSIVE

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["verdict"] = self.verdict
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "ReproductionResult":
        fields = {k: v for k, v in document.items() if k != "verdict"}
        fields["rows"] = [ClaimRow(**row) for row in document["rows"]]
        return cls(**fields)

    def write(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def read(cls, path: Path | str) -> "ReproductionResult":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def table(self) -> str:
        """The printed table: claim, paper, ours, verdict, one claim per block of lines."""
        lines = [f"{self.title}", f"  {self.paper}", ""]
        width = max(len("claim"), *(len(r.claim) for r in self.rows)) if self.rows else 5
        width = min(width, 60)
        for row in self.rows:
            lines.append(f"- {row.claim}")
            lines.append(f"    paper:   {row.paper}")
            lines.append(f"    ours:    {row.ours}")
            lines.append(f"    verdict: {row.verdict.upper()}" + (f"  ({row.note})" if row.note else ""))
        lines += ["", f"Overall: {self.verdict} · {self.seconds:.0f} s on this machine"]
        return "\n".join(lines)


class Reproduction:
    """Base class: a paper's claim and how to check it. Subclasses set the class attributes and ``run``."""

    #: One line naming what is reproduced.
    title: ClassVar[str] = ""
    #: The paper(s), as a citation.
    paper: ClassVar[str] = ""
    #: The claim in one sentence.
    claim: ClassVar[str] = ""
    #: The paper's number or trend, in words.
    paper_value: ClassVar[str] = ""
    #: Seeds when the command line gives none.
    default_seeds: ClassVar[int] = 5
    #: A rough duration on a 2-core laptop CPU, for --list.
    expected_minutes: ClassVar[float] = 5.0

    def run(self, seeds: int, progress: Callable[[str], None] = lambda line: None,
            **options: Any) -> ReproductionResult:
        raise NotImplementedError


REPRODUCTIONS: Registry[type[Reproduction]] = Registry("reproduction")


def claim_verdict(observed: str, claimed: str) -> str:
    """A claim about a difference, judged by the lab's one verdict rule (``mtlcore.verdicts``).

    ``observed``: the three-way verdict of our seeds (helps / within noise /
    hurts / one seed); ``claimed``: the one the paper reports (helps or
    hurts). The same: reproduced; the opposite: not reproduced; noise or a
    single seed: inconclusive.
    """
    from ..verdicts import HELPS, HURTS

    if observed == claimed:
        return REPRODUCED
    if {observed, claimed} == {HELPS, HURTS}:
        return NOT_REPRODUCED
    return INCONCLUSIVE
