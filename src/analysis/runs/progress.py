"""Progress of a batch: a tqdm bar on a terminal, and one line per state change."""

from __future__ import annotations

import sys

from analysis.runs.manifest import STATUS_FAILED, STATUS_OK
from analysis.runs.worker import describe_failure


class Progress:
    """A tqdm bar of overall progress (on a terminal) plus one line per state change.

    The lines ('running', 'ok', 'FAILED') make a readable log when stderr is not a terminal;
    the bar, which rewrites itself, is shown only on a terminal.
    """

    def __init__(self, total: int, enabled: bool, stream=None):
        from tqdm.auto import tqdm

        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.total = total
        self.done = 0
        self.counts = {"queued": total, "running": 0, STATUS_OK: 0, STATUS_FAILED: 0}
        tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = tqdm(
            total=total, unit="run", desc="runs", file=self.stream, disable=not tty, leave=True
        )
        self.width = len(str(total))

    def _line(self, text: str) -> None:
        if self.enabled:
            self.bar.write(text, file=self.stream)

    def _refresh(self) -> None:
        self.bar.set_postfix(self.counts, refresh=True)

    def running(self, run) -> None:
        self.counts["queued"] -= 1
        self.counts["running"] += 1
        self._line(f"{'':{2 * self.width + 3}} running  {run.id}")
        self._refresh()

    def finished(self, res) -> None:
        self.counts["running"] -= 1
        self.counts[res.status] += 1
        self.done += 1
        extra = f"  ({res.duration_s:.1f} s)" if res.duration_s is not None else ""
        if res.attempts > 1:
            extra += f"  after {res.attempts} kernel starts"
        label = "ok      " if res.status == STATUS_OK else "FAILED  "
        self._line(f"[{self.done:>{self.width}}/{self.total}] {label} {res.run.id}{extra}")
        if res.status == STATUS_FAILED and self.enabled:
            for ln in describe_failure(res.error or {}).splitlines():
                self._line(" " * (2 * self.width + 4) + ln)
        self.bar.update(1)
        self._refresh()

    def close(self) -> None:
        self.bar.close()
