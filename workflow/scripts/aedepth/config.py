"""Config checks that run at parse time, before any job: one clear line per mistake."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

DATA_SOURCES = ("download", "sample")
# Scientific notation without a dot, e.g. 1e-3: YAML 1.1 (PyYAML, hence Snakemake) reads it as text.
_EXPONENT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")

# JSON Schema counts 2.0 as an integer, but range(2.0) and "depth2.0_seed0" break: only true ints.
_StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


class ConfigError(ValueError):
    """An invalid config value; str() is one line naming the key and what it accepts."""


def coerce_cli_lists(config: dict[str, Any]) -> dict[str, Any]:
    """Return a copy where list items given as strings are parsed as YAML scalars.

    `snakemake --config depths=[1,2,4]` delivers ['1', '2', '4']; parse them back to numbers.
    """
    coerced = dict(config)
    for key, value in config.items():
        if isinstance(value, list):
            coerced[key] = [_parse_scalar(item) for item in value]
    return coerced


def _parse_scalar(item: Any) -> Any:
    if not isinstance(item, str):
        return item
    try:
        parsed = yaml.safe_load(item)
    except yaml.YAMLError:
        return item
    return parsed if isinstance(parsed, (int, float)) and not isinstance(parsed, bool) else item


def validate_config(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Raise ConfigError for the first schema violation or cross-key inconsistency."""
    _reject_non_finite(config, schema)
    validator = _StrictValidator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(_describe(error, schema))

    largest_depth = max(config["depths"])
    if len(config["hidden_sizes"]) < largest_depth:
        raise ConfigError(
            f"config key 'hidden_sizes' has {len(config['hidden_sizes'])} widths but 'depths' "
            f"asks for depth {largest_depth}: give at least {largest_depth} widths or drop that depth"
        )
    if config["dataset"] not in config["datasets"]:
        raise ConfigError(
            f"config key 'dataset' = {config['dataset']!r} is not listed under 'datasets': "
            f"use one of {', '.join(config['datasets'])}"
        )
    source = config["source"]
    if source not in DATA_SOURCES:
        if not os.path.isdir(source):
            raise ConfigError(
                f"config key 'source' = {source!r} is neither 'download', 'sample' nor an existing "
                "folder: give a folder that holds the four IDX files"
            )
        idx_paths(source, list(data_settings(config)["checksums"]))


def data_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The mirrors, checksums and class names in force: the dataset's, unless overridden."""
    dataset = config["datasets"][config["dataset"]]
    return {
        "mirrors": config["mirrors"] or dataset["mirrors"],
        "checksums": config["checksums"] or dataset["checksums"],
        "classes": dataset["classes"],
    }


def _reject_non_finite(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """nan and inf slip through every minimum/maximum check (nan <= 0 is False): refuse them."""
    for key, value in config.items():
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if isinstance(item, float) and not math.isfinite(item):
                where = f"{key}[{index}]" if isinstance(value, list) else key
                raise ConfigError(
                    f"config key '{where}' = {item} is not a finite number: use {_allowed(key, schema)}"
                )


def _allowed(key: str, schema: dict[str, Any]) -> str:
    return schema["properties"].get(key, {}).get("description", "see config.yaml")


def idx_paths(folder: str | Path, names: list[str]) -> list[Path]:
    """The IDX files in `folder`, each raw (`name`) or gzipped (`name.gz`)."""
    folder = Path(folder)
    paths, missing = [], []
    for name in names:
        present = [path for path in (folder / name, folder / f"{name}.gz") if path.is_file()]
        if present:
            paths.append(present[0])
        else:
            missing.append(name)
    if missing:
        raise ConfigError(
            f"config key 'source' = {str(folder)!r} lacks {', '.join(missing)} (raw or .gz): "
            "put the four IDX files there, or use source: download or sample"
        )
    return paths


def _describe(error: jsonschema.ValidationError, schema: dict[str, Any]) -> str:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and not path:
        unknown = sorted(set(error.instance) - set(schema["properties"]))
        return (
            f"unknown config key(s) {', '.join(map(repr, unknown))}: "
            f"allowed keys are {', '.join(sorted(schema['properties']))}"
        )
    if error.validator == "required" and not path:
        return f"config is missing {error.message.split(' is a required')[0]}: add it (see config.yaml)"
    key = str(path[0])
    where = key + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[1:])
    reason = error.message
    if (
        error.validator == "type"
        and isinstance(error.instance, str)
        and _EXPONENT_TEXT.match(error.instance)
    ):
        reason += f"; YAML reads {error.instance} as text, write {_yaml_number(error)}"
    return f"config key '{where}' = {error.instance!r} is invalid ({reason}): use {_allowed(key, schema)}"


def _yaml_number(error: jsonschema.ValidationError) -> str:
    """How to spell the number `error.instance` (e.g. '1e-3') so that YAML reads a number."""
    value = float(error.instance)
    if error.validator_value == "integer" and value.is_integer():
        return str(int(value))
    # PyYAML's float needs a dot in the mantissa and a sign in the exponent.
    mantissa, exponent = re.split("[eE]", error.instance)
    if "." not in mantissa:
        mantissa += ".0"
    if exponent[0] not in "+-":
        exponent = "+" + exponent
    return f"{mantissa}e{exponent}"


def load_schema(path: str | Path) -> dict[str, Any]:
    with open(path) as handle:
        return yaml.safe_load(handle)
