"""Read a broker config file: YAML with lines -> ``defaults`` merged -> validated models.

Every problem found in the file is collected and raised together as one
:class:`ConfigError`; nothing here lets a traceback reach the user.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from courier.broker.config_problems import ConfigError, ConfigProblem, format_path
from courier.broker.config_problems import Path as KeyPath
from courier.broker.config_rules import broker_problems, consumer_name_problem, consumer_problems
from courier.broker.config_schema import (
    DEFER_RULES,
    BrokerConfig,
    ConsumerConfig,
    ConsumerDefaults,
    TopicSettings,
)
from courier.broker.config_types import CONFIG_ERROR, show
from courier.broker.config_yaml import YamlDocument, read_yaml

TOP_LEVEL_KEYS = ("consumers", "defaults", "topics")


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> BrokerConfig:
    """Load and validate the broker config at ``path``; :class:`ConfigError` on any problem.

    Relative TLS file paths are resolved against the file's directory.
    """
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem("", None, "file not found")], source) from None
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text (byte {exc.start})"
        raise ConfigError([ConfigProblem("", None, message)], source) from None
    except OSError as exc:
        message = f"cannot read: {exc.strerror or exc}"
        raise ConfigError([ConfigProblem("", None, message)], source) from None
    config = parse_config(text, source, environ=environ, base_dir=path.parent)
    return config.model_copy(update={"source_path": path.resolve()})


def parse_config(
    text: str,
    source: str = "<config>",
    *,
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> BrokerConfig:
    """Validate config ``text``; ``source`` names it in messages. ConfigError on any problem.

    ``environ`` (default: ``os.environ``) feeds ``${VAR}`` interpolation; ``base_dir``
    (default: the working directory) anchors relative TLS file paths.
    """
    document = read_yaml(text, os.environ if environ is None else environ)
    loader = _Loader(document, Path.cwd() if base_dir is None else base_dir)
    config = loader.load()
    if loader.problems or config is None:
        raise ConfigError(loader.problems, source)
    return config


class _Loader:
    def __init__(self, document: YamlDocument, base_dir: Path) -> None:
        self.document = document
        self.problems = list(document.problems)
        self.context = {DEFER_RULES: True, "base_dir": base_dir}

    def add(self, path: KeyPath, message: str) -> None:
        self.problems.append(ConfigProblem(format_path(path), self.document.line_of(path), message))

    def load(self) -> BrokerConfig | None:
        data = self.document.data
        if data is None:
            if not self.problems:
                self.add((), "the file is empty; expected a mapping with a consumers key")
            return None
        if not isinstance(data, dict):
            self.add((), f"the top level must be a mapping with a consumers key, got {show(data)}")
            return None
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                self.add((key,), unknown_key_message(key, TOP_LEVEL_KEYS))
        defaults = data.get("defaults") or {}
        if "defaults" in data:
            self.validate(ConsumerDefaults, data["defaults"], ("defaults",))
        topics = TopicSettings()
        if "topics" in data:
            topics = self.validate(TopicSettings, data["topics"], ("topics",)) or topics
        consumers = self.consumers(data, defaults if isinstance(defaults, dict) else {})
        for parts, message in broker_problems(consumers):
            self.add(parts, message)
        if self.problems or not consumers:
            return None
        return BrokerConfig(consumers=consumers, topics=topics)

    def consumers(
        self, data: dict[str, Any], defaults: dict[str, Any]
    ) -> dict[str, ConsumerConfig]:
        raw = data.get("consumers")
        if "consumers" not in data:
            self.add(("consumers",), "required key missing: list the consumer services here")
            return {}
        if not isinstance(raw, dict) or not raw:
            got = "an empty mapping" if raw == {} else show(raw)
            self.add(("consumers",), f"must map consumer names to their settings, got {got}")
            return {}
        valid: dict[str, ConsumerConfig] = {}
        for name, settings in raw.items():
            path: KeyPath = ("consumers", name)
            if path in self.document.reported:
                continue
            if problem := consumer_name_problem(name):
                self.add(path, problem)
                continue
            if not isinstance(settings, dict):
                self.add(path, f"must be a mapping of consumer settings, got {show(settings)}")
                continue
            if "name" in settings:
                self.add((*path, "name"), 'unknown key "name": the consumer\'s name is its key')
                settings = {k: v for k, v in settings.items() if k != "name"}
            merged, inherited = merge_defaults(settings, defaults)
            consumer = self.validate(ConsumerConfig, {**merged, "name": name}, path, inherited)
            if isinstance(consumer, ConsumerConfig):
                for parts, message in consumer_problems(consumer):
                    self.add((*path, *parts), message)
                valid[name] = consumer
        return valid

    def validate(
        self,
        model: type[BaseModel],
        raw: Any,
        prefix: KeyPath,
        inherited: frozenset[KeyPath] = frozenset(),
    ) -> Any:
        if prefix in self.document.reported:
            return None
        if not isinstance(raw, dict):
            self.add(prefix, f"must be a mapping, got {show(raw)}")
            return None
        try:
            return model.model_validate(raw, context=self.context, by_alias=True, by_name=False)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc = tuple(error["loc"])
                if _covered(loc, inherited) or _covered(prefix + loc, self.document.reported):
                    continue  # reported already: at `defaults`, or by the YAML reader
                self.add(prefix + loc, _message(error, model, loc, prefix))
            return None


def merge_defaults(
    settings: dict[str, Any], defaults: dict[str, Any]
) -> tuple[dict[str, Any], frozenset[KeyPath]]:
    """``settings`` with ``defaults`` filled in where unset (mapping values key by key).

    Also returns the key paths that came from ``defaults``: their problems are reported once,
    under ``defaults``, not again for every consumer.
    """
    allowed = {field.alias for field in ConsumerDefaults.model_fields.values()}
    merged = dict(settings)
    inherited: set[KeyPath] = set()
    for key, value in defaults.items():
        if key not in allowed:
            continue
        if key not in merged:
            merged[key] = value
            inherited.add((key,))
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            inner = dict(merged[key])
            for sub_key, sub_value in value.items():
                if sub_key not in inner:
                    inner[sub_key] = sub_value
                    inherited.add((key, sub_key))
            merged[key] = inner
    return merged, frozenset(inherited)


def _covered(path: KeyPath, paths: typing.Collection[KeyPath]) -> bool:
    return any(path[:end] in paths for end in range(len(path) + 1))


def unknown_key_message(key: str, valid: typing.Iterable[str]) -> str:
    """``unknown key "x"``, with the closest valid key suggested, or the valid keys listed."""
    options = sorted(valid)
    normalized = key.replace("_", "-").lower()
    close = [o for o in options if o == normalized] or difflib.get_close_matches(
        normalized, options, n=1, cutoff=0.6
    )
    if close:
        return f'unknown key "{key}"; did you mean "{close[0]}"?'
    return f'unknown key "{key}"; expected one of: {", ".join(options)}'


def _message(error: Any, model: type[BaseModel], loc: KeyPath, prefix: KeyPath) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == CONFIG_ERROR:
        return str(error["ctx"]["message"])
    if kind == "missing":
        return "required key missing"
    if kind == "extra_forbidden":
        key = str(loc[-1])
        if prefix == ("defaults",) and len(loc) == 1 and key in _aliases(ConsumerConfig):
            return f'"{key}" cannot have a default; set it in each consumer'
        return unknown_key_message(key, _aliases(_model_at(model, loc[:-1])))
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping, got {show(value)}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list, got {show(value)}"
    if kind == "string_type":
        return f"must be a string, got {show(value)}"
    return f"{error['msg']}, got {show(value)}"


def _aliases(model: type[BaseModel] | None) -> set[str]:
    if model is None:
        return set()
    names = {field.alias or name for name, field in model.model_fields.items()}
    return names - {"name"} if model is ConsumerConfig else names


def _model_at(model: type[BaseModel], loc: KeyPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` inside ``model``."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        by_alias = {field.alias or name: field for name, field in current.model_fields.items()}
        field = by_alias.get(part)
        current = None if field is None else _inner_model(field.annotation)
    return current


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _inner_model(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, tuple, list):
        for arg in typing.get_args(annotation):
            if (found := _inner_model(arg)) is not None:
                return found
    return None
