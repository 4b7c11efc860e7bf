"""Prompt ideation over a loopback OpenAI-compatible chat server: structured output, retries, fallbacks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from limner.config import Settings
from limner.http_client import HttpOptions, RetryPolicy
from limner.prompts.data_providers import load_data_providers
from limner.prompts.errors import PromptGenerationError
from limner.prompts.ideation import generate_ideas
from limner.prompts.llm import LlmConfig, LlmIdeaGenerator, llm_config, parse_ideas
from tests.engines.remote.conftest import RecordingSleep
from tests.engines.remote.fakes import FakeChat, ideas_json, serve
from tests.engines.remote.loopback import LoopbackServer, Reply


@pytest.fixture
def chat() -> Iterator[tuple[FakeChat, LoopbackServer]]:
    fake = FakeChat(contents=[ideas_json(3)])
    with serve(fake) as server:
        yield fake, server


def options() -> HttpOptions:
    return HttpOptions(timeout_s=2.0, retry=RetryPolicy(max_attempts=3, jitter=0.0), sleep=RecordingSleep())


def generator(server: LoopbackServer, **kwargs: object) -> LlmIdeaGenerator:
    config = LlmConfig(base_url=f"{server.url}/v1", api_key="sk-local", model="tiny-llm")
    return LlmIdeaGenerator(config, load_data_providers(), seed=5, options=options(), **kwargs)  # type: ignore[arg-type]


def test_structured_request_and_validated_ideas(chat: tuple[FakeChat, LoopbackServer]) -> None:
    _, server = chat
    ideas = generator(server).generate(3, "cyberpunk city")
    assert [idea.title for idea in ideas] == ["Idea 1", "Idea 2", "Idea 3"]
    assert ideas[0].metatags == ["neon", "city", "tag1"]
    assert ideas[0].negative_prompt == "blurry, low quality"
    (call,) = server.requests
    body = call.json()
    assert call.headers["authorization"] == "Bearer sk-local"
    assert body["model"] == "tiny-llm"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["ideas"]
    roles = [message["role"] for message in body["messages"]]
    assert roles[0] == "system"
    assert roles[-1] == "user"
    assert roles.count("assistant") == 3
    last = body["messages"][-1]["content"]
    assert "Theme: cyberpunk city" in last
    assert "Write 3 ideas" in last
    assert "3. subject:" in last


def test_malformed_json_is_retried_with_the_problem(chat: tuple[FakeChat, LoopbackServer]) -> None:
    fake, server = chat
    fake.contents = ['{"ideas": [{"title": "Broken"', ideas_json(2)]
    ideas = generator(server).generate(2)
    assert len(ideas) == 2
    assert len(server.requests) == 2
    retry_messages = server.requests[1].json()["messages"]
    assert retry_messages[-2] == {"role": "assistant", "content": '{"ideas": [{"title": "Broken"'}
    assert "not valid" in retry_messages[-1]["content"]


def test_always_bad_answers_end_in_a_clear_error(chat: tuple[FakeChat, LoopbackServer]) -> None:
    fake, server = chat
    fake.contents = [json.dumps({"ideas": [{"title": "No prompt here"}]})]
    with pytest.raises(
        PromptGenerationError, match=r"no valid ideas in 3 attempts; last problem: idea 1: prompt: Field required"
    ):
        generator(server).generate(1)
    assert len(server.requests) == 3


def test_server_without_json_schema_gets_json_mode(chat: tuple[FakeChat, LoopbackServer]) -> None:
    fake, server = chat
    fake.reject_json_schema = True
    fake.contents = ["```json\n" + ideas_json(2) + "\n```"]
    ideas = generator(server).generate(2)
    assert len(ideas) == 2
    assert [r.json()["response_format"]["type"] for r in server.requests] == ["json_schema", "json_object"]


def test_more_ideas_than_a_round_take_several_rounds_without_duplicates(chat: tuple[FakeChat, LoopbackServer]) -> None:
    fake, server = chat
    fake.contents = [ideas_json(3, "Alpha"), ideas_json(3, "Alpha"), ideas_json(3, "Beta")]
    ideas = generator(server, batch_size=3).generate(5)
    assert [idea.title for idea in ideas] == ["Alpha 1", "Alpha 2", "Alpha 3", "Beta 1", "Beta 2"]
    assert len(server.requests) == 3


def test_rate_limit_is_retried_and_refusal_reported(chat: tuple[FakeChat, LoopbackServer]) -> None:
    fake, server = chat
    fake.faults.append(Reply(429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "0"}))
    assert len(generator(server).generate(1)) == 1
    fake.faults.append(Reply(json={"choices": [{"message": {"role": "assistant", "content": None, "refusal": "no"}}]}))
    with pytest.raises(PromptGenerationError, match="refused: no"):
        generator(server).generate(1)


def test_parse_ideas_accepts_common_shapes() -> None:
    one = {"title": "T", "prompt": "p"}
    assert len(parse_ideas(json.dumps([one, one]))) == 2
    assert parse_ideas("Here you go: " + json.dumps(one))[0].title == "T"
    with pytest.raises(ValueError, match="no JSON"):
        parse_ideas("sorry")


def test_llm_configuration_resolution() -> None:
    bare = Settings(_env_file=None, openai_api_key=None, llm_base_url=None)  # type: ignore[call-arg]
    assert llm_config(bare) is None
    local = Settings(_env_file=None, openai_api_key=None, llm_base_url="http://localhost:11434/v1/", llm_model="llama3")  # type: ignore[call-arg]
    assert llm_config(local) == LlmConfig("http://localhost:11434/v1", None, "llama3")
    openai = Settings(_env_file=None, openai_api_key="sk-x", llm_base_url=None)  # type: ignore[call-arg]
    config = llm_config(openai)
    assert config is not None
    assert config.api_key == "sk-x"
    assert config.base_url == "https://api.openai.com/v1"


def test_generate_ideas_without_llm_is_offline_and_says_so() -> None:
    settings = Settings(_env_file=None, openai_api_key=None, llm_base_url=None)  # type: ignore[call-arg]
    ideation = generate_ideas(settings, 4, theme="deep sea", seed=9)
    assert ideation.offline
    assert "no LLM configured" in ideation.source
    assert len(ideation.ideas) == 4
    assert generate_ideas(settings, 4, theme="deep sea", seed=9).ideas == ideation.ideas


def test_generate_ideas_uses_the_configured_llm(chat: tuple[FakeChat, LoopbackServer]) -> None:
    _, server = chat
    settings = Settings(_env_file=None, openai_api_key=None, llm_base_url=f"{server.url}/v1", llm_model="m")  # type: ignore[call-arg]
    ideation = generate_ideas(settings, 2, options=options())
    assert not ideation.offline
    assert ideation.source == f"LLM m at {server.url}/v1"
    forced = generate_ideas(settings, 2, offline=True, seed=1)
    assert forced.offline
    assert "asked for" in forced.source
