# The types of the native tier (ingest/_otlpscan.c, a C extension the checker cannot read): what
# scan() and format_double() take and give, as the C code's scan_doc says. Kept beside the C file:
# a change of scan()'s result changes both.
from _typeshed import ReadableBuffer

class Blob:
    """Column memory of a scan, exported without a copy (the buffer protocol)."""

    def __buffer__(self, flags: int, /) -> memoryview: ...

# (line, resource_off, resource_len, scope_off, scope_len, lib_off, lib_len, rows, records_end);
# offsets -1: absent; records_end: one past the ']' of the group's records array
Group = tuple[int, int, int, int, int, int, int, int, int]
# (validity bitmap or None, int32 offsets, data); an empty buffer is b""
StringColumn = tuple[bytes | None, Blob | bytes, Blob | bytes]
# (validity bitmap or None, int64 values)
IntColumn = tuple[bytes | None, Blob | bytes]
# (is_int flag a promoted column, ((attribute name, column, priority), ...))
Promoted = tuple[tuple[bool, ...], tuple[tuple[str, int, int], ...]]

def scan(
    data: ReadableBuffer, promoted: Promoted, /
) -> tuple[
    int,  # span rows
    int,  # lines
    list[Group],  # span groups
    list[tuple[int, int, int]],  # declined lines: (line, start, end)
    dict[str, StringColumn],
    dict[str, IntColumn],
    dict[int, StringColumn],  # promoted string columns by column index
    dict[int, IntColumn],  # promoted integer columns by column index
    int,  # log rows
    list[Group],  # log groups
    dict[str, StringColumn],
    dict[str, IntColumn],
]: ...
def format_double(x: float, /) -> bytes: ...
def line_close(data: ReadableBuffer, start: int, head: ReadableBuffer, /) -> int: ...
