"""What a scenario is given: the settings, a temporary directory, its progress bar."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import Progress, TaskID

from hotport.bench.settings import BenchSettings


@dataclass
class Ctx:
    settings: BenchSettings
    tmp: Path
    progress: Progress
    task: TaskID
    name: str
    _dbs: itertools.count[int] = field(default_factory=itertools.count)

    def total(self, steps: int) -> None:
        self.progress.update(self.task, total=steps, completed=0)

    def say(self, text: str) -> None:
        self.progress.update(self.task, description=f"{self.name:<12} {text}")

    def advance(self, steps: int = 1) -> None:
        self.progress.advance(self.task, steps)

    def db(self, label: str) -> Path:
        return self.tmp / f"{self.name}-{label}-{next(self._dbs)}.db"
