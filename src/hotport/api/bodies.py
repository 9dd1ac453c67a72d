"""The base of every request body the API accepts (native and Nova alike).

Owns: `StrictBody`: unknown fields are refused (as Nova's schemas do with
`additionalProperties: false`), and so is an explicit `null` for an optional field (a
field is either given with a value or left out; the OpenAPI schema says the same, since
optional fields are typed `X | SkipJsonSchema[None]`).

Must never: hold behaviour beyond input checking.

Concurrency: pydantic models, immutable after validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

#: a UUID, with or without its dashes (what Python's uuid.UUID accepts, minus braces)
UUID_PATTERN = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key, value in data.items():
                if value is None and key in cls.model_fields:
                    raise ValueError(f"{key} must not be null; leave it out or give a value")
        return data
