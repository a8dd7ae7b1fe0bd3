"""The shared protobuf repository (``proto/``) and what Courier does with it.

- ``courier schemas lint | breaking | generate`` (`app`): buf lint and breaking-change
  checks with buf from the npm package ``@bufbuild/buf`` (pinned in ``tools/``), and
  Python code generation with grpcio-tools and mypy-protobuf.
- `message_class` finds a generated message class by its full protobuf name, for code
  that decodes payloads it did not produce (the lake sink, the admin page).
- `topic_of` / `key_field_of` / `key_of` read Courier's message options
  (``proto/courier/v1/options.proto``); `events_by_topic` maps each topic to its types.

See docs/schemas.md.
"""

from __future__ import annotations

from courier.schemas._buf import BufUnavailable, ensure_buf, run_buf
from courier.schemas._cli import app
from courier.schemas._codegen import CodegenError, GenerationResult, generate_python
from courier.schemas._registry import (
    events_by_topic,
    import_generated_modules,
    key_field_of,
    key_of,
    message_class,
    message_descriptor,
    topic_of,
)

__all__ = [
    "BufUnavailable",
    "CodegenError",
    "GenerationResult",
    "app",
    "ensure_buf",
    "events_by_topic",
    "generate_python",
    "import_generated_modules",
    "key_field_of",
    "key_of",
    "message_class",
    "message_descriptor",
    "run_buf",
    "topic_of",
]
