"""DatabaseManager.transaction(): an atomic read-modify-write (no lost update)."""

from __future__ import annotations

import threading
from pathlib import Path

from catalog.manager import DatabaseManager
from catalog.models import SystemSettings
from catalog.service import DatabaseService


def test_concurrent_increments_are_not_lost(any_db: Path) -> None:
    db = DatabaseManager(any_db)
    DatabaseService(db).set_setting("counter", "0")

    def increment() -> None:
        for _ in range(40):
            with db.transaction() as s:
                row = s.get(SystemSettings, "counter")
                row.value = str(int(row.value) + 1)

    threads = [threading.Thread(target=increment) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert DatabaseService(db).get_setting("counter") == 160  # stored text, converted back
    assert DatabaseService(db).get_all_settings()["counter"] == "160"
    db.close()
