"""The one error of the model: `ModelError`.

Owns: `ModelError`, raised for malformed input to any model value, its JSON reader or
the builder; it names the field (a JSON path such as `network.subnets[0].cidr`).

Must never: carry I/O concerns (status codes, retries); callers map it to theirs.

Concurrency: exceptions are created per failure and never shared.
"""

from __future__ import annotations

__all__ = ["ModelError", "join_path"]


def join_path(prefix: str, field: str) -> str:
    """`prefix` + `field` as a JSON path: `a` + `b` -> `a.b`, `a` + `[0]` -> `a[0]`."""
    if not prefix:
        return field
    if not field:
        return prefix
    if field.startswith("["):
        return prefix + field
    return f"{prefix}.{field}"


class ModelError(ValueError):
    """Malformed network info: `field` is where (a JSON path), `problem` is what.

    `str(err)` is `"<field>: <problem>"` (or just the problem when no field is known).
    """

    def __init__(self, problem: str, field: str = "") -> None:
        self.problem = problem
        self.field = field
        super().__init__(f"{field}: {problem}" if field else problem)

    def under(self, prefix: str) -> ModelError:
        """The same error with its field placed under `prefix` (for nested readers)."""
        return ModelError(self.problem, join_path(prefix, self.field))
