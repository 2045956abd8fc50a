"""The base of every request body: strict, so JSON types are what the contract says.

Pydantic's default (lax) mode turns ``"5"`` and ``true`` into the integer 5 and 1, and ``"yes"`` into True:
a client's mistake would be accepted with a meaning it may not have intended. Request bodies therefore
validate in strict mode and answer anything else with a 422 ``validation-error`` problem. FastAPI validates
the parsed JSON as Python values, where strict mode would refuse a time given as a string too; fields that
arrive as strings by design (times, dates) are declared with ``JsonTime`` / ``JsonDate``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

JsonTime = Annotated[AwareDatetime, Field(strict=False)]
"""An RFC 3339 time with its offset, as a JSON string."""
JsonDate = Annotated[date, Field(strict=False)]
"""A calendar day, ``YYYY-MM-DD``, as a JSON string."""


class RequestBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
