"""What the web app shows right after another program commits: the scenario the web
tests run on every phase of the migration, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.services import WebServer

NEW_OBJECT = "Sh2-155"
NEW_NIGHT = "2031-10-05"


def commits_show_at_once(server: WebServer, add: Callable[[], None], remove: Callable[[], None]) -> None:
    """``add()`` commits one 600 s Ha light frame of NEW_OBJECT on NEW_NIGHT in a new
    session, ``remove()`` takes them away again; every total, list and chart follows at
    the very next request."""
    assert server.api("/healthz")["status"] == "ok"  # (it once made the app blind to later commits)
    before = server.api("/api/stats")
    sessions = server.api("/api/sessions")["total"]
    light = before["by_frame_type"]["LIGHT"]
    for _ in range(2):  # the second time from the cache
        assert server.api("/api/raw-files")["total"] == before["total_files"]
        assert f'<span class="value">{before["total_files"]}</span>' in server.get("/").text
    assert server.api(f"/api/raw-files?object={NEW_OBJECT}")["total"] == 0

    add()

    after = server.api("/api/stats")
    assert after["total_files"] == before["total_files"] + 1
    assert after["by_frame_type"]["LIGHT"] == light + 1
    assert after["top_objects"][NEW_OBJECT] == 1
    assert f'<span class="value">{before["total_files"] + 1}</span>' in server.get("/").text
    assert server.api("/api/raw-files")["total"] == before["total_files"] + 1
    newest = server.api("/api/raw-files?per_page=1")["items"][0]  # the newest night first
    assert (newest["object"], newest["obs_date"]) == (NEW_OBJECT, NEW_NIGHT)
    assert server.api(f"/api/raw-files?object={NEW_OBJECT}")["total"] == 1
    assert NEW_OBJECT in server.api("/api/raw-files?per_page=1&sort=object&order=desc")["items"][0]["object"]
    charts = server.api("/api/charts")
    night = [b for b in charts["over_time"]["bars"] if b["first"] <= NEW_NIGHT <= b["last"]]
    assert night and night[0]["files"] == 1 and night[0]["seconds"] == 600.0
    target = next(r for r in charts["per_target"]["rows"] if r["object"] == NEW_OBJECT)
    assert target["segments"] == [{"filter": "Ha", "files": 1, "seconds": 600.0}]
    assert server.api("/api/sessions")["total"] == sessions + 1
    assert server.api(f"/api/sessions?object={NEW_OBJECT}")["total"] == 1
    assert NEW_OBJECT in server.get("/raw-files").text  # the object is now a choice

    assert server.api("/healthz")["status"] == "ok"
    remove()

    assert server.api("/api/stats")["total_files"] == before["total_files"]
    assert server.api(f"/api/raw-files?object={NEW_OBJECT}")["total"] == 0
    assert server.api("/api/sessions")["total"] == sessions
    assert not any(r["object"] == NEW_OBJECT for r in server.api("/api/charts")["per_target"]["rows"])
    for _ in range(3):  # commit after commit, each closing its connection, /healthz between
        assert server.api("/healthz")["status"] == "ok"
        add()
        assert server.api("/api/stats")["total_files"] == before["total_files"] + 1
        remove()
        assert server.api("/api/stats")["total_files"] == before["total_files"]
