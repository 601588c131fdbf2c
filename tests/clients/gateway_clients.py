"""The official `openai` and `ollama` Python clients against the anorag-tui gateway.

Run by tests/it/gateway.rs (and the real-vLLM tier) as
    python gateway_clients.py SCENARIO BASE_URL MODEL
Prints one JSON object per check on stdout; exits 1 on the first failed expectation.
"""
import json
import sys

import ollama
import openai


def out(**kw):
    print(json.dumps(kw), flush=True)


def expect(cond, what):
    if not cond:
        out(check=what, ok=False)
        sys.exit(1)


def basic(base, model):
    oa = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
    r = oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    expect(r.choices[0].message.content, "openai non-streamed text")
    expect(r.usage.completion_tokens > 0, "openai non-streamed usage")
    out(check="openai.chat", ok=True, text=r.choices[0].message.content, usage=r.usage.model_dump())

    chunks, text, usage = 0, "", None
    for c in oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=8, stream=True, stream_options={"include_usage": True}):
        chunks += 1
        if c.choices:
            text += c.choices[0].delta.content or ""
        if c.usage:
            usage = c.usage
    expect(text and usage and usage.completion_tokens > 0, "openai streamed text and usage")
    out(check="openai.chat.stream", ok=True, chunks=chunks, text=text, usage=usage.model_dump())

    seen_usage = False
    for c in oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=8, stream=True):
        seen_usage = seen_usage or c.usage is not None
    expect(not seen_usage, "no usage chunk unless asked for")
    out(check="openai.chat.stream.no_usage", ok=True)

    r = oa.completions.create(model=model, prompt="def fib(n):", max_tokens=8)
    expect(r.object == "text_completion" and r.choices[0].text and r.usage.completion_tokens > 0, "openai completion")
    out(check="openai.completions", ok=True, text=r.choices[0].text, usage=r.usage.model_dump())

    text, usage = "", None
    for c in oa.completions.create(model=model, prompt="def fib(n):", max_tokens=8, stream=True, stream_options={"include_usage": True}):
        if c.choices:
            text += c.choices[0].text or ""
        if c.usage:
            usage = c.usage
    expect(text and usage and usage.completion_tokens > 0, "openai completion stream")
    out(check="openai.completions.stream", ok=True, text=text, usage=usage.model_dump())

    ids = [m.id for m in oa.models.list().data]
    expect(model in ids, "openai models.list names the model")
    out(check="openai.models", ok=True, ids=ids)

    try:
        oa.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        expect(False, "unknown model raises")
    except openai.NotFoundError as e:
        out(check="openai.unknown_model", ok=True, status=e.status_code, message=str(e)[:200])

    ol = ollama.Client(host=base)
    r = ol.chat(model=model, messages=[{"role": "user", "content": "hi"}], stream=False, options={"num_predict": 8})
    expect(r.message.content and r.done and r.eval_count, "ollama chat")
    out(check="ollama.chat", ok=True, text=r.message.content, eval_count=r.eval_count, prompt_eval_count=r.prompt_eval_count, done_reason=r.done_reason, total_duration=r.total_duration)

    parts, last = [], None
    for p in ol.chat(model=model, messages=[{"role": "user", "content": "hi"}], stream=True, options={"num_predict": 8}):
        parts.append(p.message.content)
        last = p
    expect(last.done and last.eval_count and "".join(parts), "ollama chat stream")
    out(check="ollama.chat.stream", ok=True, lines=len(parts), text="".join(parts), eval_count=last.eval_count)

    g = ol.generate(model=model, prompt="hi", options={"num_predict": 8})
    expect(g.response and g.done, "ollama generate")
    out(check="ollama.generate", ok=True, text=g.response)

    g = ol.generate(model=model, prompt="def fib(n):", raw=True, options={"num_predict": 8})
    expect(g.response and g.done, "ollama raw generate")
    out(check="ollama.generate.raw", ok=True, text=g.response)

    names = [m.model for m in ol.list().models]
    expect(model in names, "ollama list names the model")
    out(check="ollama.list", ok=True, names=names)

    s = ol.show(model)
    expect(s.modelfile is not None, "ollama show")
    out(check="ollama.show", ok=True, details=s.details.model_dump() if s.details else None)

    try:
        ol.chat(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        expect(False, "unknown model raises in ollama")
    except ollama.ResponseError as e:
        out(check="ollama.unknown_model", ok=True, status=e.status_code, error=e.error[:200])


def embeddings(base, model):
    oa = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
    # The SDK asks for base64 by default and decodes it itself.
    e = oa.embeddings.create(model=model, input=["one two", "three"])
    expect(len(e.data) == 2 and len(e.data[0].embedding) > 0, "openai embeddings")
    f = oa.embeddings.create(model=model, input="one two", encoding_format="float")
    expect(abs(f.data[0].embedding[0] - e.data[0].embedding[0]) < 1e-6, "base64 and float agree")
    out(check="openai.embeddings", ok=True, dims=len(e.data[0].embedding), prompt_tokens=e.usage.prompt_tokens)
    ol = ollama.Client(host=base)
    r = ol.embed(model=model, input=["one two", "three"])
    expect(len(r.embeddings) == 2, "ollama embed")
    expect(abs(r.embeddings[0][0] - e.data[0].embedding[0]) < 1e-6, "both dialects embed alike")
    out(check="ollama.embed", ok=True, dims=len(r.embeddings[0]))


def rate_limited(base, model):
    oa = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
    try:
        oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        expect(False, "a 429 upstream raises RateLimitError")
    except openai.RateLimitError as e:
        ra = e.response.headers.get("retry-after")
        out(check="openai.rate_limited", ok=True, status=e.status_code, retry_after=ra, message=str(e)[:200])
    ol = ollama.Client(host=base)
    try:
        ol.chat(model=model, messages=[{"role": "user", "content": "hi"}], stream=False)
        expect(False, "a 429 upstream raises in ollama")
    except ollama.ResponseError as e:
        out(check="ollama.rate_limited", ok=True, status=e.status_code, error=e.error[:200])


def mid_stream(base, model):
    oa = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
    text = ""
    try:
        for c in oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=True):
            if c.choices:
                text += c.choices[0].delta.content or ""
        expect(False, "a stream broken after commit raises, it does not return a cut answer")
    except openai.APIError as e:
        out(check="openai.mid_stream", ok=True, received=text, message=str(e)[:200])
    ol = ollama.Client(host=base)
    text = ""
    try:
        for p in ol.chat(model=model, messages=[{"role": "user", "content": "hi"}], stream=True):
            text += p.message.content
        expect(False, "ollama: a broken stream raises")
    except ollama.ResponseError as e:
        out(check="ollama.mid_stream", ok=True, received=text, error=e.error[:200])


if __name__ == "__main__":
    scenario, base, model = sys.argv[1], sys.argv[2], sys.argv[3]
    {"basic": basic, "embeddings": embeddings, "rate_limited": rate_limited, "mid_stream": mid_stream}[scenario](base, model)
