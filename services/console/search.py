"""Substring search over insights, deals and accounts: a trigram index in the console's store
(SQLite: an FTS5 `trigram` table; PostgreSQL: a table with a pg_trgm index, its `rowid`
column standing for the FTS rowid).

`LIKE '%acme%'` over 100,000 titles and descriptions reads every row (about a second here);
the trigram index answers the same question from its own index. Each document is one row of
`console_search_docs` (kind, key) whose id is the index's rowid, so a changed insight
replaces its own entry. Insights are caught up incrementally by `updated_at` (a bounded
amount on each search, the rest by the background timer); deals and accounts are rewritten
with the directory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import structlog

from services.common.stores.database import Connection, Database, Dialect

log = structlog.get_logger("console.search")

INSIGHT, DEAL, ACCOUNT = "insight", "deal", "account"
# Shorter text has no trigram to look up (the index would read every row): it matches ids only.
MIN_SEARCH = 3
BATCH = 5_000


def search_params(text: str) -> list[str]:
    """The two bound values of `matching` (`Dialect.contains_text`): a pattern for the trigram
    index (its `%` and `_` match anything: SQLite's index takes no ESCAPE clause) and the
    text itself, lower-cased, which each candidate must contain literally."""
    return [f"%{text}%", text.lower()]


def search_clause(
    dialect: Dialect, kind: str, text: str, *id_columns: str
) -> tuple[str, list[str]]:
    """The WHERE term (and its values) matching `text` for rows of `kind`: through the trigram
    index, whose key is `id_columns[0]`; text shorter than MIN_SEARCH matches the ids only."""
    if len(text) < MIN_SEARCH:
        return "(" + " OR ".join(f"{c} = ?" for c in id_columns) + ")", [text] * len(id_columns)
    return f"{id_columns[0]} IN ({matching(dialect, kind)})", search_params(text)


def matching(dialect: Dialect, kind: str) -> str:
    """SQL for the keys of `kind` whose text holds the searched text (two `?`, see
    `search_params`). The trigram index is asked first and its rows looked up by id (kind
    kept off its index, so SQLite does not walk every document of the kind instead)."""
    return (
        "SELECT key FROM console_search_docs WHERE id IN (SELECT rowid FROM console_search "
        f"WHERE {dialect.contains_text('body')}) AND {dialect.unindexed('kind')} = '{kind}'"
    )


class SearchIndex:
    def __init__(self, store: Database) -> None:
        self._store = store
        self._lock = threading.Lock()

    def catch_up(self, limit: int | None = None) -> int:
        """Index the insights changed since the last run (at most `limit`); returns how many."""
        done = 0
        with self._lock:
            while limit is None or done < limit:
                batch = BATCH if limit is None else min(BATCH, limit - done)
                found = self._insight_batch(batch)
                done += found
                if found < batch:
                    break
        if done and limit is None:
            log.info("search_caught_up", insights=done)
        return done

    def _insight_batch(self, batch: int) -> int:
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT mark FROM console_search_mark WHERE kind = ?", (INSIGHT,)
            ).fetchone()
            mark = row["mark"] if row else ""
            rows = conn.execute(
                "SELECT i.insight_id, i.updated_at, i.title || ' ' || i.description || ' ' || "
                "i.account_id || ' ' || COALESCE(i.opportunity_id, '') || ' ' || i.insight_id "
                "|| ' ' || COALESCE(s.name, '') AS body FROM revops_ai_insights i "
                "LEFT JOIN console_subjects s ON s.subject_key = i.subject_key "
                "WHERE i.updated_at > ? ORDER BY i.updated_at LIMIT ?",
                (mark, batch),
            ).fetchall()
            if not rows:
                return 0
            self._write(conn, INSIGHT, ((r["insight_id"], r["body"]) for r in rows))
            conn.execute(
                "INSERT INTO console_search_mark (kind, mark) VALUES (?, ?) "
                "ON CONFLICT (kind) DO UPDATE SET mark = excluded.mark",
                (INSIGHT, rows[-1]["updated_at"]),
            )
        return len(rows)

    def rewrite_directory(self) -> None:
        """Deals and accounts as the directory now has them; insights re-read (their subject
        names may have changed)."""
        with self._lock, self._store.transaction() as conn:
            for kind in (DEAL, ACCOUNT):
                conn.execute(
                    "DELETE FROM console_search WHERE rowid IN "
                    "(SELECT id FROM console_search_docs WHERE kind = ?)",
                    (kind,),
                )
                conn.execute("DELETE FROM console_search_docs WHERE kind = ?", (kind,))
            deals = conn.execute(
                "SELECT d.opportunity_id, d.name || ' ' || d.opportunity_id || ' ' || "
                "COALESCE(a.name, '') AS body FROM console_deals d "
                "LEFT JOIN console_accounts a ON a.account_id = d.account_id"
            ).fetchall()
            self._write(conn, DEAL, ((r[0], r[1]) for r in deals))
            accounts = conn.execute(
                "SELECT account_id, name || ' ' || account_id FROM console_accounts"
            ).fetchall()
            self._write(conn, ACCOUNT, ((r[0], r[1]) for r in accounts))
            conn.execute("DELETE FROM console_search_mark WHERE kind = ?", (INSIGHT,))

    @staticmethod
    def _write(conn: Connection, kind: str, docs: Iterable[tuple[str, str]]) -> None:
        """Each document's text, replacing what its id had (an FTS5 table takes no upsert)."""
        for key, body in docs:
            doc_id = conn.execute(
                "INSERT INTO console_search_docs (kind, key) VALUES (?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET kind = excluded.kind RETURNING id",
                (kind, key),
            ).fetchone()[0]
            conn.execute("DELETE FROM console_search WHERE rowid = ?", (doc_id,))
            conn.execute("INSERT INTO console_search (rowid, body) VALUES (?, ?)", (doc_id, body))
