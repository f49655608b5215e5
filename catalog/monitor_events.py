"""File-system events into the monitor's queue: the watchdog handler and observer.

Events only queue work ("created", "modified", "closed", "attrib", "moved",
"deleted"); nothing slow happens on the watchdog thread. "attrib" (a
``chmod``, a ``touch``) matters for a file parked as unreadable: its mode and
ctime changed, so it is tried again. inotify is used where it starts,
polling otherwise (or when asked: network shares, some containers).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from catalog.monitor_queue import PathQueue
from migration.errors import UsageError
from migration.logs import get_logger

log = get_logger(__name__)


class QueueEvents(FileSystemEventHandler):
    """watchdog thread -> the monitor's queue (nothing slow happens here)."""

    def __init__(self, queue: PathQueue):
        self.queue = queue

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(getattr(event, "dest_path", "") or "")
        if event.is_directory:
            if kind in ("created", "moved"):
                self.queue.scan_folder(Path(dest or src))
            return
        if kind in ("created", "modified", "closed", "attrib"):
            self.queue.enqueue(Path(src))
        elif kind == "moved":
            self.queue.forget(Path(src))
            self.queue.enqueue(Path(dest))
        elif kind == "deleted":
            self.queue.forget(Path(src), deleted=True)


def start_observer(queue: PathQueue, *, poll: bool, poll_interval: float) -> tuple[str, Any]:
    """A started observer of ``queue.root`` feeding ``queue``, and its kind's name."""
    handler = QueueEvents(queue)
    kinds: list[tuple[str, Callable[[], BaseObserver]]] = [
        ("polling", lambda: PollingObserver(timeout=poll_interval))
    ]
    if not poll:
        kinds.insert(0, ("inotify", Observer))
    for name, make in kinds:
        observer = make()
        try:
            observer.schedule(handler, str(queue.root), recursive=True)
            observer.start()
        except OSError as exc:  # e.g. the inotify watch limit
            log.warning("monitor.observer_unavailable", observer=name, error=str(exc))
            continue
        return name, observer
    raise UsageError(f"Cannot watch {queue.root}: no file-system observer could start.")
