// The official `openai` npm client against a running Switchyard (started by run.sh), whose only
// route `auto` sends everything to the fake provider at FAKE_URL.
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const { SWITCHYARD_BASE_URL, SWITCHYARD_KEY, FAKE_URL } = process.env;
assert.ok(SWITCHYARD_BASE_URL && SWITCHYARD_KEY && FAKE_URL, 'run these tests through run.sh');

// maxRetries 0: a retry by the SDK would hide what the gateway answered the first time.
const client = new OpenAI({ baseURL: SWITCHYARD_BASE_URL, apiKey: SWITCHYARD_KEY, maxRetries: 0 });

const PROMPT = 'ping from sdk';
// What the fake answers when no content is scripted.
const ECHO = `Hello from Switchyard's demo provider! You said: ${PROMPT}`;
const messages = [{ role: 'user', content: PROMPT }];

async function fake(method, path, body) {
  const res = await fetch(`${FAKE_URL}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.equal(res.status, 200, `${method} ${path} on the fake provider`);
  return res.json();
}

const script = (behavior, times = 1) => fake('POST', '/_fake/script', { behavior, times });

// Recorded upstream requests with lower-cased header names and parsed bodies.
async function upstreamRequests() {
  const recorded = await fake('GET', '/_fake/requests');
  return recorded.map((r) => ({
    ...r,
    headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v])),
    body: JSON.parse(r.body),
  }));
}

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const text = (chunks) => chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');

beforeEach(() => fake('DELETE', '/_fake/requests'));

describe('chat completions', () => {
  test('answers with the upstream content, usage and routing headers', async () => {
    const { data, response, request_id } = await client.chat.completions
      .create({ model: 'auto', messages })
      .withResponse();

    assert.equal(data.object, 'chat.completion');
    assert.equal(data.choices.length, 1);
    assert.equal(data.choices[0].message.role, 'assistant');
    assert.equal(data.choices[0].message.content, ECHO);
    assert.equal(data.choices[0].finish_reason, 'stop');
    assert.ok(data.usage.total_tokens > 0, `usage: ${JSON.stringify(data.usage)}`);
    assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);

    assert.equal(response.headers.get('x-switchyard-route'), 'auto');
    assert.equal(response.headers.get('x-switchyard-deployment'), 'fake-mini');
    assert.equal(response.headers.get('x-switchyard-attempts'), '1');
    assert.match(request_id ?? '', /\S/, 'x-request-id is set');

    const upstream = await upstreamRequests();
    assert.equal(upstream.length, 1);
    const [req] = upstream;
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/v1/chat/completions');
    assert.equal(req.body.model, 'fake-mini-upstream');
    assert.deepEqual(req.body.messages, messages);
    // The provider's key goes upstream; the client's key never leaves the gateway.
    assert.equal(req.headers.authorization, 'Bearer sk-upstream');
    for (const [name, value] of Object.entries(req.headers))
      assert.ok(!value.includes(SWITCHYARD_KEY), `client key leaked upstream in ${name}`);
    assert.equal(req.headers['x-request-id'], request_id, 'the same request id reaches upstream');
  });
});

describe('streaming', () => {
  test('deltas add up to the answer and exactly one chunk finishes', async () => {
    const chunks = await collect(
      await client.chat.completions.create({ model: 'auto', messages, stream: true }),
    );

    assert.ok(chunks.length > 2, `only ${chunks.length} chunks`);
    assert.equal(text(chunks), ECHO);
    const finished = chunks.filter((c) => c.choices.some((ch) => ch.finish_reason !== null));
    assert.equal(finished.length, 1);
    assert.equal(finished[0].choices[0].finish_reason, 'stop');
    // The gateway asks upstream for usage itself; a client that did not ask must not see it.
    for (const c of chunks) {
      assert.equal(c.usage ?? null, null, `unrequested usage in ${JSON.stringify(c)}`);
      assert.equal(c.choices.length, 1, `usage-only chunk leaked: ${JSON.stringify(c)}`);
    }
  });

  test('include_usage ends the stream with a usage-only chunk', async () => {
    const chunks = await collect(
      await client.chat.completions.create({
        model: 'auto',
        messages,
        stream: true,
        stream_options: { include_usage: true },
      }),
    );

    assert.equal(text(chunks), ECHO);
    const finished = chunks.filter((c) => c.choices.some((ch) => ch.finish_reason === 'stop'));
    assert.equal(finished.length, 1);
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.ok(last.usage?.total_tokens > 0, `last chunk: ${JSON.stringify(last)}`);
    for (const c of chunks.slice(0, -1))
      assert.equal(c.usage ?? null, null, `usage before the last chunk: ${JSON.stringify(c)}`);
  });
});

describe('models', () => {
  test('lists the routes the key may use', async () => {
    const page = await client.models.list();
    const auto = page.data.find((m) => m.id === 'auto');
    assert.ok(auto, `ids: ${page.data.map((m) => m.id).join(', ')}`);
    assert.equal(auto.object, 'model');
  });
});

describe('errors', () => {
  test('a wrong key is an AuthenticationError (401)', async () => {
    const wrong = new OpenAI({ baseURL: SWITCHYARD_BASE_URL, apiKey: 'sk-wrong', maxRetries: 0 });
    await assert.rejects(wrong.chat.completions.create({ model: 'auto', messages }), (err) => {
      assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err}`);
      assert.equal(err.status, 401);
      assert.equal(err.code, 'invalid_api_key');
      return true;
    });
    assert.deepEqual(await upstreamRequests(), [], 'nothing reaches upstream');
  });

  test('an unknown model is a NotFoundError (404)', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages }), (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError, `got ${err}`);
      assert.equal(err.status, 404);
      assert.equal(err.code, 'model_not_found');
      assert.match(err.message, /no-such-model/);
      return true;
    });
  });

  test('a body without messages is a BadRequestError (400)', async () => {
    // Cast past the SDK's types: the gateway must reject it, not the client.
    const params = /** @type {any} */ ({ model: 'auto' });
    await assert.rejects(client.chat.completions.create(params), (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `got ${err}`);
      assert.equal(err.status, 400);
      assert.equal(err.param, 'messages');
      assert.equal(err.code, 'missing_required_parameter');
      assert.match(err.message, /'messages'/);
      return true;
    });
    assert.deepEqual(await upstreamRequests(), [], 'nothing reaches upstream');
  });

  test('a body over the limit is an APIError 413, not a broken connection', async () => {
    // 6 MiB against the default 4 MiB: the gateway answers at the head (the SDK's fetch reads
    // the answer while it sends; clients that send all first are covered by the integration
    // test AClientSendingAWholeBodyOverTheLimitStillReadsThe413).
    const big = [{ role: 'user', content: 'a'.repeat(6 << 20) }];
    await assert.rejects(client.chat.completions.create({ model: 'auto', messages: big }), (err) => {
      assert.ok(err instanceof OpenAI.APIError && !(err instanceof OpenAI.APIConnectionError), `got ${err}`);
      assert.equal(err.status, 413);
      assert.equal(err.code, 'body_too_large');
      return true;
    });
    assert.deepEqual(await upstreamRequests(), [], 'nothing reaches upstream');
  });

  test("an upstream 429 is a RateLimitError carrying the upstream's body", async () => {
    await script({ status: 429 });
    await assert.rejects(client.chat.completions.create({ model: 'auto', messages }), (err) => {
      assert.ok(err instanceof OpenAI.RateLimitError, `got ${err}`);
      assert.equal(err.status, 429);
      assert.equal(err.type, 'rate_limit_error');
      assert.match(err.message, /Scripted failure from the fake provider/);
      return true;
    });
  });
});

describe('stream abort', () => {
  test('a client leaving mid-stream cancels the upstream request', async () => {
    // 20 chunks 100 ms apart: about 2 s of stream left when the client aborts.
    await script({ chunks: 20, chunk_delay_ms: 100 });
    const abort = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'auto', messages, stream: true },
      { signal: abort.signal },
    );

    // The SDK ends iteration quietly on abort.
    const received = [];
    for await (const chunk of stream) {
      received.push(chunk);
      if (received.length === 2) abort.abort();
    }
    assert.equal(received.length, 2);

    let stats;
    const deadline = Date.now() + 3000;
    do {
      stats = await fake('GET', '/_fake/stats');
      if (stats.aborted_streams >= 1) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    } while (Date.now() < deadline);
    assert.ok(stats.aborted_streams >= 1, `fake stats after 3 s: ${JSON.stringify(stats)}`);
    assert.equal(stats.completed_streams, 0);
  });
});
