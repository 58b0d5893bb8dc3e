// The official `openai` npm client's Responses API (`client.responses.create`, what Codex and
// the Agents SDK speak) against Switchyard: passed through to an OpenAI deployment (route
// `auto`), translated for an Anthropic one (`claude`) and a Gemini one (`gemini`).
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { SWITCHYARD_BASE_URL, SWITCHYARD_KEY, clearUpstream, lastUpstream, script } from './fake.mjs';

beforeEach(clearUpstream);
const client = new OpenAI({ baseURL: SWITCHYARD_BASE_URL, apiKey: SWITCHYARD_KEY, maxRetries: 0 });


const echo = (said) => `Hello from Switchyard's demo provider! You said: ${said}`;
const tools = [
  { type: 'function', name: 'get_weather', description: 'Weather of a city', strict: false,
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
  { type: 'function', name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } },
];
const calls = [
  { name: 'get_weather', arguments: '{"city":"Paris"}' },
  { name: 'get_time', arguments: '{"tz":"CET"}' },
];

for (const route of ['auto', 'claude', 'gemini']) {
  describe(`Responses API → ${route} upstream`, () => {
    test('plain, with instructions', async () => {
      const r = await client.responses.create({ model: route, instructions: 'Be brief.', input: 'hi', max_output_tokens: 64 });
      assert.equal(r.object, 'response');
      assert.equal(r.status, 'completed');
      assert.equal(r.output_text, echo('hi'));
      assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0, JSON.stringify(r.usage));
      assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
      const up = await lastUpstream();
      if (route === 'auto') {
        // Passed through: OpenAI's own Responses API, only the model replaced.
        assert.equal(up.path, '/v1/responses');
        assert.equal(up.body.model, 'fake-mini-upstream');
        assert.equal(up.body.instructions, 'Be brief.');
        assert.equal(up.body.input, 'hi');
      } else if (route === 'claude') {
        assert.equal(up.body.system, 'Be brief.');
        assert.equal(up.body.max_tokens, 64);
        assert.equal(up.body.messages.length, 1);
        assert.equal(up.body.messages[0].role, 'user');
        assert.deepEqual(up.body.messages[0].content, [{ type: 'text', text: 'hi' }]);
      } else {
        assert.equal(up.body.systemInstruction.parts[0].text, 'Be brief.');
        assert.equal(up.body.generationConfig.maxOutputTokens, 64);
      }
    });

    test('multi-turn with tool calls and their outputs', async () => {
      await script({ tool_calls: calls });
      const first = await client.responses.create({ model: route, input: [{ role: 'user', content: 'weather and time?' }], tools });
      const fc = first.output.filter((o) => o.type === 'function_call');
      assert.deepEqual(fc.map((c) => [c.name, JSON.parse(c.arguments)]), [['get_weather', { city: 'Paris' }], ['get_time', { tz: 'CET' }]]);
      for (const c of fc) assert.match(c.call_id, /\S/);
      // The client runs the tools and sends the whole conversation back (stateless).
      const input = [
        { role: 'user', content: 'weather and time?' },
        ...fc.map((c) => ({ type: 'function_call', call_id: c.call_id, name: c.name, arguments: c.arguments })),
        ...fc.map((c, i) => ({ type: 'function_call_output', call_id: c.call_id, output: i === 0 ? 'sunny' : '12:00' })),
      ];
      const second = await client.responses.create({ model: route, input, tools, store: false });
      assert.equal(second.output_text, echo('weather and time?'));
      const up = await lastUpstream();
      if (route === 'claude') {
        const results = up.body.messages.at(-1).content;
        assert.deepEqual(results.map((b) => [b.type, b.tool_use_id, b.content]),
          fc.map((c, i) => ['tool_result', c.call_id, i === 0 ? 'sunny' : '12:00']));
        assert.deepEqual(up.body.tools.map((t) => t.name), ['get_weather', 'get_time']);
      } else if (route === 'gemini') {
        const parts = up.body.contents.at(-1).parts;
        assert.deepEqual(parts.map((p) => p.functionResponse.name), ['get_weather', 'get_time']);
      } else {
        assert.equal(up.body.input.length, 5);
      }
    });

    test('stream of text', async () => {
      const stream = await client.responses.create({ model: route, input: 'stream me', stream: true });
      let text = '';
      const types = [];
      let completed;
      for await (const event of stream) {
        types.push(event.type);
        if (event.type === 'response.output_text.delta') text += event.delta;
        if (event.type === 'response.completed') completed = event.response;
      }
      assert.equal(text, echo('stream me'));
      assert.equal(types[0], 'response.created');
      assert.equal(types.at(-1), 'response.completed');
      assert.ok(types.includes('response.output_item.added') && types.includes('response.output_item.done'));
      assert.equal(completed.output.find((o) => o.type === 'message').content[0].text, echo('stream me'));
      assert.ok(completed.usage.output_tokens > 0, JSON.stringify(completed.usage));
    });

    test('stream of tool calls', async () => {
      await script({ tool_calls: calls });
      const stream = await client.responses.create({ model: route, input: 'weather?', tools, stream: true });
      const args = {};
      const done = [];
      for await (const event of stream) {
        if (event.type === 'response.function_call_arguments.delta') args[event.item_id] = (args[event.item_id] ?? '') + event.delta;
        if (event.type === 'response.output_item.done' && event.item.type === 'function_call') done.push(event.item);
      }
      assert.deepEqual(done.map((c) => [c.name, JSON.parse(c.arguments)]), [['get_weather', { city: 'Paris' }], ['get_time', { tz: 'CET' }]]);
      for (const c of done) assert.equal(args[c.id], c.arguments);
    });
  });
}

describe('Responses API: what only OpenAI has', () => {
  test('a hosted tool or previous_response_id is refused by name for a provider without it', async () => {
    for (const [extra, name] of [[{ tools: [{ type: 'web_search' }] }, 'web_search'], [{ previous_response_id: 'resp_1' }, 'previous_response_id']]) {
      await assert.rejects(client.responses.create({ model: 'claude', input: 'hi', ...extra }), (e) => {
        assert.equal(e.status, 400);
        assert.match(e.message, new RegExp(name));
        return true;
      });
    }
  });

  test('and passed through to OpenAI, which has it', async () => {
    const r = await client.responses.create({ model: 'auto', input: 'hi', tools: [{ type: 'web_search' }], previous_response_id: 'resp_1' });
    assert.equal(r.output_text, echo('hi'));
    const up = await lastUpstream();
    assert.equal(up.body.previous_response_id, 'resp_1');
    assert.deepEqual(up.body.tools, [{ type: 'web_search' }]);
  });
});

describe('Responses API → Gemini 3', () => {
  for (const stream of [false, true]) {
    test(`a call's thought signature comes back through its call_id${stream ? ' (streamed)' : ''}`, async () => {
      await script({ tool_calls: [calls[0]] });
      let call;
      if (stream) {
        const events = await client.responses.create({ model: 'gemini3', input: 'weather?', tools, stream: true });
        for await (const e of events) if (e.type === 'response.output_item.done' && e.item.type === 'function_call') call = e.item;
      } else {
        call = (await client.responses.create({ model: 'gemini3', input: 'weather?', tools })).output.find((o) => o.type === 'function_call');
      }
      assert.match(call.call_id, /__sig_/);
      const next = await client.responses.create({ model: 'gemini3', tools, input: [
        { role: 'user', content: 'weather?' },
        { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: 'sunny' }] });
      assert.equal(next.output_text, echo('weather?'));
      const up = await lastUpstream();
      assert.match(up.body.contents[1].parts.find((p) => p.functionCall).thoughtSignature, /^gsig_/);
    });
  }
});

describe('Responses API → Azure', () => {
  test("passed through to Azure's v1 Responses API, the deployment's name as the model", async () => {
    const r = await client.responses.create({ model: 'azure', input: 'hi', tools: [{ type: 'web_search' }] });
    assert.equal(r.output_text, echo('hi'));
    const up = await lastUpstream();
    assert.equal(up.path, '/openai/v1/responses');
    assert.equal(up.body.model, 'mini-deployment');
    assert.deepEqual(up.body.tools, [{ type: 'web_search' }]);
    assert.equal(up.headers['api-key'] ?? up.headers['Api-Key'], 'sk-upstream-azure');
  });
});
