"""An OpenAI-compatible LLM stub whose replies are scripted by the request (see `script`)."""

from chaos_service.sandbox.llm_stub.app import DEFAULT_MODELS, StubSettings, create_app
from chaos_service.sandbox.llm_stub.script import ReplyScript, plan_reply, split_tokens

__all__ = ["DEFAULT_MODELS", "ReplyScript", "StubSettings", "create_app", "plan_reply", "split_tokens"]
