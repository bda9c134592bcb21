"""The probe kinds: one small client per kind of target, each call one attempt.

Each kind is built from plain values (a URL, options), or from a sandbox's
`Environment` with ``from_environment`` (``HttpProbe.health`` for its ``/health``),
and follows the `chaos_service.probes.schedule.Probe` protocol: it has a ``name`` and
returns an `Observation` whose ``details`` are timings in seconds from the attempt's
start plus what it saw. An exception is the attempt's ERROR; the runner applies the
deadline.

* `postgres.PostgresProbe`: a new connection and a query;
* `redis.RedisProbe`: PING, SET and GET on a new connection, never retried;
* `http.HttpProbe`: a request, its status, latency and a JSON field;
* `llm.LlmStreamProbe`: a streaming chat completion, event by event;
* `reconnect.ReconnectProbe`: a new WebSocket connection, handshake and ping/pong;
* `chat.ChatVirtualUser`: a chat user on a long-lived connection, one agent run per
  attempt, reconnecting and resuming like a real client; `crowd.VirtualUsers` runs many.
"""
