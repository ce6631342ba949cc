"""Config checks that run at parse time, before any job: one clear line per mistake."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml

DATA_SOURCES = ("download", "sample")


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
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(_describe(error, schema))

    largest_depth = max(config["depths"])
    if len(config["hidden_sizes"]) < largest_depth:
        raise ConfigError(
            f"config key 'hidden_sizes' has {len(config['hidden_sizes'])} widths but 'depths' "
            f"asks for depth {largest_depth}: give at least {largest_depth} widths or drop that depth"
        )
    source = config["source"]
    if source not in DATA_SOURCES:
        if not os.path.isdir(source):
            raise ConfigError(
                f"config key 'source' = {source!r} is neither 'download', 'sample' nor an existing "
                "folder: give a folder that holds the four MNIST IDX files"
            )
        idx_paths(source, list(config["checksums"]))


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
            "put the four MNIST IDX files there, or use source: download or sample"
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
    allowed = schema["properties"].get(key, {}).get("description", "see config.yaml")
    return f"config key '{where}' = {error.instance!r} is invalid ({error.message}): use {allowed}"


def load_schema(path: str | Path) -> dict[str, Any]:
    with open(path) as handle:
        return yaml.safe_load(handle)


def model_id(depth: int, seed: int) -> str:
    return f"depth{depth}_seed{seed}"


def encoder_widths(hidden_sizes: list[int], depth: int) -> list[int]:
    """Hidden widths of a depth-`depth` encoder: the first `depth` configured sizes."""
    return list(hidden_sizes[:depth])
