# The types of the span key set's native loops (ingest/_spankeys.c, a C extension the checker cannot
# read), as the C code's docstrings say. Kept beside the C file: a change of a signature changes both.
from _typeshed import ReadableBuffer, WriteableBuffer

def fingerprint(words: ReadableBuffer, k: int, h1: WriteableBuffer, h2: WriteableBuffer, /) -> None: ...
def table_find(
    h1s: ReadableBuffer,
    h2s: ReadableBuffer,
    used: ReadableBuffer,
    slots: int,
    q1: ReadableBuffer,
    q2: ReadableBuffer,
    found: WriteableBuffer,
    /,
) -> None: ...
def table_put(
    h1s: WriteableBuffer,
    h2s: WriteableBuffer,
    used: WriteableBuffer,
    slots: int,
    q1: ReadableBuffer,
    q2: ReadableBuffer,
    /,
) -> None: ...
def bloom(
    words: WriteableBuffer, size: int, h2: ReadableBuffer, maybe: WriteableBuffer | None, /
) -> None: ...
