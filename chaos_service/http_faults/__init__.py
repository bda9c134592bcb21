"""HTTP and Server-Sent Events faults for LLM endpoints: the toxics of ``http`` proxies.

Every type acts on responses (stream ``downstream``), per request: ``toxicity`` is the
chance that it acts on a given request, and the match attributes ``method``, ``path``
(glob) and ``model`` (glob on the JSON body's ``model``) select the requests it may act
on ("" matches any). Times are milliseconds unless stated.

| type            | attributes (defaults)                                 | effect                        |
|-----------------|-------------------------------------------------------|-------------------------------|
| `http_error`    | `status` 503, `message`, `retry_after` s,             | an OpenAI-style error instead |
|                 | `should_retry`, `html`                                | of calling the upstream       |
| `http_delay`    | `delay`, `jitter`                                     | response headers held back    |
| `sse_delay`     | `delay`, `jitter`                                     | every event delayed           |
| `sse_cut`       | `after`, `mode` clean or reset                        | the stream ends early         |
| `sse_stall`     | `after`, `duration` (0: until removed), `keepalive`   | the stream stops for a while  |
| `sse_error`     | `after`, `message`                                    | an in-stream error, then end  |
| `sse_malformed` | `after`                                               | one truncated-JSON event      |
| `fail_attempts` | `attempts` 1, `status` 503, `retry_after` s           | first attempts of each        |
|                 |                                                       | request fail                  |

See `base` for the contract and `plan` for how a request's toxics are chosen.
Importing this package has no side effects: the registry below is the list of types.
"""

from __future__ import annotations

from chaos_service.http_faults.base import HttpToxic
from chaos_service.http_faults.fail_attempts import FailAttempts
from chaos_service.http_faults.http_delay import HttpDelay
from chaos_service.http_faults.http_error import HttpError
from chaos_service.http_faults.sse_cut import SseCut
from chaos_service.http_faults.sse_delay import SseDelay
from chaos_service.http_faults.sse_error import SseError
from chaos_service.http_faults.sse_malformed import SseMalformed
from chaos_service.http_faults.sse_stall import SseStall

#: Every http toxic type, by its API name.
REGISTRY: dict[str, type[HttpToxic]] = {
    cls.type_name: cls
    for cls in (HttpError, HttpDelay, SseDelay, SseCut, SseStall, SseError, SseMalformed, FailAttempts)
}

__all__ = [
    "REGISTRY",
    "FailAttempts",
    "HttpDelay",
    "HttpError",
    "HttpToxic",
    "SseCut",
    "SseDelay",
    "SseError",
    "SseMalformed",
    "SseStall",
]
