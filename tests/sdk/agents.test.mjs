// The OpenAI Agents SDK for JavaScript (`@openai/agents`, pinned in package.json) in its default
// Responses-API mode against Switchyard: passed through to an OpenAI deployment (route `auto`),
// translated for an Anthropic one (`claude`) and a Gemini one (`gemini`). The SDK gets the pinned
// `openai` client pointed at the gateway (the SDK's own is a newer major; it only calls
// responses.create) and tracing off (its exporter would post to api.openai.com).
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { z } from 'zod';
import { Agent, run, setDefaultOpenAIClient, setTracingDisabled, tool } from '@openai/agents';
import { SWITCHYARD_BASE_URL, SWITCHYARD_KEY, clearUpstream, script, upstream } from './fake.mjs';


// Nothing in this process (the SDK's client, its tracing exporter) may reach beyond loopback.
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = new URL(input instanceof Request ? input.url : input);
  if (url.hostname !== '127.0.0.1') throw new Error(`refused a request to ${url}`);
  return realFetch(input, init);
};
// Every request body the SDK's client sends, in order.
const sent = [];
function recordingFetch(url, init) {
  sent.push({ url: String(url), body: JSON.parse(init.body) });
  return fetch(url, init);
}
setTracingDisabled(true);
setDefaultOpenAIClient(new OpenAI({ baseURL: SWITCHYARD_BASE_URL, apiKey: SWITCHYARD_KEY, maxRetries: 0, fetch: recordingFetch }));

beforeEach(async () => {
  sent.length = 0;
  await clearUpstream();
});

const echo = (said) => `Hello from Switchyard's demo provider! You said: ${said}`;

// A weather tool whose calls the test reads back.
function weatherAgent(route) {
  const calls = [];
  const getWeather = tool({
    name: 'get_weather',
    description: 'Weather of a city',
    parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push(city);
      return `sunny in ${city}`;
    },
  });
  return { calls, agent: new Agent({ name: 'Weather', instructions: 'Be brief.', model: route, tools: [getWeather] }) };
}

// What the gateway sent upstream for the tool's output, per provider.
function assertToolOutputUpstream(route, body, callId) {
  if (route === 'auto') {
    const out = body.input.find((i) => i.type === 'function_call_output');
    assert.equal(out.call_id, callId);
    assert.equal(out.output, 'sunny in Paris');
  } else if (route === 'claude') {
    const result = body.messages.at(-1).content.find((b) => b.type === 'tool_result');
    assert.equal(result.tool_use_id, callId);
    assert.equal(result.content, 'sunny in Paris');
  } else {
    const part = body.contents.at(-1).parts.find((p) => p.functionResponse);
    assert.equal(part.functionResponse.name, 'get_weather');
    assert.deepEqual(part.functionResponse.response, { result: 'sunny in Paris' });
  }
}

for (const route of ['auto', 'claude', 'gemini']) {
  describe(`Agents SDK → ${route} upstream`, () => {
    test('plain run', async () => {
      const agent = new Agent({ name: 'Greeter', instructions: 'Be brief.', model: route });
      const result = await run(agent, 'hi');
      assert.equal(result.finalOutput, echo('hi'));
      assert.equal(sent.length, 1);
      assert.equal(sent[0].url, `${SWITCHYARD_BASE_URL}/responses`);
      // The SDK's whole request: no member the gateway or an OpenAI upstream would refuse.
      assert.deepEqual(sent[0].body, {
        model: route, instructions: 'Be brief.', input: [{ role: 'user', content: 'hi' }], include: [], tools: [], stream: false,
      });
      assert.equal(result.rawResponses.length, 1);
      assert.ok(result.rawResponses[0].usage.inputTokens > 0 && result.rawResponses[0].usage.outputTokens > 0);
      const up = await upstream();
      assert.equal(up.length, 1);
      if (route === 'auto') {
        // Passed through: only the model replaced.
        assert.equal(up[0].path, '/v1/responses');
        assert.deepEqual(up[0].body, { ...sent[0].body, model: 'fake-mini-upstream' });
      } else if (route === 'claude') {
        assert.equal(up[0].body.system, 'Be brief.');
        assert.deepEqual(up[0].body.messages, [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]);
        assert.equal(up[0].body.tools, undefined);
      } else {
        assert.equal(up[0].body.systemInstruction.parts[0].text, 'Be brief.');
        assert.deepEqual(up[0].body.contents, [{ role: 'user', parts: [{ text: 'hi' }] }]);
        assert.equal(up[0].body.tools, undefined);
      }
    });

    test('function tool', async () => {
      await script({ tool_calls: [{ name: 'get_weather', arguments: '{"city":"Paris"}' }] });
      const { agent, calls } = weatherAgent(route);
      const result = await run(agent, 'weather in Paris?');
      assert.deepEqual(calls, ['Paris']);
      assert.equal(result.finalOutput, echo('weather in Paris?'));
      assert.equal(sent.length, 2);
      // A strict function tool with the zod schema as JSON Schema, offered on both turns.
      for (const s of sent) {
        assert.deepEqual(s.body.tools.map((t) => [t.type, t.name, t.strict]), [['function', 'get_weather', true]]);
        assert.deepEqual(s.body.tools[0].parameters.properties, { city: { type: 'string' } });
      }
      // The second turn resends the conversation (stateless): the user message, the model's
      // function_call as it came back through the gateway and the tool's function_call_output.
      const [user, call, output] = sent[1].body.input;
      assert.equal(sent[1].body.input.length, 3);
      assert.deepEqual(user, { role: 'user', content: 'weather in Paris?' });
      assert.deepEqual([call.type, call.name, JSON.parse(call.arguments)], ['function_call', 'get_weather', { city: 'Paris' }]);
      assert.match(call.call_id, /\S/);
      assert.deepEqual([output.type, output.call_id, output.output], ['function_call_output', call.call_id, 'sunny in Paris']);
      const up = await upstream();
      assert.equal(up.length, 2);
      assertToolOutputUpstream(route, up[1].body, call.call_id);
    });

    test('function tool, streamed', async () => {
      await script({ tool_calls: [{ name: 'get_weather', arguments: '{"city":"Paris"}' }] });
      const { agent, calls } = weatherAgent(route);
      const result = await run(agent, 'weather in Paris?', { stream: true });
      const names = [];
      let text = '';
      for await (const event of result) {
        if (event.type === 'run_item_stream_event') names.push(event.name);
        if (event.type === 'raw_model_stream_event' && event.data.type === 'output_text_delta') text += event.data.delta;
      }
      await result.completed;
      assert.equal(result.error, null);
      assert.deepEqual(calls, ['Paris']);
      assert.equal(result.finalOutput, echo('weather in Paris?'));
      assert.equal(text, echo('weather in Paris?'));
      assert.deepEqual(names, ['tool_called', 'tool_output', 'message_output_created']);
      assert.equal(sent.length, 2);
      assert.ok(sent.every((s) => s.body.stream === true));
      const output = sent[1].body.input.find((i) => i.type === 'function_call_output');
      assert.equal(output.output, 'sunny in Paris');
      const up = await upstream();
      assert.equal(up.length, 2);
      // Streamed upstream too, in each provider's own way.
      for (const u of up) {
        if (route === 'gemini') assert.match(u.path, /:streamGenerateContent\?alt=sse$/);
        else assert.equal(u.body.stream, true);
      }
      assertToolOutputUpstream(route, up[1].body, output.call_id);
    });
  });
}
