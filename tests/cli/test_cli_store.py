"""`hooklab store copy` as a person moving a history meets it: a typo in the source is an
error, not an empty copy, and a copy that cannot keep the management API's ids says so."""

from __future__ import annotations

from pathlib import Path

from cli_support import TEMPLATE, base_env, run_cli

from hooklab import Workspace


def home_with_a_webhook(home: Path) -> Workspace:
    ws = Workspace(home / "hooklab.db")
    ws.create_webhook("models", TEMPLATE)
    return ws


def test_a_source_that_does_not_exist_is_refused_and_not_created(tmp_path: Path) -> None:
    env = base_env()
    for missing in (tmp_path / "no-such-home", tmp_path / "typo.db"):
        done = run_cli(env, "store", "copy", str(missing), str(tmp_path / "copy.db"))
        assert done.returncode == 2
        [line] = done.stderr.splitlines()
        assert f"no store at {missing}: not a home folder, a SQLite file or a URL" in line
        assert not missing.exists()
        assert not (tmp_path / "copy.db").exists()


def test_a_folder_without_a_store_is_named(tmp_path: Path) -> None:
    (tmp_path / "served-from-postgresql").mkdir()
    done = run_cli(
        base_env(),
        "store",
        "copy",
        str(tmp_path / "served-from-postgresql"),
        str(tmp_path / "x.db"),
    )
    assert done.returncode == 2
    assert "served-from-postgresql has no hooklab.db" in done.stderr
    assert not (tmp_path / "served-from-postgresql" / "hooklab.db").exists()


def test_a_copy_into_a_used_store_says_its_management_ids_differ(tmp_path: Path) -> None:
    source = home_with_a_webhook(tmp_path / "home")
    ids = (source.account_id, source.workspace_id)
    source.close()
    used = Workspace(tmp_path / "used.db")
    assert (used.account_id, used.workspace_id) != ids  # made on first use
    used.close()

    into_used = run_cli(
        base_env(), "store", "copy", str(tmp_path / "home"), str(tmp_path / "used.db")
    )
    assert into_used.returncode == 0, into_used.stderr
    assert "keeps its own account and workspace ids" in into_used.stdout

    into_new = run_cli(
        base_env(), "store", "copy", str(tmp_path / "home"), str(tmp_path / "new.db")
    )
    assert into_new.returncode == 0, into_new.stderr
    assert "keeps its own" not in into_new.stdout
    copied = Workspace(tmp_path / "new.db")
    assert (copied.account_id, copied.workspace_id) == ids
    assert [hook.name for hook in copied.list_webhooks()] == ["models"]
    copied.close()
