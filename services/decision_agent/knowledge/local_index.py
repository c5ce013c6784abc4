"""A local knowledge index: SQLite FTS5 in memory, ranked by BM25.

Small (a few hundred passages), rebuilt at start-up from the files, so it can never be
stale; a query costs well under a millisecond. The Porter stemmer lets "declining" find
"decline". Titles weigh more than bodies.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence

from services.decision_agent.knowledge.documents import Chunk
from services.decision_agent.knowledge.port import Passage

TITLE_WEIGHT = 3.0
_WORD = re.compile(r"[a-z0-9]+")
MAX_QUERY_TERMS = 64


def fts_query(text: str) -> str:
    """Any of the text's words (each quoted: FTS5 operators in the text stay words)."""
    words = list(dict.fromkeys(_WORD.findall(text.lower())))[:MAX_QUERY_TERMS]
    return " OR ".join(f'"{w}"' for w in words)


class LocalKnowledgeIndex:
    backend = "local"

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.execute(
            "CREATE VIRTUAL TABLE passages USING fts5("
            "id UNINDEXED, applies UNINDEXED, title, body, tokenize='porter unicode61')"
        )
        self._conn.executemany(
            "INSERT INTO passages (id, applies, title, body) VALUES (?, ?, ?, ?)",
            [(c.id, " ".join(c.applies_to), c.title, c.text) for c in chunks],
        )
        self.size = len(chunks)

    def search(self, query: str, k: int, applies_to: str | None = None) -> list[Passage]:
        match = fts_query(query)
        if not match or k <= 0:
            return []
        # bm25() is lower for better matches; weights follow the column order.
        rows = self._conn.execute(
            "SELECT id, title, body, bm25(passages, 0, 0, ?, 1.0) AS rank FROM passages "
            "WHERE passages MATCH ? AND (? IS NULL OR instr(applies, ?) > 0) "
            "ORDER BY rank, id LIMIT ?",
            (TITLE_WEIGHT, match, applies_to, applies_to, k),
        ).fetchall()
        return [Passage(row[0], row[1], row[2], -float(row[3])) for row in rows]

    async def retrieve(self, query: str, k: int, applies_to: str | None = None) -> list[Passage]:
        return self.search(query, k, applies_to)
