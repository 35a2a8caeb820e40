"""``--schema FILE``: every record checked against a JSON Schema before anything else.

The schema is read on the client (:func:`read_schema`: JSON or YAML, draft 2020-12,
checked against the draft's meta-schema) and travels inside the job as its JSON text;
each worker compiles it once (:func:`schema_error`). Validation is jsonschema-rs's:
about 2 us a record for ten properties, where the pure-Python ``jsonschema`` takes about
130 us, and ``fastjsonschema`` does not know draft 2020-12.

A record that violates the schema is rejected with the first violation, its JSON path
and its rule, as ``jsonschema`` words them:

>>> text = schema_text({"type": "object", "properties": {"load": {"minimum": 0}}})
>>> schema_error(text, {"load": -1.5})
'schema: $.load: -1.5 is less than the minimum of 0'
>>> schema_error(text, {"load": 2}) is None
True
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = ["SchemaError", "read_schema", "schema_error", "schema_text"]

#: The draft riverflink validates with, unless the schema's "$schema" names another.
DRAFT = "https://json-schema.org/draft/2020-12/schema"

#: A property name that reads plainly after a dot in a JSON path.
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class SchemaError(ValueError):
    """A schema file that cannot be used; the message says what to fix."""


def read_schema(path: str | Path) -> str:
    """The schema in ``path`` (JSON, or YAML for ``.yaml``/``.yml``) as compact JSON text,
    checked: raises :class:`SchemaError` naming the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError(f"--schema {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"--schema {path}: cannot read it: {exc}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            schema = yaml.safe_load(text)
        else:
            schema = json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError
        raise SchemaError(f"--schema {path}: not valid JSON: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - yaml.YAMLError and what it wraps
        raise SchemaError(f"--schema {path}: not valid YAML: {exc}") from None
    try:
        return schema_text(schema)
    except SchemaError as exc:
        raise SchemaError(f"--schema {path}: {exc}") from None


def schema_text(schema: Any) -> str:
    """``schema`` (a dict, or a boolean schema) checked and written as compact JSON text."""
    if not isinstance(schema, (dict, bool)):
        raise SchemaError(
            f"a JSON Schema is an object (or true/false), not {type(schema).__name__}"
        )
    try:
        text = json.dumps(schema, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:  # YAML can hold dates and .nan, JSON cannot
        raise SchemaError(f"it holds a value JSON has no form for: {exc}") from None
    _compiled(text)
    return text


#: Compiled validators of this process, by schema text.
_VALIDATORS: dict = {}


def _compiled(text: str):
    validator = _VALIDATORS.get(text)
    if validator is None:
        import jsonschema_rs

        schema = json.loads(text)
        if isinstance(schema, dict) and "$schema" not in schema:
            schema = {"$schema": DRAFT, **schema}
        try:
            validator = jsonschema_rs.validator_for(schema)
        except jsonschema_rs.ValidationError as exc:
            where = _json_path(exc.instance_path)
            raise SchemaError(
                f"not a valid JSON Schema (draft 2020-12): at {where}: {exc.message}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - an unknown draft, a bad reference...
            raise SchemaError(f"not a usable JSON Schema: {exc}") from None
        _VALIDATORS[text] = validator
    return validator


def schema_error(text: str, record: Any) -> str | None:
    """Why ``record`` (decoded JSON) violates the schema ``text``, or None if it does not."""
    validator = _VALIDATORS.get(text) or _compiled(text)
    try:
        if validator.is_valid(record):
            return None
        error = next(iter(validator.iter_errors(record)))
    except StopIteration:  # pragma: no cover - is_valid said no, so there is an error
        return "schema: the record does not satisfy the schema"
    except Exception as exc:  # noqa: BLE001 - a value the validator cannot take
        return f"schema: cannot validate the record: {exc}"
    return f"schema: {_json_path(error.instance_path)}: {error.message}"


def _json_path(parts) -> str:
    """A JSON path as ``jsonschema`` writes one (``$.load``, ``$.tags[0]``); a name that
    is not a plain identifier is quoted (``$['unit price']``).

    >>> _json_path(["a", 0, "b c"])
    "$.a[0]['b c']"
    """
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_NAME.match(part):
            path += f".{part}"
        else:
            path += "['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return path
