"""Query parameters every list shares, so they read and validate the same everywhere."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from fupin.paging import MAX_LIMIT

CursorQ = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page; absent for "
                                                                  "the first page")]
LimitQ = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, at most {MAX_LIMIT}")]
TotalQ = Annotated[bool, Query(description="Also count the items matching the filters over all pages (`total`); "
                                           "costs one more query, so ask only when you show it")]
