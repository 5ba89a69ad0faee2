"""Large batches of learnings into PostgreSQL through binary ``COPY``.

An upsert per row sends every vector as text (``"[0.0123,-0.0456,…]"``, about 3.5 kB for 384
dimensions) that the server parses back into floats. For a batch, the rows are instead copied in
PostgreSQL's binary format into a temporary staging table — vectors in pgvector's own binary
layout (dimensions, then big-endian float32s), 1.5 kB each, nothing to format or parse — and
moved into ``learnings`` with one ``INSERT … SELECT … ON CONFLICT`` (the same update as a single
write, so triggers, history, versions and generated columns behave identically).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import ValidationError

if TYPE_CHECKING:
    import psycopg

__all__ = ["COPY_MIN_ROWS", "copy_learnings"]

#: Batches of at least this many rows are copied; smaller ones are plain upserts.
COPY_MIN_ROWS = 100
_JSON = frozenset({"content", "provenance"})


def _binary_vector(value: Any) -> bytes | None:
    if value is None:
        return None
    try:
        array = np.asarray(value, dtype=">f4")
    except (TypeError, ValueError):
        array = np.empty(0, dtype=">f4")
    if array.ndim != 1 or len(array) == 0 or not np.isfinite(array).all():
        raise ValidationError("An embedding must be a non-empty sequence of finite numbers.")
    return struct.pack(">HH", len(array), 0) + array.tobytes()


def _register_vector_dumper(cur: psycopg.Cursor[Any], vector_oid: int) -> None:
    """Let binary ``COPY`` send pre-encoded vectors into columns of type ``vector``."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class VectorBinaryDumper(Dumper):
        format = Format.BINARY
        oid = vector_oid

        def dump(self, obj: Any) -> bytes:
            return bytes(obj)

    # By type oid only: used where COPY's set_types names the column type, nowhere else.
    cur.adapters.register_dumper(None, VectorBinaryDumper)


def copy_learnings(
    cur: psycopg.Cursor[Any],
    columns: Sequence[str],
    rows: Sequence[list[Any]],
    vectors: Sequence[Any],
    upsert_tail: str,
) -> list[Any]:
    """Upsert ``rows`` (values of ``columns``; JSON as text) with ``vectors`` as embeddings.

    ``upsert_tail`` is the ``ON CONFLICT … RETURNING …`` clause, the update of the single-row
    upsert; returns the rows it returned.
    """
    select = ", ".join(f"{c}::text AS {c}" if c in _JSON else c for c in columns)
    cur.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS lm_stage ON COMMIT DELETE ROWS AS "
        f"SELECT {select} FROM learnings WITH NO DATA".encode()
    )
    types = [
        int(r["t"]) if isinstance(r, dict) else int(r[0])
        for r in cur.execute(
            b"SELECT a.atttypid::int AS t FROM unnest(%s::text[])"
            b" WITH ORDINALITY c(name, i) JOIN pg_attribute a"
            b" ON a.attrelid = 'lm_stage'::regclass AND a.attname = c.name ORDER BY c.i",
            (list(columns),),
        ).fetchall()
    ]
    at = list(columns).index("embedding")
    _register_vector_dumper(cur, types[at])
    names = ", ".join(columns)
    with cur.copy(f"COPY lm_stage ({names}) FROM STDIN (FORMAT BINARY)".encode()) as cp:
        cp.set_types(types)
        for values, vector in zip(rows, vectors, strict=True):
            values = list(values)
            values[at] = _binary_vector(vector)
            cp.write_row(values)
    cast = ", ".join(f"{c}::jsonb" if c in _JSON else c for c in columns)
    returned = cur.execute(
        f"INSERT INTO learnings ({names}) SELECT {cast} FROM lm_stage {upsert_tail}".encode()
    ).fetchall()
    cur.execute(b"TRUNCATE lm_stage")
    return returned
