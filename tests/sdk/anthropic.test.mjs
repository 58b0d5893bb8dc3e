// The official `@anthropic-ai/sdk` npm client against Switchyard's Anthropic-compatible ingress
// (`/v1/messages`), served by an OpenAI-dialect and a Gemini-dialect upstream.
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';

const { SWITCHYARD_BASE_URL, SWITCHYARD_KEY, FAKE_URL } = process.env;
assert.ok(SWITCHYARD_BASE_URL && SWITCHYARD_KEY && FAKE_URL, 'run these tests through run.sh');
// The Anthropic SDK appends /v1/messages itself.
const client = new Anthropic({ baseURL: SWITCHYARD_BASE_URL.replace(/\/v1$/, ''), apiKey: SWITCHYARD_KEY, maxRetries: 0 });

async function fake(method, path, body) {
  const res = await fetch(`${FAKE_URL}${path}`, {
    method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined,
  });
  assert.equal(res.status, 200);
  return res.json();
}
const script = (behavior) => fake('POST', '/_fake/script', { behavior, times: 1 });
beforeEach(() => fake('DELETE', '/_fake/requests'));

const tools = [
  { name: 'get_weather', description: 'Weather of a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
  { name: 'get_time', input_schema: { type: 'object', properties: { tz: { type: 'string' } } } },
];
const calls = [
  { name: 'get_weather', arguments: '{"city":"Paris"}' },
  { name: 'get_time', arguments: '{"tz":"CET"}' },
];

for (const route of ['auto', 'gemini']) {
  describe(`anthropic SDK → ${route === 'auto' ? 'openai' : 'gemini'} upstream`, () => {
    test('create', async () => {
      const m = await client.messages.create({ model: route, max_tokens: 100, system: 'Be brief.', messages: [{ role: 'user', content: 'hello' }] });
      assert.equal(m.type, 'message');
      assert.equal(m.role, 'assistant');
      assert.equal(m.content[0].type, 'text');
      assert.equal(m.content[0].text, "Hello from Switchyard's demo provider! You said: hello");
      assert.equal(m.stop_reason, 'end_turn');
      assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
    });

    test('stream', async () => {
      const stream = client.messages.stream({ model: route, max_tokens: 100, messages: [{ role: 'user', content: 'hello' }] });
      let text = '';
      stream.on('text', (t) => { text += t; });
      const final = await stream.finalMessage();
      assert.equal(text, "Hello from Switchyard's demo provider! You said: hello");
      assert.equal(final.content.length, 1);
      assert.equal(final.stop_reason, 'end_turn');
      assert.ok(final.usage.output_tokens > 0);
    });

    test('tools, streamed and not', async () => {
      await script({ tool_calls: calls });
      const m = await client.messages.create({ model: route, max_tokens: 100, tools, messages: [{ role: 'user', content: 'w?' }] });
      assert.equal(m.stop_reason, 'tool_use');
      const uses = m.content.filter((b) => b.type === 'tool_use');
      assert.deepEqual(uses.map((b) => [b.name, b.input]), [['get_weather', { city: 'Paris' }], ['get_time', { tz: 'CET' }]]);
      assert.ok(!m.content.some((b) => b.type === 'text' && b.text === ''), 'no empty text block');

      await script({ tool_calls: calls });
      const final = await client.messages.stream({ model: route, max_tokens: 100, tools, messages: [{ role: 'user', content: 'w?' }] }).finalMessage();
      assert.equal(final.stop_reason, 'tool_use');
      assert.deepEqual(final.content.filter((b) => b.type === 'tool_use').map((b) => [b.name, b.input]),
        [['get_weather', { city: 'Paris' }], ['get_time', { tz: 'CET' }]]);

      // The results go back as tool_result blocks.
      const next = await client.messages.create({
        model: route, max_tokens: 100, tools,
        messages: [
          { role: 'user', content: 'w?' },
          { role: 'assistant', content: uses },
          { role: 'user', content: uses.map((u) => ({ type: 'tool_result', tool_use_id: u.id, content: 'ok' })) },
        ],
      });
      assert.equal(next.stop_reason, 'end_turn');
    });

    test('errors are Anthropic SDK error classes', async () => {
      await assert.rejects(client.messages.create({ model: 'no-such-route', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
        (err) => err instanceof Anthropic.NotFoundError);
      const bad = new Anthropic({ baseURL: client.baseURL, apiKey: 'wrong', maxRetries: 0 });
      await assert.rejects(bad.messages.create({ model: route, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
        (err) => err instanceof Anthropic.AuthenticationError);
      await script({ status: 429 });
      await assert.rejects(client.messages.create({ model: route, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
        (err) => err instanceof Anthropic.RateLimitError);
    });

    test('abort mid-stream', async () => {
      await script({ chunks: 40, chunk_delay_ms: 30 });
      const stream = client.messages.stream({ model: route, max_tokens: 100, messages: [{ role: 'user', content: 'long' }] });
      let seen = 0;
      await assert.rejects((async () => {
        for await (const ev of stream) {
          if (ev.type === 'content_block_delta' && ++seen === 2) stream.abort();
        }
      })());
      assert.equal(seen, 2);
    });
  });
}

test('models.list in Anthropic\'s shape', async () => {
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.type, 'model');
    ids.push(m.id);
  }
  assert.ok(ids.includes('auto') && ids.includes('gemini'), ids.join(', '));
});

test('count_tokens estimates', async () => {
  const r = await client.messages.countTokens({ model: 'auto', messages: [{ role: 'user', content: 'hello world, how are you today?' }] });
  assert.ok(r.input_tokens > 5 && r.input_tokens < 30, `${r.input_tokens}`);
});
