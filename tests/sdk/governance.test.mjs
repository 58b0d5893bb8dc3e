// Governance through the official clients: keys made with the admin API (/admin/v1, plain fetch
// with the admin credential run.sh configured), their budgets and rate limits, and the 429s that
// refuse them as the `openai` and `@anthropic-ai/sdk` clients see them (error classes, codes,
// retry headers, and whether the SDK retries on its own).
import { before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const { SWITCHYARD_BASE_URL, SWITCHYARD_KEY, SWITCHYARD_ADMIN_URL, SWITCHYARD_ADMIN_KEY, FAKE_URL } = process.env;
assert.ok(SWITCHYARD_BASE_URL && SWITCHYARD_KEY && SWITCHYARD_ADMIN_URL && SWITCHYARD_ADMIN_KEY && FAKE_URL,
  'run these tests through run.sh');
// The Anthropic SDK appends /v1/messages itself.
const ANTHROPIC_BASE_URL = SWITCHYARD_BASE_URL.replace(/\/v1$/, '');

const PROMPT = 'ping from sdk';
const ECHO = `Hello from Switchyard's demo provider! You said: ${PROMPT}`;
const messages = [{ role: 'user', content: PROMPT }];
// `auto` is unpriced (a budget reserves nothing on it); `priced` is the same fake model with a
// price, so that a budget has a ceiling to reserve and refuse.
const PRICED = 'priced';

async function fake(method, path, body) {
  const res = await fetch(`${FAKE_URL}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.equal(res.status, 200, `${method} ${path} on the fake provider`);
  return res.json();
}
const upstreamCount = async () => (await fake('GET', '/_fake/requests')).length;
beforeEach(() => fake('DELETE', '/_fake/requests'));

/** A call of the admin API; asserts the status and returns the parsed body. */
async function admin(method, path, body, { status = 200, token = SWITCHYARD_ADMIN_KEY } = {}) {
  const res = await fetch(`${SWITCHYARD_ADMIN_URL}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  assert.equal(res.status, status, `${method} /admin/v1${path}: ${JSON.stringify(json)}`);
  return json;
}

let serial = 0;
const unique = (prefix) => `${prefix}-${++serial}`;

let team;
before(async () => {
  team = await admin('POST', '/teams', { id: unique('sdk-team'), name: 'SDK tests' }, { status: 201 });
});

/** A new key in the team; its `secret` exists only in this answer. */
async function newKey(name) {
  const key = await admin('POST', '/keys', { name: unique(name), team: team.id }, { status: 201 });
  assert.match(key.secret ?? '', /^sk-sy-[A-Za-z0-9]{48}$/, `key: ${JSON.stringify(key)}`);
  return key;
}

/** A fetch for the SDKs that records every HTTP exchange they make. */
function countingFetch() {
  const seen = [];
  const counted = async (url, init) => {
    const res = await fetch(url, init);
    seen.push({ status: res.status, requestId: res.headers.get('x-request-id'), headers: res.headers });
    return res;
  };
  return { fetch: counted, seen };
}

/**
 * The key's ledger rows once every listed request has its row. The gateway writes a refusal's
 * row after answering it, on its ledger thread, so a row may land a moment after the answer.
 */
async function ledgerRows(keyId, requestIds) {
  const deadline = Date.now() + 5000;
  for (;;) {
    // From the team's creation on: the ledger lists the oldest rows first, up to `limit`.
    const from = encodeURIComponent(team.created_at);
    const rows = (await admin('GET', `/ledger?from=${from}`)).data.filter((r) => r.key === keyId);
    const missing = requestIds.filter((id) => !rows.some((r) => r.request_id === id));
    if (missing.length === 0) return rows;
    if (Date.now() > deadline)
      assert.fail(`no ledger row for ${missing.join(', ')} after 5 s; the key's rows: ${JSON.stringify(rows)}`);
    await sleep(20);
  }
}

const openai = (apiKey, options = {}) => new OpenAI({ baseURL: SWITCHYARD_BASE_URL, apiKey, maxRetries: 0, ...options });
const anthropic = (apiKey, options = {}) =>
  new Anthropic({ baseURL: ANTHROPIC_BASE_URL, apiKey, maxRetries: 0, ...options });

describe('admin API', () => {
  test('a key made for a team shows its secret once, and the secret is a working client key', async () => {
    assert.equal(team.object, 'team');
    assert.equal(team.name, 'SDK tests');

    const key = await newKey('made');
    assert.equal(key.object, 'key');
    assert.match(key.id, /^key_/);
    assert.equal(key.team, team.id);
    assert.equal(key.prefix, key.secret.slice(0, 10));
    assert.deepEqual(key.routes, ['*']);
    assert.equal(key.disabled, false);

    // Only the answer to the POST carries the secret.
    const got = await admin('GET', `/keys/${key.id}`);
    assert.equal(got.id, key.id);
    assert.equal(got.prefix, key.prefix);
    assert.equal('secret' in got, false, `GET shows: ${JSON.stringify(got)}`);
    const listed = await admin('GET', `/keys?team=${encodeURIComponent(team.id)}`);
    const mine = listed.data.find((k) => k.id === key.id);
    assert.ok(mine, `listed: ${JSON.stringify(listed)}`);
    assert.equal('secret' in mine, false);
    assert.ok(listed.data.every((k) => k.team === team.id));

    const r = await openai(key.secret).chat.completions.create({ model: 'auto', messages });
    assert.equal(r.choices[0].message.content, ECHO);
  });
});

describe('budgets', () => {
  /** A key with a budget smaller than any request to `priced` may cost. */
  async function keyWithTinyBudget(name) {
    const key = await newKey(name);
    const budget = await admin('POST', '/budgets', { scope: 'key', subject: key.id, limit_usd: '0.000001' }, { status: 201 });
    assert.equal(budget.limit_usd, '0.000001');
    assert.equal(budget.hard, true);
    assert.equal(budget.spent_usd, '0');
    assert.equal(budget.remaining_usd, '0.000001');
    return { key, budget };
  }

  test('openai: an exhausted budget is a RateLimitError budget_exceeded that says not to retry', async () => {
    const { key, budget } = await keyWithTinyBudget('budget-openai');

    let first;
    await assert.rejects(
      openai(key.secret).chat.completions.create({ model: PRICED, max_tokens: 16, messages }),
      (err) => {
        first = err;
        assert.ok(err instanceof OpenAI.RateLimitError, `got ${err}`);
        assert.equal(err.status, 429);
        assert.equal(err.code, 'budget_exceeded');
        assert.equal(err.type, 'rate_limit_error');
        assert.ok(err.message.includes(`budget ${budget.id}`), err.message);
        assert.ok(err.message.includes(`key '${key.id}'`), err.message);
        assert.match(err.message, /limit \$0\.000001, spent \$0\b/);
        const ceiling = err.message.match(/this request may cost up to \$(\d+\.\d+)\./);
        assert.ok(ceiling && Number(ceiling[1]) > 0.000001, err.message);
        assert.equal(err.headers.get('x-should-retry'), 'false');
        // A budget does not come back within seconds: no wait is suggested.
        assert.equal(err.headers.get('retry-after'), null);
        assert.equal(err.headers.get('x-switchyard-route'), PRICED);
        return true;
      },
    );
    assert.equal(await upstreamCount(), 0, 'a refused request reaches no provider');

    // With retries allowed the SDK still asks once: x-should-retry: false overrides its rule
    // of retrying every 429.
    const { fetch: counted, seen } = countingFetch();
    await assert.rejects(
      openai(key.secret, { maxRetries: 2, fetch: counted }).chat.completions.create({ model: PRICED, max_tokens: 16, messages }),
      (err) => {
        assert.ok(err instanceof OpenAI.RateLimitError, `got ${err}`);
        assert.equal(err.code, 'budget_exceeded');
        return true;
      },
    );
    assert.deepEqual(seen.map((s) => s.status), [429], 'one HTTP request, no retry');
    assert.equal(await upstreamCount(), 0);

    // The gateway saw exactly one refusal per call: the key's ledger holds the two, no more.
    const rows = await ledgerRows(key.id, [first.requestID, seen[0].requestId]);
    assert.deepEqual(rows.map((r) => r.request_id).sort(), [first.requestID, seen[0].requestId].sort());
    for (const row of rows) {
      assert.equal(row.status, 429);
      assert.equal(row.error, 'budget_exceeded');
      assert.equal(row.route, PRICED);
      assert.equal(row.team, team.id);
      assert.equal(row.dialect, 'openai');
      assert.equal(row.attempts, 0, 'no upstream attempt');
    }

    // A refusal holds nothing back from the budget.
    const after = await admin('GET', `/budgets/${budget.id}`);
    assert.equal(after.spent_usd, '0');
    assert.equal(after.reserved_usd, '0');
  });

  test('anthropic: an exhausted budget is a RateLimitError in Anthropic\'s error shape, not retried', async () => {
    const { key, budget } = await keyWithTinyBudget('budget-anthropic');
    const { fetch: counted, seen } = countingFetch();
    await assert.rejects(
      anthropic(key.secret, { maxRetries: 2, fetch: counted }).messages.create({ model: PRICED, max_tokens: 16, messages }),
      (err) => {
        assert.ok(err instanceof Anthropic.RateLimitError, `got ${err}`);
        assert.equal(err.status, 429);
        assert.equal(err.error.type, 'error');
        assert.equal(err.error.error.type, 'rate_limit_error');
        assert.equal(err.type, 'rate_limit_error');
        assert.ok(err.error.error.message.includes(`budget ${budget.id}`), err.error.error.message);
        assert.match(err.error.error.message, /^Budget exceeded for key '/);
        assert.equal(err.headers.get('x-should-retry'), 'false');
        return true;
      },
    );
    assert.deepEqual(seen.map((s) => s.status), [429], 'one HTTP request, no retry');
    assert.equal(await upstreamCount(), 0);
    const rows = await ledgerRows(key.id, [seen[0].requestId]);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].error, 'budget_exceeded');
    assert.equal(rows[0].dialect, 'anthropic');
  });
});

describe('rate limits', () => {
  /** A new key limited to `rpm` requests a minute. */
  async function keyWithRpm(name, rpm) {
    const key = await newKey(name);
    const limit = await admin('POST', '/limits', { scope: 'key', subject: key.id, rpm }, { status: 201 });
    assert.equal(limit.rpm, rpm);
    assert.equal(limit.tpm, null);
    return key;
  }

  test('openai: past rpm the request is a RateLimitError with retry-after and x-ratelimit-* headers', async () => {
    const key = await keyWithRpm('rpm-openai', 2);
    const client = openai(key.secret);
    for (let i = 0; i < 2; ++i) {
      const r = await client.chat.completions.create({ model: 'auto', messages });
      assert.equal(r.choices[0].message.content, ECHO);
    }
    let refused;
    await assert.rejects(client.chat.completions.create({ model: 'auto', messages }), (err) => {
      refused = err;
      assert.ok(err instanceof OpenAI.RateLimitError, `got ${err}`);
      assert.equal(err.status, 429);
      assert.equal(err.code, 'rate_limit_exceeded');
      assert.equal(err.type, 'rate_limit_error');
      assert.match(err.message, new RegExp(`Rate limit reached for key '${key.id}' on requests per minute: limit 2, remaining 0\\.`));
      const h = err.headers;
      assert.equal(h.get('x-ratelimit-limit-requests'), '2');
      assert.equal(h.get('x-ratelimit-remaining-requests'), '0');
      // OpenAI's duration text: "1m0s", "30s", "250ms".
      assert.match(h.get('x-ratelimit-reset-requests') ?? '', /^(\d+ms|(\d+h)?(\d+m)?\d+s)$/);
      // Two a minute: one comes back every 30 s.
      const seconds = h.get('retry-after');
      assert.match(seconds ?? '', /^[1-9]\d*$/);
      assert.ok(Number(seconds) <= 30, `retry-after ${seconds}`);
      const ms = h.get('retry-after-ms');
      assert.match(ms ?? '', /^[1-9]\d*$/);
      assert.equal(Math.ceil(Number(ms) / 1000), Number(seconds), `retry-after ${seconds}, retry-after-ms ${ms}`);
      // A rate limit passes: the SDK may retry it.
      assert.equal(h.get('x-should-retry'), null);
      assert.equal(h.get('anthropic-ratelimit-requests-limit'), null);
      return true;
    });
    assert.equal(await upstreamCount(), 2, 'the third request reaches no provider');
    const rows = await ledgerRows(key.id, [refused.requestID]);
    assert.deepEqual(rows.map((r) => r.status), [200, 200, 429]);
    assert.equal(rows[2].error, 'rate_limit_exceeded');
  });

  test('anthropic: past rpm the request is a RateLimitError with anthropic-ratelimit-requests-* headers', async () => {
    const key = await keyWithRpm('rpm-anthropic', 2);
    const client = anthropic(key.secret);
    for (let i = 0; i < 2; ++i) {
      const m = await client.messages.create({ model: 'auto', max_tokens: 16, messages });
      assert.equal(m.content[0].text, ECHO);
    }
    await assert.rejects(client.messages.create({ model: 'auto', max_tokens: 16, messages }), (err) => {
      assert.ok(err instanceof Anthropic.RateLimitError, `got ${err}`);
      assert.equal(err.status, 429);
      assert.equal(err.error.type, 'error');
      assert.equal(err.error.error.type, 'rate_limit_error');
      assert.match(err.error.error.message, new RegExp(`^Rate limit reached for key '${key.id}' on requests per minute: limit 2, remaining 0\\.`));
      const h = err.headers;
      assert.equal(h.get('anthropic-ratelimit-requests-limit'), '2');
      assert.equal(h.get('anthropic-ratelimit-requests-remaining'), '0');
      // Anthropic's reset is an RFC 3339 time.
      const reset = h.get('anthropic-ratelimit-requests-reset') ?? '';
      assert.match(reset, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      assert.ok(!Number.isNaN(Date.parse(reset)), reset);
      assert.match(h.get('retry-after') ?? '', /^[1-9]\d*$/);
      assert.ok(Number(h.get('retry-after')) <= 30);
      // Not OpenAI's names on Anthropic's API.
      assert.equal(h.get('x-ratelimit-limit-requests'), null);
      assert.equal(h.get('x-ratelimit-remaining-requests'), null);
      return true;
    });
    assert.equal(await upstreamCount(), 2);
  });

  test('openai: with maxRetries 1 the SDK waits out retry-after-ms and its retry is answered', async () => {
    // rpm 120: a burst of 120, then one request back every 500 ms — a short enough wait.
    const RPM = 120;
    const key = await keyWithRpm('rpm-retry', RPM);
    const post = async () => {
      const res = await fetch(`${SWITCHYARD_BASE_URL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'auto', messages }),
      });
      await res.arrayBuffer();
      return res;
    };
    // Spend the burst, 20 at a time.
    for (let sent = 0; sent < RPM; sent += 20) {
      const answers = await Promise.all(Array.from({ length: 20 }, post));
      assert.deepEqual(answers.map((r) => r.status), Array(20).fill(200));
    }
    // Then go on until a refusal leaves at least 250 ms to wait, so that the SDK's first try,
    // sent right after, is refused too. (A refusal just before a request comes back is waited
    // out: the request after it takes the one that came back, and the next refusal has ~500 ms.)
    let waitMs = 0;
    for (let i = 0; i < 20 && waitMs < 250; ++i) {
      const res = await post();
      if (res.status === 200) continue;
      assert.equal(res.status, 429);
      waitMs = Number(res.headers.get('retry-after-ms'));
      assert.ok(waitMs > 0 && waitMs <= 500, `retry-after-ms ${res.headers.get('retry-after-ms')}`);
      if (waitMs < 250) await sleep(waitMs);
    }
    assert.ok(waitMs >= 250, 'no refusal with 250 ms or more to wait');

    const { fetch: counted, seen } = countingFetch();
    const { data, response } = await openai(key.secret, { maxRetries: 1, fetch: counted })
      .chat.completions.create({ model: 'auto', messages })
      .withResponse();
    assert.equal(data.choices[0].message.content, ECHO);
    assert.equal(response.status, 200);
    assert.deepEqual(seen.map((s) => s.status), [429, 200], 'refused, then retried once by the SDK');
    assert.equal(seen[0].headers.get('x-ratelimit-limit-requests'), String(RPM));
    assert.equal(seen[0].headers.get('x-ratelimit-remaining-requests'), '0');
    assert.match(seen[0].headers.get('retry-after-ms') ?? '', /^[1-9]\d*$/);
    assert.equal(seen[0].headers.get('x-should-retry'), null);
    assert.equal(seen[1].requestId, response.headers.get('x-request-id'));
    assert.notEqual(seen[0].requestId, seen[1].requestId);

    // The gateway's side: the first try refused, the retry answered.
    const rows = await ledgerRows(key.id, seen.map((s) => s.requestId));
    const row = (id) => rows.find((r) => r.request_id === id);
    assert.equal(row(seen[0].requestId).status, 429);
    assert.equal(row(seen[0].requestId).error, 'rate_limit_exceeded');
    assert.equal(row(seen[1].requestId).status, 200);
    assert.equal(row(seen[1].requestId).deployment, 'fake-mini');
  });
});

describe('admin and client credentials stay apart', () => {
  test('a client key on the admin API is refused with 403 admin_only and changes nothing', async () => {
    const key = await newKey('not-admin');
    const keysBefore = (await admin('GET', '/keys')).data.length;
    for (const token of [key.secret, SWITCHYARD_KEY]) {
      const list = await admin('GET', '/keys', undefined, { status: 403, token });
      assert.equal(list.error.type, 'permission_error');
      assert.equal(list.error.code, 'admin_only');
      assert.match(list.error.message, /a client key may not use it/);
      const made = await admin('POST', '/keys', { name: unique('sneaky'), team: team.id }, { status: 403, token });
      assert.equal(made.error.code, 'admin_only');
      assert.equal('secret' in made, false);
    }
    assert.equal((await admin('GET', '/keys')).data.length, keysBefore, 'no key was made');

    const anonymous = await admin('GET', '/keys', undefined, { status: 401, token: null });
    assert.equal(anonymous.error.code, 'invalid_admin_key');
    assert.equal(anonymous.error.type, 'authentication_error');
  });

  test('the admin credential is not a client key: AuthenticationError 401', async () => {
    await assert.rejects(openai(SWITCHYARD_ADMIN_KEY).chat.completions.create({ model: 'auto', messages }), (err) => {
      assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err}`);
      assert.equal(err.status, 401);
      assert.equal(err.code, 'invalid_api_key');
      return true;
    });
    await assert.rejects(
      anthropic(SWITCHYARD_ADMIN_KEY).messages.create({ model: 'auto', max_tokens: 16, messages }),
      (err) => {
        assert.ok(err instanceof Anthropic.AuthenticationError, `got ${err}`);
        assert.equal(err.status, 401);
        assert.equal(err.error.error.type, 'authentication_error');
        return true;
      },
    );
    assert.equal(await upstreamCount(), 0);
  });
});
