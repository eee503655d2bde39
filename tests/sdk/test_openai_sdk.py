"""The official OpenAI Python SDK as a real client of the gateway."""
import json

import openai
import pytest


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway["base_url"], api_key=gateway["key"], max_retries=0)


@pytest.mark.parametrize("model", ["gpt-4o", "claude", "gemini"])
def test_non_stream(client, model):
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content.startswith("Mock")
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens > 0


@pytest.mark.parametrize("model", ["gpt-4o", "claude", "gemini"])
def test_stream_with_usage(client, model):
    chunks = list(client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Mock")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)


@pytest.mark.parametrize("model", ["gpt-4o", "claude", "gemini"])
def test_tools(client, model):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "weather?"}], tools=tools)
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert r.choices[0].finish_reason == "tool_calls"


def test_errors_map_to_sdk_exceptions(client, gateway):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway["base_url"], api_key="sk-wrong", max_retries=0).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[])
    assert e.value.body["param"] == "messages"
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="overloaded", messages=[{"role": "user", "content": "hi"}])


def test_interrupted_stream_raises_instead_of_finishing(client):
    stream = client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "hi"}], stream=True)
    got = []
    with pytest.raises(openai.APIError):
        for c in stream:
            got.append(c)
    assert got, "tokens arrived before the break"


def test_models_list(client):
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o", "claude", "gemini"} <= ids
