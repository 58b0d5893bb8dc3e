// Claude Code (`@anthropic-ai/claude-code`, pinned in package.json) run as `claude -p` against
// Switchyard's Anthropic ingress (POST /v1/messages): passed through to an Anthropic deployment
// (route `claude`), translated for an OpenAI one (`auto`) and a Gemini one (`gemini`).
//
// Claude Code runs hermetically: a scratch HOME and TMPDIR (it keeps per-uid task folders under
// the temporary directory), no session files (--no-session-persistence), telemetry, error
// reporting, feature flags, auto-updates and all other nonessential traffic off by the variables
// this version reads, and every HTTP(S) request to anything but loopback sent to a proxy of this
// file's that records it and refuses it: each run checks that nothing tried to leave the machine.
// Claude Code reaches the gateway through a recorder of this file's that only copies bytes, so
// the tests see what Claude Code itself sends and what the gateway answered it.
// --dangerously-skip-permissions is refused as root (CI is root): tools are granted by name with
// --allowedTools.
import { after, before, beforeEach, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SWITCHYARD_BASE_URL, SWITCHYARD_KEY, clearUpstream, fake, script, upstream } from './fake.mjs';

// The package's `bin`: its postinstall puts the platform package's native binary there.
const CLAUDE = fileURLToPath(new URL('./node_modules/@anthropic-ai/claude-code/bin/claude.exe', import.meta.url));
const VERSION = '2.1.337';
const RUN_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = 120_000;


// What Claude Code sent the gateway, in order: method, url, headers, body, and the gateway's
// status, response headers and (for an error) its JSON body.
const sent = [];
// What Claude Code asked the egress proxy for (`CONNECT host:port`, or `METHOD url`).
const egress = [];
let recorderUrl;
let egressUrl;
const servers = [];

async function listen(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${server.address().port}`;
}

before(async () => {
  const gateway = new URL(SWITCHYARD_BASE_URL);
  recorderUrl = await listen(http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let body;
      try { body = raw.length ? JSON.parse(raw) : undefined; } catch { body = raw.toString(); }
      const entry = { method: req.method, url: req.url, headers: req.headers, body };
      sent.push(entry);
      const forward = http.request(
        { host: gateway.hostname, port: gateway.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          entry.status = answer.statusCode;
          entry.responseHeaders = answer.headers;
          if (answer.statusCode >= 400) {
            let text = '';
            answer.on('data', (c) => { text += c; });
            answer.on('end', () => {
              try { entry.error = JSON.parse(text); } catch { entry.error = text; }
            });
          }
          res.writeHead(answer.statusCode, answer.headers);
          answer.pipe(res);
        });
      forward.on('error', (e) => {
        entry.status = 502;
        res.writeHead(502).end(String(e));
      });
      forward.end(raw);
    });
  }));

  const proxy = http.createServer((req, res) => {
    egress.push(`${req.method} ${req.url}`);
    res.writeHead(403).end();
  });
  proxy.on('connect', (req, socket) => {
    egress.push(`CONNECT ${req.url}`);
    socket.on('error', () => {});
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  egressUrl = await listen(proxy);
});
after(() => Promise.all(servers.map((s) => new Promise((resolve) => {
  s.closeAllConnections?.();
  s.close(resolve);
}))));

// Clears the request log and any script a refused request left unconsumed.
beforeEach(async () => {
  sent.length = 0;
  egress.length = 0;
  await clearUpstream();
});
afterEach(clearUpstream);

const scratch = [];
afterEach(async () => {
  while (scratch.length) await rm(scratch.pop(), { recursive: true, force: true });
});

// A scratch HOME, TMPDIR and working directory.
async function sandbox() {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-claude-'));
  scratch.push(dir);
  const box = { home: join(dir, 'home'), tmp: join(dir, 'tmp'), work: join(dir, 'work') };
  for (const d of Object.values(box)) await mkdir(d);
  return box;
}

// Runs `claude -p --output-format stream-json <prompt>` in the box's working directory; returns
// its exit, its events, its result event and a log for assertion messages.
async function claude(route, prompt, { box, tools = [] } = {}) {
  box ??= await sandbox();
  const env = {
    PATH: process.env.PATH,
    HOME: box.home,
    TMPDIR: box.tmp,
    ANTHROPIC_BASE_URL: recorderUrl,  // Claude Code appends /v1/messages
    ANTHROPIC_API_KEY: SWITCHYARD_KEY,
    // A request for the small fast (Haiku-class) model would go to the same route; none is sent
    // in print mode (checked below: every request is for `route`).
    ANTHROPIC_SMALL_FAST_MODEL: route,
    ANTHROPIC_DEFAULT_HAIKU_MODEL: route,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    DISABLE_AUTOUPDATER: '1',
    CLAUDE_CODE_DISABLE_FEATURE_FLAGS: '1',
    HTTPS_PROXY: egressUrl, HTTP_PROXY: egressUrl, ALL_PROXY: egressUrl, NO_PROXY: '127.0.0.1,localhost',
  };
  const args = ['-p', '--model', route, '--output-format', 'stream-json', '--verbose', '--no-session-persistence'];
  if (tools.length) args.push('--allowedTools', tools.join(','));
  args.push('--', prompt);
  const child = spawn(CLAUDE, args, { cwd: box.work, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: RUN_TIMEOUT_MS });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const [code, signal] = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  });
  const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const result = events.find((e) => e.type === 'result');
  const log = `claude exited ${code}${signal ? ` (${signal})` : ''}: ` +
    `${result ? JSON.stringify(result).slice(0, 2000) : stdout.slice(-2000)}\n--- stderr\n${stderr.slice(-2000)}` +
    `\n--- gateway answers: ${JSON.stringify(sent.map((s) => [s.url, s.status, s.error?.error?.message]))}`;
  assert.deepEqual(egress, [], `Claude Code tried to leave the machine; ${log}`);
  // Every request is a Messages request for the route: no count_tokens, no other model.
  for (const s of sent) {
    assert.equal(`${s.method} ${s.url}`, 'POST /v1/messages?beta=true', log);
    assert.equal(s.body.model, route, log);
  }
  return { code, events, result, box, log };
}

// That the run ended in a successful result.
function assertSucceeded(run) {
  assert.equal(run.code, 0, run.log);
  assert.equal(run.result?.subtype, 'success', run.log);
  assert.equal(run.result.is_error, false, run.log);
}
const blocks = (run, role, type) => run.events.filter((e) => e.type === role)
  .flatMap((e) => e.message.content).filter((b) => b.type === type);

const echoPrefix = "Hello from Switchyard's demo provider! You said: ";

// Claude Code 2.1.337 sends its environment as a mid-conversation `system` message (messages[1],
// role "system", with the beta mid-conversation-tool-changes-2026-07-01): accepted, passed to
// Anthropic where it is, part of the system prompt for other providers.

// Claude Code's tools in this version (print mode, no MCP server): DeferredToolPlaceholder is
// `defer_loading: true`; more (WebFetch, WebSearch, NotebookEdit, …) are loaded by ToolSearch.
const TOOLS = ['Agent', 'Bash', 'Edit', 'ListAgents', 'Read', 'ReportFindings', 'ScheduleWakeup', 'Skill',
  'ToolSearch', 'Workflow', 'DeferredToolPlaceholder', 'Write'];

// The model's tool call and the result Claude Code sent back, as the upstream's dialect has them,
// from the request after the call.
function toolExchange(route, body) {
  if (route === 'claude') {
    const [call, answer] = body.messages.slice(-2);
    const use = call.content.find((b) => b.type === 'tool_use');
    const result = answer.content.find((b) => b.type === 'tool_result');
    assert.equal(result.tool_use_id, use.id);
    return { name: use.name, input: use.input, output: result.content, assistant: call.content };
  }
  if (route === 'auto') {
    const [call, answer] = body.messages.slice(-2);
    assert.equal(answer.role, 'tool');
    assert.equal(answer.tool_call_id, call.tool_calls[0].id);
    return { name: call.tool_calls[0].function.name, input: JSON.parse(call.tool_calls[0].function.arguments),
      output: answer.content, assistant: call };
  }
  const [call, answer] = body.contents.slice(-2);
  const fc = call.parts.find((p) => p.functionCall).functionCall;
  const fr = answer.parts.find((p) => p.functionResponse).functionResponse;
  assert.equal(fr.name, fc.name);
  return { name: fc.name, input: fc.args, output: fr.response.result, assistant: call };
}

const upstreamPath = {
  claude: '/v1/messages',
  auto: '/v1/chat/completions',
  gemini: '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse',
};

// Claude Code's Bash tool: {command, description}; the command writes a marker file.
const marker = 'printf claude-was-here > marker.txt && echo MARKER-$((6*7))';
const bashCall = { name: 'Bash', arguments: JSON.stringify({ command: marker, description: 'Write the marker file' }) };

describe('Claude Code → claude (Anthropic deployment, passed through)', () => {
  test('the request Claude Code sends reaches Anthropic with only the model replaced', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prompt = 'say hi to the gateway';
    const run = await claude('claude', prompt);
    assertSucceeded(run);
    const cc = sent.at(-1);
    const ups = await upstream();
    assert.equal(ups.length, 1, run.log);
    const up = ups[0];
    assert.equal(up.path, '/v1/messages');

    // Headers Claude Code sends: the gateway key as x-api-key, its betas, the Stainless SDK's.
    assert.equal(cc.headers['x-api-key'], SWITCHYARD_KEY);
    assert.equal(cc.headers['anthropic-version'], '2023-06-01');
    assert.match(cc.headers['user-agent'], new RegExp(`^claude-cli/${VERSION.replace(/\./g, '\\.')} \\(external, sdk-cli\\)$`));
    assert.equal(cc.headers['x-app'], 'cli');
    assert.deepEqual(cc.headers['anthropic-beta'].split(','), ['claude-code-20250219', 'interleaved-thinking-2025-05-14',
      'context-management-2025-06-27', 'mid-conversation-tool-changes-2026-07-01', 'thinking-token-count-2026-05-13', 'advanced-tool-use-2025-11-20', 'effort-2025-11-24',
      'thinking-display-updates-2026-08-18']);
    // Upstream: the deployment's key, and anthropic-beta as Claude Code sent it.
    assert.equal(up.headers['x-api-key'], 'sk-upstream-anthropic');
    assert.equal(up.headers['anthropic-version'], '2023-06-01');
    assert.equal(up.headers['anthropic-beta'], cc.headers['anthropic-beta']);

    // The body: Claude Code's, model replaced, nothing else changed.
    assert.deepEqual(up.body, { ...cc.body, model: 'claude-sonnet-4-5' });
    const { body } = up;
    assert.deepEqual(Object.keys(body).sort(), ['context_management', 'max_tokens', 'messages', 'metadata', 'model',
      'output_config', 'stream', 'system', 'thinking', 'tools']);
    assert.equal(body.stream, true);
    assert.equal(body.max_tokens, 32000);  // below the model's 64000: not clamped
    // Thinking shown as it goes ("updates", with its beta) because stream-json --verbose prints it;
    // with --output-format json Claude Code asks for display "omitted" and drops that beta.
    assert.deepEqual(body.thinking, { type: 'adaptive', display: 'updates' });
    assert.deepEqual(body.output_config, { effort: 'high' });
    assert.deepEqual(body.context_management, { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] });
    assert.deepEqual(Object.keys(JSON.parse(body.metadata.user_id)).sort(), ['account_uuid', 'device_id', 'session_id']);
    // System: a billing line, then cached prompt blocks.
    assert.equal(body.system.length, 3);
    assert.ok(body.system.every((b) => b.type === 'text'));
    assert.match(body.system[0].text, /^x-anthropic-billing-header: cc_version=2\.1\.337\./);
    assert.deepEqual(body.system.slice(1).map((b) => b.cache_control), [{ type: 'ephemeral' }, { type: 'ephemeral' }]);
    // One user turn — system reminders, then the prompt — and the environment
    // as a system message after it (mid-conversation-tool-changes).
    assert.deepEqual(body.messages.map((m) => m.role), ['user', 'system']);
    assert.deepEqual(body.messages[0].content.at(-1), { type: 'text', text: prompt });
    // The cache breakpoint is on the conversation's last block: the environment's.
    assert.deepEqual(body.messages[1].content.at(-1).cache_control, { type: 'ephemeral' });
    assert.ok(body.messages[0].content.slice(0, -1).every((b) => b.type === 'text' && b.text.startsWith('<system-reminder>')));
    // Tools: custom tools only (no server tools), JSON Schema 2020-12.
    assert.deepEqual(body.tools.map((t) => t.name), TOOLS);
    assert.ok(body.tools.every((t) => !t.type && t.input_schema?.type === 'object'));
    assert.deepEqual(body.tools.filter((t) => t.defer_loading).map((t) => t.name), ['DeferredToolPlaceholder']);
    const tool = (name) => body.tools.find((t) => t.name === name).input_schema;
    assert.deepEqual(tool('Bash').required, ['command']);
    assert.ok(['command', 'description', 'timeout', 'run_in_background'].every((k) => k in tool('Bash').properties));
    assert.deepEqual(tool('Read').required, ['file_path']);
  });
});

describe('Claude Code → auto (OpenAI deployment, translated)', () => {
  test('the request is translated for OpenAI; what only Anthropic has is left out', { timeout: TEST_TIMEOUT_MS }, async () => {
    const run = await claude('auto', 'say hi to the gateway');
    assertSucceeded(run);
    const cc = sent.at(-1);
    const ups = await upstream();
    assert.equal(ups.length, 1, run.log);
    const { path, headers, body } = ups[0];
    assert.equal(path, '/v1/chat/completions');
    assert.equal(headers['anthropic-beta'], undefined);
    assert.deepEqual(Object.keys(body).sort(), ['max_completion_tokens', 'messages', 'model', 'reasoning_effort', 'stream',
      'stream_options', 'tools', 'user']);
    assert.equal(body.model, 'fake-mini-upstream');
    assert.equal(body.max_completion_tokens, 32000);
    assert.equal(body.reasoning_effort, 'high');  // adaptive thinking at effort high
    assert.equal(body.user, cc.body.metadata.user_id);
    assert.deepEqual(body.messages.map((m) => m.role), ['system', 'user']);
    assert.deepEqual(body.tools.map((t) => [t.type, t.function.name]), TOOLS.map((n) => ['function', n]));
  });
});

describe('Claude Code → gemini (Gemini deployment, translated)', () => {
  test('the request is translated for Gemini; what only Anthropic has is left out', { timeout: TEST_TIMEOUT_MS }, async () => {
    const run = await claude('gemini', 'say hi to the gateway');
    assertSucceeded(run);
    const ups = await upstream();
    assert.equal(ups.length, 1, run.log);
    const { path, body } = ups[0];
    assert.equal(path, upstreamPath.gemini);
    assert.deepEqual(Object.keys(body).sort(), ['contents', 'generationConfig', 'systemInstruction', 'tools']);
    assert.deepEqual(body.generationConfig, { maxOutputTokens: 32000, thinkingConfig: { thinkingBudget: 24576, includeThoughts: true } });
    assert.deepEqual(body.contents.map((c) => c.role), ['user']);
    // The system prompt's three blocks and the environment's system message after them.
    assert.ok(body.systemInstruction.parts.length > 3, JSON.stringify(body.systemInstruction));
    assert.deepEqual(body.tools.flatMap((t) => t.functionDeclarations.map((f) => f.name)), TOOLS);
  });
});

for (const route of ['claude', 'auto', 'gemini']) {
  describe(`Claude Code → ${route}`, () => {
    test('plain prompt', { timeout: TEST_TIMEOUT_MS }, async () => {
      const prompt = 'say hi to the gateway';
      const run = await claude(route, prompt);
      assertSucceeded(run);
      assert.deepEqual(sent.map((r) => r.status), [200], run.log);
      assert.equal(sent[0].responseHeaders['x-switchyard-route'], route);
      // The fake echoes the last user turn: the system reminders, then the prompt.
      assert.ok(run.result.result.startsWith(echoPrefix) && run.result.result.endsWith(prompt), run.log);
      assert.equal(run.result.num_turns, 1);
      assert.ok(run.result.usage.input_tokens > 0 && run.result.usage.output_tokens > 0, run.log);
      const ups = await upstream();
      assert.deepEqual(ups.map((u) => u.path), [upstreamPath[route]]);
    });

    test('a Bash command Claude Code runs for the model', { timeout: TEST_TIMEOUT_MS }, async () => {
      const prompt = 'write the marker file';
      await script({ tool_calls: [bashCall] }, prompt);
      const run = await claude(route, prompt, { tools: ['Bash'] });
      assertSucceeded(run);
      assert.equal(run.result.num_turns, 2);
      assert.deepEqual(run.result.permission_denials, []);
      assert.equal(await readFile(join(run.box.work, 'marker.txt'), 'utf8'), 'claude-was-here');
      const [use] = blocks(run, 'assistant', 'tool_use');
      assert.deepEqual([use.name, use.input], ['Bash', JSON.parse(bashCall.arguments)]);
      const [result] = blocks(run, 'user', 'tool_result');
      assert.equal(result.tool_use_id, use.id);
      assert.equal(result.content, 'MARKER-42');
      // The second upstream request carries the call and its output.
      const ups = await upstream();
      assert.equal(ups.length, 2, run.log);
      const exchange = toolExchange(route, ups[1].body);
      assert.equal(exchange.name, 'Bash');
      assert.deepEqual(exchange.input, JSON.parse(bashCall.arguments));
      assert.equal(exchange.output, 'MARKER-42');
    });

    test('a file Claude Code reads for the model', { timeout: TEST_TIMEOUT_MS }, async () => {
      const prompt = 'read the notes';
      const box = await sandbox();
      const file = join(box.work, 'notes.txt');
      await writeFile(file, 'first line\nthe secret is 4242\n');
      await script({ tool_calls: [{ name: 'Read', arguments: JSON.stringify({ file_path: file }) }] }, prompt);
      const run = await claude(route, prompt, { box, tools: ['Read'] });
      assertSucceeded(run);
      assert.equal(run.result.num_turns, 2);
      const ups = await upstream();
      assert.equal(ups.length, 2, run.log);
      const exchange = toolExchange(route, ups[1].body);
      assert.equal(exchange.name, 'Read');
      assert.deepEqual(exchange.input, { file_path: file });
      // Read answers in `cat -n` form.
      assert.match(exchange.output, /^\s*1\tfirst line\n\s*2\tthe secret is 4242\n/);
    });

    test('thinking before a tool call, and what goes back next turn', { timeout: TEST_TIMEOUT_MS }, async () => {
      const prompt = 'think, then write the marker file';
      const reasoning = 'The user wants the marker file: one Bash command does it.';
      await script({ reasoning, tool_calls: [bashCall] }, prompt);
      const run = await claude(route, prompt, { tools: ['Bash'] });
      assertSucceeded(run);
      assert.equal(await readFile(join(run.box.work, 'marker.txt'), 'utf8'), 'claude-was-here');
      const [thinking] = blocks(run, 'assistant', 'thinking');
      assert.equal(thinking?.thinking, reasoning, run.log);
      const ups = await upstream();
      assert.equal(ups.length, 2, run.log);
      const { assistant } = toolExchange(route, ups[1].body);
      if (route === 'claude') {
        // Anthropic's signed thinking goes back before the tool call, signature and all.
        assert.match(thinking.signature, /^sig_fake-/);
        assert.deepEqual(assistant.map((b) => b.type), ['thinking', 'tool_use']);
        assert.deepEqual(assistant[0], { type: 'thinking', thinking: reasoning, signature: thinking.signature });
      } else {
        // Another provider's reasoning reaches Claude Code unsigned, and unsigned thinking is not
        // replayed: the assistant turn holds the call alone.
        assert.equal(thinking.signature, '');
        if (route === 'auto') assert.deepEqual(Object.keys(assistant).sort(), ['content', 'role', 'tool_calls']);
        // Gemini's thought signature of the call came back in the tool_use id (docs/translation.md).
        else assert.deepEqual(assistant.parts.map((p) => Object.keys(p)), [['functionCall', 'thoughtSignature']]);
      }
    });

    test("Claude Code's mid-conversation system message is accepted", {
      timeout: TEST_TIMEOUT_MS,
    }, async () => {
      const run = await claude(route, 'say hi to the gateway');
      assertSucceeded(run);
      assert.deepEqual(sent.map((s) => s.status), [200], run.log);
      assert.deepEqual(sent[0].body.messages.map((m) => m.role), ['user', 'system']);
      if (route === 'claude') {
        const [up] = await upstream();
        assert.deepEqual(up.body.messages, sent[0].body.messages);
      }
    });

    test('ToolSearch loads a deferred tool (a tool_reference block in the tool result)', {
      timeout: TEST_TIMEOUT_MS,
    }, async () => {
      const prompt = 'find the fetch tool';
      await script({ tool_calls: [{ name: 'ToolSearch', arguments: JSON.stringify({ query: 'select:WebFetch' }) }] }, prompt);
      const run = await claude(route, prompt);
      assertSucceeded(run);
      // Nothing refused: tool search stays on.
      assert.deepEqual(sent.map((s) => s.status), [200, 200], run.log);
      const last = sent.at(-1).body;
      assert.ok(last.tools.some((t) => t.name === 'ToolSearch'), run.log);
      const result = last.messages.at(-1).content.find((b) => b.type === 'tool_result');
      assert.deepEqual(result.content, [{ type: 'tool_reference', tool_name: 'WebFetch' }]);
      if (route === 'claude') {
        const ups = await upstream();
        assert.deepEqual(ups[1].body, { ...last, model: 'claude-sonnet-4-5' });
      }
    });
  });
}
