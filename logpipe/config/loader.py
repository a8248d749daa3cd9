"""Load a pipeline config from files, directories, globs or a string.

Each file is parsed in its own language, detected from its content: Fluentd when the
first significant line starts with `<` or `@include`, the Logstash DSL otherwise. Files
keep their own positions (errors name the file that holds the mistake) and their parts
are concatenated in order, as Logstash concatenates `conf.d/*`. All Fluentd files are
read into one directive tree first, so that "the first matching <match> wins" holds
across files; its part of the pipeline is placed where the first Fluentd file was.
"""

from __future__ import annotations

import glob
import os

from logpipe.config.fluentd import Element, build_fluentd, read_fluentd
from logpipe.config.logstash import parse_logstash
from logpipe.config.model import PipelineConfig
from logpipe.errors import ConfigError, remember_source


def detect_language(text: str) -> str:
    """'fluentd' or 'logstash', from the first line that is not blank or a comment."""
    for line in text.splitlines():
        stripped = line.strip().lstrip("\ufeff")
        if not stripped or stripped.startswith("#"):
            continue
        return "fluentd" if stripped.startswith(("<", "@include")) else "logstash"
    return "logstash"


def expand_paths(paths: list[str]) -> list[str]:
    """The config files named by `paths`, in order: a file as is, a directory's regular
    files (not hidden, not recursive) in lexical order, a glob's matches in lexical order.
    A file named twice is read once."""
    if not paths:
        raise ConfigError("no config path given")
    files: list[str] = []
    for path in paths:
        if "\0" in path:
            raise ConfigError(f"config path {path!r} holds a NUL character")
        if glob.has_magic(path) and not os.path.exists(path):
            matches = [m for m in sorted(glob.glob(path)) if os.path.isfile(m)]
            if not matches:
                raise ConfigError(f"no config file matches '{path}'")
        elif os.path.isdir(path):
            matches = sorted(
                os.path.join(path, name) for name in os.listdir(path)
                if not name.startswith(".") and os.path.isfile(os.path.join(path, name))
            )
            if not matches:
                raise ConfigError(f"config directory '{path}' holds no files")
        elif os.path.isfile(path):
            matches = [path]
        else:
            raise ConfigError(f"config file not found: '{path}'")
        files.extend(m for m in matches if m not in files)
    return files


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc.strerror or exc}") from None
    return text.removeprefix("\ufeff")


def load_config_paths(paths: list[str]) -> PipelineConfig:
    """Parse every file named by `paths` (files, directories, globs) into one config."""
    parts: list[PipelineConfig | None] = []
    fluentd_root: Element | None = None
    fluentd_sources: list[str] = []
    for path in expand_paths(paths):
        text = _read(path)
        if detect_language(text) == "logstash":
            parts.append(parse_logstash(text, path))
            continue
        tree = read_fluentd(text, path, os.path.dirname(os.path.abspath(path)), fluentd_sources)
        if fluentd_root is None:
            fluentd_root = tree
            parts.append(None)
        else:
            fluentd_root.params.update(tree.params)
            fluentd_root.children.extend(tree.children)
    config = PipelineConfig()
    for part in parts:
        if part is None:
            assert fluentd_root is not None
            part = build_fluentd(fluentd_root, fluentd_sources)
        config.inputs.extend(part.inputs)
        config.filters.extend(part.filters)
        config.outputs.extend(part.outputs)
        config.sources.extend(part.sources)
        config.workers = part.workers if part.workers is not None else config.workers
    return config


def load_config_string(text: str, name: str = "<config string>") -> PipelineConfig:
    """Parse a config given inline (`logpipe run -e`, the embedding API). Relative
    `@include`s resolve against the working directory."""
    remember_source(name, text)
    text = text.removeprefix("\ufeff")
    if detect_language(text) == "logstash":
        return parse_logstash(text, name)
    sources: list[str] = []
    return build_fluentd(read_fluentd(text, name, os.getcwd(), sources), sources)

