// The official `openai` npm client against Switchyard routes served by Anthropic- and
// Gemini-dialect upstreams (the fake provider speaking those APIs), and embeddings.
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const { SWITCHYARD_BASE_URL, SWITCHYARD_KEY, FAKE_URL } = process.env;
assert.ok(SWITCHYARD_BASE_URL && SWITCHYARD_KEY && FAKE_URL, 'run these tests through run.sh');
const client = new OpenAI({ baseURL: SWITCHYARD_BASE_URL, apiKey: SWITCHYARD_KEY, maxRetries: 0 });

async function fake(method, path, body) {
  const res = await fetch(`${FAKE_URL}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.equal(res.status, 200);
  return res.json();
}
const script = (behavior) => fake('POST', '/_fake/script', { behavior, times: 1 });
const lastUpstream = async () => {
  const all = await fake('GET', '/_fake/requests');
  return { ...all.at(-1), body: JSON.parse(all.at(-1).body) };
};
beforeEach(() => fake('DELETE', '/_fake/requests'));

const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false } } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } },
];
const calls = [
  { name: 'get_weather', arguments: '{"city":"Paris"}' },
  { name: 'get_time', arguments: '{"tz":"CET"}' },
];

for (const route of ['claude', 'gemini']) {
  describe(`openai SDK → ${route} upstream`, () => {
    test('chat', async () => {
      const r = await client.chat.completions.create({
        model: route, max_tokens: 64, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }] });
      assert.equal(r.choices[0].message.content, "Hello from Switchyard's demo provider! You said: hi");
      assert.equal(r.choices[0].finish_reason, 'stop');
      assert.ok(r.usage.prompt_tokens > 0);
      const up = await lastUpstream();
      if (route === 'claude') assert.equal(up.body.system, 'Be brief.');
      else assert.equal(up.body.systemInstruction.parts[0].text, 'Be brief.');
    });

    test('stream', async () => {
      const stream = await client.chat.completions.create({
        model: route, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
      let text = '';
      let usage;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? '';
        if (chunk.usage) usage = chunk.usage;
      }
      assert.equal(text, "Hello from Switchyard's demo provider! You said: hi");
      assert.ok(usage && usage.total_tokens > 0);
    });

    test('parallel tool calls, not streamed, then the results sent back', async () => {
      await script({ tool_calls: calls });
      const r = await client.chat.completions.create({ model: route, messages: [{ role: 'user', content: 'w?' }], tools });
      const msg = r.choices[0].message;
      assert.equal(r.choices[0].finish_reason, 'tool_calls');
      assert.deepEqual(msg.tool_calls.map((c) => c.function.name), ['get_weather', 'get_time']);
      assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { city: 'Paris' });
      // The next turn with both results: the fake checks pairing (Anthropic) and names (Gemini).
      const next = await client.chat.completions.create({
        model: route, tools,
        messages: [
          { role: 'user', content: 'w?' }, msg,
          { role: 'tool', tool_call_id: msg.tool_calls[0].id, content: 'sunny' },
          { role: 'tool', tool_call_id: msg.tool_calls[1].id, content: '14:00' },
        ],
      });
      assert.equal(next.choices[0].finish_reason, 'stop');
      const up = await lastUpstream();
      if (route === 'gemini') {
        const names = up.body.contents.flatMap((c) => c.parts).filter((p) => p.functionResponse).map((p) => p.functionResponse.name);
        assert.deepEqual(names, ['get_weather', 'get_time']);
      } else {
        const results = up.body.messages.at(-1).content.filter((b) => b.type === 'tool_result');
        assert.deepEqual(results.map((b) => b.tool_use_id), msg.tool_calls.map((c) => c.id));
      }
    });

    test('tool calls streamed', async () => {
      await script({ tool_calls: calls });
      const stream = client.chat.completions.stream({ model: route, messages: [{ role: 'user', content: 'w?' }], tools });
      const final = await stream.finalChatCompletion();
      const got = final.choices[0].message.tool_calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]);
      assert.deepEqual(got, [['get_weather', { city: 'Paris' }], ['get_time', { tz: 'CET' }]]);
      assert.equal(final.choices[0].finish_reason, 'tool_calls');
    });

    test('json_schema structured output', async () => {
      await script({ content: '{"name":"Ada","age":36}' });
      const r = await client.chat.completions.create({
        model: route, messages: [{ role: 'user', content: 'a person' }],
        response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true,
          schema: { type: 'object', additionalProperties: false, properties: { name: { type: 'string' }, age: { type: 'integer' } }, required: ['name', 'age'] } } },
      });
      assert.deepEqual(JSON.parse(r.choices[0].message.content), { name: 'Ada', age: 36 });
      const up = await lastUpstream();
      if (route === 'gemini') assert.equal(up.body.generationConfig.responseMimeType, 'application/json');
      else assert.equal(up.body.tool_choice.name, 'person');
    });

    test('upstream errors become the SDK error classes', async () => {
      await script({ status: 429 });
      await assert.rejects(client.chat.completions.create({ model: route, messages: [{ role: 'user', content: 'x' }] }),
        (err) => err instanceof OpenAI.RateLimitError);
    });
  });
}

describe('embeddings', () => {
  for (const route of ['embed-gemini', 'embed-openai']) {
    test(`${route}: batch input, base64 by default in the SDK`, async () => {
      const r = await client.embeddings.create({ model: route, input: ['ab', 'xyz'] });
      assert.equal(r.data.length, 2);
      // The fake's vectors: [length, first char code, 0.5, -0.25]
      assert.deepEqual(Array.from(r.data[1].embedding), [3, 120, 0.5, -0.25]);
      const f = await client.embeddings.create({ model: route, input: 'ab', encoding_format: 'float' });
      assert.deepEqual(f.data[0].embedding, [2, 97, 0.5, -0.25]);
    });
  }
});
