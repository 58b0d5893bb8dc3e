// The Codex CLI (`@openai/codex`, pinned in package.json) run as `codex exec` against Switchyard's
// Responses API: passed through to an OpenAI deployment (route `auto`), translated for an
// Anthropic one (`claude`) and a Gemini one (`gemini`). Codex runs hermetically: a scratch HOME
// and CODEX_HOME written here, update checks, analytics, feedback, OpenTelemetry, history and
// plugins off, no session files (--ephemeral), and every HTTP(S) request to anything but loopback
// sent to a dead loopback proxy, so nothing leaves the machine.
//
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SWITCHYARD_BASE_URL, SWITCHYARD_KEY, clearUpstream, script, upstream } from './fake.mjs';

// The package's own entry point: it finds the native binary of the platform package and runs it.
const CODEX = fileURLToPath(new URL('./node_modules/@openai/codex/bin/codex.js', import.meta.url));
const RUN_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = 120_000;

// Clears the request log and any script a refused request left unconsumed.
beforeEach(clearUpstream);
afterEach(clearUpstream);

const scratch = [];
afterEach(async () => {
  while (scratch.length) await rm(scratch.pop(), { recursive: true, force: true });
});

// config.toml keys as Codex 0.171.0 reads them (--strict-config refuses unknown ones).
function configToml(route, extra) {
  return `model = ${JSON.stringify(route)}
model_provider = "switchyard"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false
${extra}

[model_providers.switchyard]
name = "Switchyard"
base_url = ${JSON.stringify(SWITCHYARD_BASE_URL)}
env_key = "SWITCHYARD_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

# Plugins look up api.github.com and chatgpt.com at start.
[features]
plugins = false

[analytics]
enabled = false

[feedback]
enabled = false

[history]
persistence = "none"

[otel]
exporter = "none"
`;
}

// Runs `codex exec --json <prompt>` in a scratch working directory; returns its exit, its JSONL
// events and the working directory.
async function codex(route, prompt, { config = '' } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-codex-'));
  scratch.push(dir);
  const home = join(dir, 'home');
  const codexHome = join(home, '.codex');
  const work = join(dir, 'work');
  await mkdir(codexHome, { recursive: true });
  await mkdir(work);
  await writeFile(join(codexHome, 'config.toml'), configToml(route, config));
  const dead = 'http://127.0.0.1:9';
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    CODEX_HOME: codexHome,
    SWITCHYARD_KEY,
    HTTPS_PROXY: dead, HTTP_PROXY: dead, ALL_PROXY: dead, NO_PROXY: '127.0.0.1,localhost',
  };
  const args = ['exec', '--json', '--strict-config', '--skip-git-repo-check', '--ephemeral', '--cd', work, prompt];
  const child = spawn(process.execPath, [CODEX, ...args], {
    cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: RUN_TIMEOUT_MS,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const [code, signal] = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  });
  const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const failure = events.find((e) => e.type === 'turn.failed')?.error?.message ?? '';
  // For assertion messages: the turn's failure, else the end of what Codex printed.
  const log = `codex exited ${code}${signal ? ` (${signal})` : ''}: ` +
    (failure || `${stdout.slice(-2000)}\n--- stderr\n${stderr.slice(-2000)}`);
  return { code, events, failure, work, log };
}
const items = (run, type) => run.events.filter((e) => e.type === 'item.completed' && e.item.type === type).map((e) => e.item);

const echoPrefix = "Hello from Switchyard's demo provider! You said: ";
// Codex's shell tool in this version: exec_command {cmd} (unified exec), run by `bash -lc`.
const marker = 'printf codex-was-here > marker.txt && echo MARKER-$((6*7))';
const shellCall = { tool_calls: [{ name: 'exec_command', arguments: JSON.stringify({ cmd: marker }) }] };

// That Codex ran the scripted shell call: its command_execution event and the file it wrote.
async function assertMarkerRan(run) {
  assert.equal(run.code, 0, run.log);
  const [exec] = items(run, 'command_execution');
  assert.ok(exec, run.log);
  assert.match(exec.command, /printf codex-was-here > marker\.txt/);
  assert.equal(exec.exit_code, 0);
  assert.equal(exec.aggregated_output, 'MARKER-42\n');
  assert.equal(await readFile(join(run.work, 'marker.txt'), 'utf8'), 'codex-was-here');
}

describe('Codex CLI → auto (OpenAI deployment, passed through)', () => {
  test('the request Codex sends reaches the upstream with only the model replaced', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prompt = 'say hi to the gateway';
    const run = await codex('auto', prompt);
    const ups = await upstream();
    assert.equal(ups.length, 1, run.log);
    const { path, body } = ups[0];
    assert.equal(path, '/v1/responses');
    assert.equal(body.model, 'fake-mini-upstream');
    assert.deepEqual(Object.keys(body).sort(), ['client_metadata', 'include', 'input', 'model', 'parallel_tool_calls',
      'prompt_cache_key', 'reasoning', 'store', 'stream', 'tool_choice', 'tools']);
    assert.equal(body.stream, true);
    assert.equal(body.store, false);
    assert.deepEqual(body.include, ['reasoning.encrypted_content']);
    assert.deepEqual(body.reasoning, { summary: 'auto' });
    assert.equal(body.tool_choice, 'auto');
    assert.equal(body.parallel_tool_calls, true);
    assert.equal(body.prompt_cache_key, body.client_metadata.session_id);
    // Tools: plain functions, one `namespace` of functions (sub-agents) and the hosted web_search;
    // the shell is `exec_command`; no apply_patch, custom or local_shell tool for this model.
    assert.deepEqual(body.tools.map((t) => [t.type, t.name]), [
      ['function', 'exec_command'], ['function', 'write_stdin'], ['function', 'request_user_input'],
      ['function', 'view_image'], ['namespace', 'multi_agent_v1'], ['function', 'get_goal'],
      ['function', 'create_goal'], ['function', 'update_goal'], ['web_search', undefined]]);
    const exec = body.tools[0];
    assert.deepEqual(exec.parameters.required, ['cmd']);
    assert.ok(body.tools[4].tools.every((t) => t.type === 'function'));
    // No `instructions`: Codex's system prompt is developer messages; then the environment and
    // the prompt as user messages.
    assert.deepEqual(body.input.map((i) => [i.type, i.role]), [
      ['message', 'developer'], ['message', 'developer'], ['message', 'user'], ['message', 'user']]);
    assert.ok(body.input.every((i) => i.content.every((c) => c.type === 'input_text')));
    assert.match(body.input[2].content[0].text, /^<environment_context>/);
    assert.deepEqual(body.input[3].content, [{ type: 'input_text', text: prompt }]);
  });

  test('plain prompt', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prompt = 'say hi to the gateway';
    const run = await codex('auto', prompt);
    assert.equal(run.code, 0, run.log);
    assert.deepEqual(items(run, 'agent_message').map((m) => m.text), [echoPrefix + prompt]);
    const done = run.events.find((e) => e.type === 'turn.completed');
    assert.ok(done.usage.input_tokens > 0 && done.usage.output_tokens > 0, run.log);
  });

  test('a shell command Codex runs for the model', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prompt = 'write the marker file';
    await script(shellCall, prompt);
    const run = await codex('auto', prompt);
    await assertMarkerRan(run);
    assert.deepEqual(items(run, 'agent_message').map((m) => m.text), [echoPrefix + prompt]);
    // The second request carries the call and its output (stateless: store false, no previous_response_id).
    const ups = await upstream();
    assert.equal(ups.length, 2);
    const [call, output] = ups[1].body.input.slice(-2);
    assert.equal(call.type, 'function_call');
    assert.equal(call.name, 'exec_command');
    assert.deepEqual(JSON.parse(call.arguments), { cmd: marker });
    assert.equal(output.type, 'function_call_output');
    assert.equal(output.call_id, call.call_id);
    assert.match(output.output, /Process exited with code 0[\s\S]*MARKER-42/);
  });
});

// What a translated provider is refused: by name, per attempt (docs/translation.md, "Refused by
// name, never dropped"). `web_search` is a hosted tool only OpenAI runs, refused by design; the
// cases below turn it off in Codex (web_search = "disabled"), as a Codex user on these routes must
// unless the provider sets drop_unsupported_params. Codex's `client_metadata` asks nothing of a
// provider and is not sent; its `namespace` tool (multi_agent_v1) is offered as the functions it holds.
const translated = {
  claude: { provider: 'anthropic (model claude-sonnet-4-5)', path: '/v1/messages' },
  gemini: { provider: 'gemini (model gemini-2.5-flash)', path: '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse' },
};
const WEB_SEARCH_OFF = 'web_search = "disabled"';

for (const [route, { provider, path }] of Object.entries(translated)) {
  describe(`Codex CLI → ${route} (translated)`, () => {
    test("Codex's defaults are refused by name, before anything goes upstream", { timeout: TEST_TIMEOUT_MS }, async () => {
      const run = await codex(route, 'say hi to the gateway');
      assert.notEqual(run.code, 0, run.log);
      const message = run.failure;
      assert.match(message, /unsupported_parameter/, run.log);
      assert.match(message, new RegExp(`Unsupported parameter\\(s\\) for ${provider.replace(/[()]/g, '\\$&')}: .*\`web_search\``), run.log);
      assert.deepEqual(await upstream(), []);
    });

    test('plain prompt, web search off', { timeout: TEST_TIMEOUT_MS }, async () => {
      const prompt = 'say hi to the gateway';
      const run = await codex(route, prompt, { config: WEB_SEARCH_OFF });
      assert.equal(run.code, 0, run.log);
      // The environment and the prompt are consecutive user messages, merged into one turn.
      const [text] = items(run, 'agent_message').map((m) => m.text);
      assert.ok(text.startsWith(echoPrefix) && text.endsWith(prompt), run.log);
      const ups = await upstream();
      assert.equal(ups.length, 1);
      assert.equal(ups[0].path, path);
    });

    test('a shell command Codex runs for the model, web search off', { timeout: TEST_TIMEOUT_MS }, async () => {
      const prompt = 'write the marker file';
      await script(shellCall, prompt);
      const run = await codex(route, prompt, { config: WEB_SEARCH_OFF });
      await assertMarkerRan(run);
      const ups = await upstream();
      assert.equal(ups.length, 2);
      const last = ups[1].body;
      if (route === 'claude') {
        const [result] = last.messages.at(-1).content;
        assert.equal(result.type, 'tool_result');
        assert.equal(result.tool_use_id, last.messages.at(-2).content[0].id);
        assert.match(result.content, /MARKER-42/);
      } else {
        const [part] = last.contents.at(-1).parts;
        assert.equal(part.functionResponse.name, 'exec_command');
        assert.match(JSON.stringify(part.functionResponse.response), /MARKER-42/);
      }
    });
  });
}
