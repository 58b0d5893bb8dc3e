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

// What Claude Code sends: large max_tokens ceilings, beta fields with their anthropic-beta
// header, adaptive thinking with an effort.
describe('the Anthropic ingress, as Claude Code uses it', () => {
  const lastUpstream = async () => {
    const all = await fake('GET', '/_fake/requests');
    const last = all.at(-1);
    return { ...last, body: JSON.parse(last.body), headers: Object.fromEntries(last.headers.map ? [] : Object.entries(last.headers).map(([k, v]) => [k.toLowerCase(), v])) };
  };
  const betaBody = { context_management: { edits: [{ type: 'clear_tool_uses_20250919' }] } };

  test('a max_tokens above the model maximum is lowered to it, and said in a header', async () => {
    // Streamed, as Claude Code does (the SDK refuses such a ceiling without streaming).
    const { data: stream, response } = await client.messages
      .create({ model: 'claude', max_tokens: 128000, stream: true, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    let text = '';
    for await (const event of stream) if (event.type === 'content_block_delta') text += event.delta.text ?? '';
    assert.equal(text, "Hello from Switchyard's demo provider! You said: hi");
    assert.equal(response.headers.get('x-switchyard-max-tokens-clamped'), '64000');
    assert.equal((await lastUpstream()).body.max_tokens, 64000);
  });

  test('anthropic-beta reaches Anthropic with the beta fields that need it', async () => {
    await client.messages.create(
      { model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }], ...betaBody },
      { headers: { 'anthropic-beta': 'context-management-2025-06-27' } });
    const up = await lastUpstream();
    assert.equal(up.headers['anthropic-beta'], 'context-management-2025-06-27');
    assert.deepEqual(up.body.context_management, betaBody.context_management);
  });

  for (const route of ['auto', 'gemini']) {
    test(`beta fields without an equivalent are not sent to ${route}; adaptive thinking and effort are mapped`, async () => {
      const m = await client.messages.create(
        { model: route, max_tokens: 1000, messages: [{ role: 'user', content: 'hi' }], thinking: { type: 'adaptive' },
          output_config: { effort: 'high' }, ...betaBody },
        { headers: { 'anthropic-beta': 'context-management-2025-06-27' } });
      assert.equal(m.content.at(-1).text, "Hello from Switchyard's demo provider! You said: hi");
      const up = await lastUpstream();
      assert.equal(up.body.context_management, undefined);
      assert.equal(up.body.output_config, undefined);
      assert.equal(up.headers['anthropic-beta'], undefined);
      if (route === 'auto') assert.equal(up.body.reasoning_effort, 'high');
      else assert.ok(up.body.generationConfig.thinkingConfig, JSON.stringify(up.body.generationConfig));
    });
  }

  for (const stream of [false, true]) {
    test(`a Gemini 3 call's thought signature comes back through the tool_use id${stream ? ' (streamed)' : ''}`, async () => {
      await script({ tool_calls: [calls[0]] });
      const messages = [{ role: 'user', content: 'weather?' }];
      let content;
      if (stream) {
        const s = client.messages.stream({ model: 'gemini3', max_tokens: 200, tools, messages });
        content = (await s.finalMessage()).content;
      } else {
        content = (await client.messages.create({ model: 'gemini3', max_tokens: 200, tools, messages })).content;
      }
      const use = content.find((b) => b.type === 'tool_use');
      assert.match(use.id, /__sig_/);
      // The next turn, as Claude Code sends it: the call and its result, ids unchanged.
      const next = await client.messages.create({ model: 'gemini3', max_tokens: 200, tools, messages: [
        ...messages, { role: 'assistant', content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny' }] }] });
      assert.equal(next.content.at(-1).text, "Hello from Switchyard's demo provider! You said: weather?");
      const up = await lastUpstream();
      const call = up.body.contents[1].parts.find((p) => p.functionCall);
      assert.match(call.thoughtSignature, /^gsig_/, 'Gemini 3 gets its signature back');
    });
  }
});
