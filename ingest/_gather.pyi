# The type of the writer's native gather (ingest/_gather.c, a C extension the checker cannot read), as
# the C code's docstring says. Kept beside the C file: a change of the signature changes both.
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
from _typeshed import ReadableBuffer, WriteableBuffer

def locate(
    lengths: ReadableBuffer | np.ndarray[Any, Any],
    order: ReadableBuffer | np.ndarray[Any, Any],
    where: WriteableBuffer | np.ndarray[Any, Any],
    /,
) -> None: ...
def take_texts(
    chunks: tuple[tuple[ReadableBuffer | None, ReadableBuffer, ReadableBuffer, int, int], ...],
    where: ReadableBuffer | np.ndarray[Any, Any],
    alloc: Callable[[int], pa.Buffer],
    /,
) -> tuple[pa.Buffer | None, pa.Buffer, pa.Buffer, int]: ...
