"""The ledger: an append-only log, hash-chained per municipality.

Each entry's hash covers its content and the previous entry's hash, so altering, removing,
inserting or reordering an entry breaks the chain at that entry. The head (last seq and hash)
is kept apart, so removing entries from the end is caught too; publishing the head outside
the database (`kiban ledger head`, then `kiban ledger verify --expect FILE`) lets an auditor
catch a rewrite of the whole chain or of its end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Insert, insert, select, update

from kiban.platform.tables import ledger_entries, ledger_heads

GENESIS = "0" * 64


def canonical(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=str).encode()


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def entry_hash(prev_hash: str, lgcode: str, seq: int, kind: str, subject: str,
               payload: Any, actor: str, recorded_at: str) -> str:
    body = canonical({"lgcode": lgcode, "seq": seq, "kind": kind, "subject": subject,
                      "payload": payload, "actor": actor, "recorded_at": recorded_at})
    return hashlib.sha256(prev_hash.encode() + b"\n" + body).hexdigest()


@dataclass(frozen=True)
class Problem:
    seq: int
    what: str  # "altered", "removed", "inserted", "reordered", "truncated"
    detail: str


def append(conn: Connection, lgcode: str, kind: str, subject: str, payload: Any,
           actor: str, at: datetime,
           also: Callable[[list[int]], Sequence[Insert]] | None = None) -> int:
    """Append one entry in the caller's transaction; returns its seq."""
    return append_many(conn, lgcode, [(kind, subject, payload)], actor, at, also)[0]


def append_many(conn: Connection, lgcode: str, items: list[tuple[str, str, Any]],
                actor: str, at: datetime,
                also: Callable[[list[int]], Sequence[Insert]] | None = None) -> list[int]:
    """Append entries in the caller's transaction; returns their seqs. `also` gives inserts
    that need the seqs (a change event naming its entry): on PostgreSQL they go to the
    server in the same statement as the entries and the head, so the head's lock, taken
    here, is held for two round trips and the COMMIT."""
    query = select(ledger_heads.c.seq, ledger_heads.c.hash).where(ledger_heads.c.lgcode == lgcode)
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        query = query.with_for_update()  # one writer per municipality's chain
    head = conn.execute(query).first()
    seq, prev = (head.seq, head.hash) if head else (0, GENESIS)
    recorded_at = at.isoformat()
    rows, seqs = [], []
    for kind, subject, payload in items:
        seq += 1
        h = entry_hash(prev, lgcode, seq, kind, subject, payload, actor, recorded_at)
        rows.append({"lgcode": lgcode, "seq": seq, "kind": kind, "subject": subject,
                     "payload": payload, "actor": actor, "recorded_at": recorded_at,
                     "prev_hash": prev, "hash": h})
        seqs.append(seq)
        prev = h
    extra = list(also(seqs)) if also else []
    if head and postgres and len(rows) == 1:
        # Data-modifying CTEs run once, to completion, whether or not the update reads them.
        # (One entry: a single-row VALUES, whose compiled form is cached.)
        move = (update(ledger_heads).where(ledger_heads.c.lgcode == lgcode)
                .values(seq=seq, hash=prev))
        for i, statement in enumerate([insert(ledger_entries).values(rows[0]), *extra]):
            move = move.add_cte(statement.cte(f"ledger_w{i}"))
        conn.execute(move)
        return seqs
    conn.execute(insert(ledger_entries), rows)
    if head:
        conn.execute(update(ledger_heads).where(ledger_heads.c.lgcode == lgcode)
                     .values(seq=seq, hash=prev))
    else:
        conn.execute(insert(ledger_heads).values(lgcode=lgcode, seq=seq, hash=prev))
    for statement in extra:
        conn.execute(statement)
    return seqs


def head(conn: Connection, lgcode: str) -> tuple[int, str]:
    row = conn.execute(select(ledger_heads.c.seq, ledger_heads.c.hash)
                       .where(ledger_heads.c.lgcode == lgcode)).first()
    return (row.seq, row.hash) if row else (0, GENESIS)


def entries(conn: Connection, lgcode: str, *, kind: str | None = None, subject: str | None = None,
            limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    query = select(ledger_entries).where(ledger_entries.c.lgcode == lgcode)
    if kind:
        query = query.where(ledger_entries.c.kind == kind)
    if subject:
        query = query.where(ledger_entries.c.subject == subject)
    query = query.order_by(ledger_entries.c.seq).limit(limit).offset(offset)
    return [dict(r._mapping) for r in conn.execute(query)]


def verify(conn: Connection, lgcode: str,
           expected_head: tuple[int, str] | None = None) -> list[Problem]:
    """Walk the chain in storage order and name every entry that does not fit. A head
    published earlier (seq, hash) must still be in the chain, with the same hash."""
    problems: list[Problem] = []
    prev, expected_seq = GENESIS, 1
    query = (select(ledger_entries).where(ledger_entries.c.lgcode == lgcode)
             .order_by(ledger_entries.c.seq))
    last_seq = 0
    for row in conn.execute(query).yield_per(5000):
        r = row._mapping
        recomputed = entry_hash(r["prev_hash"], lgcode, r["seq"], r["kind"], r["subject"],
                                r["payload"], r["actor"], r["recorded_at"])
        if r["seq"] > expected_seq:
            problems.append(Problem(expected_seq, "removed",
                                    f"entries {expected_seq}..{r['seq'] - 1} are missing"))
        if recomputed != r["hash"]:
            problems.append(Problem(r["seq"], "altered",
                                    "the entry's content does not match its hash"))
        elif r["prev_hash"] != prev and r["seq"] == expected_seq:
            problems.append(Problem(r["seq"], "inserted or reordered",
                                    "the entry does not follow the previous entry's hash"))
        prev, expected_seq, last_seq = r["hash"], r["seq"] + 1, r["seq"]
    if expected_head is not None:
        seq, digest = expected_head
        found = conn.execute(select(ledger_entries.c.hash).where(
            ledger_entries.c.lgcode == lgcode, ledger_entries.c.seq == seq)).scalar()
        if found != digest:
            problems.append(Problem(seq, "removed" if found is None else "altered",
                                    "the published head is no longer in the chain"))
    head_seq, head_hash = head(conn, lgcode)
    if head_seq > last_seq:
        problems.append(Problem(last_seq + 1, "removed",
                                f"the chain ends at {last_seq} but its head is at {head_seq}"))
    elif head_seq and (head_seq, head_hash) != (last_seq, prev):
        problems.append(Problem(head_seq, "altered", "the chain does not end at its head"))
    return problems
