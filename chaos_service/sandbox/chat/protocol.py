"""The messages a client sends on /ws, validated at the boundary."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

MAX_CONTENT = 20_000


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UserMessage(_Message):
    type: Literal["message"]
    content: str = Field(min_length=1, max_length=MAX_CONTENT)
    client_msg_id: str | None = Field(default=None, min_length=1, max_length=128)


class Resume(_Message):
    type: Literal["resume"]
    run_id: str | None = Field(default=None, min_length=1, max_length=64)
    client_msg_id: str | None = Field(default=None, min_length=1, max_length=128)
    after_seq: int = Field(default=-1, ge=-1)

    @model_validator(mode="after")
    def _one_run(self) -> Resume:
        if (self.run_id is None) == (self.client_msg_id is None):
            raise ValueError("give either run_id or client_msg_id")
        return self


class Ping(_Message):
    type: Literal["ping"]


ClientMessage = Annotated[UserMessage | Resume | Ping, Field(discriminator="type")]
_ADAPTER: TypeAdapter[UserMessage | Resume | Ping] = TypeAdapter(ClientMessage)


def parse_client_message(text: str) -> UserMessage | Resume | Ping | str:
    """The message, or a one-line explanation of what is wrong with it."""
    try:
        return _ADAPTER.validate_json(text)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"][1:])  # [0] is the message's type
        if error["type"] == "json_invalid":
            return "messages must be JSON objects"
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            return "type must be one of message, resume, ping"
        if error["type"] in ("model_type", "dict_type"):
            return "messages must be JSON objects"
        return f"{where}: {error['msg']}" if where else str(error["msg"]).removeprefix("Value error, ")
