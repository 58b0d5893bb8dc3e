// What every real-client test file shares: the environment run.sh sets, and the fake provider's
// control API (scripts, and the upstream requests it recorded).
import assert from 'node:assert/strict';

export const { SWITCHYARD_BASE_URL, SWITCHYARD_KEY, FAKE_URL } = process.env;
assert.ok(SWITCHYARD_BASE_URL && SWITCHYARD_KEY && FAKE_URL, 'run these tests through run.sh');

export async function fake(method, path, body) {
  const res = await fetch(`${FAKE_URL}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.equal(res.status, 200, `${method} ${path} on the fake provider`);
  return res.json();
}

/// The next request (whose body holds `contains`, when given) gets `behavior`.
export const script = (behavior, contains) => fake('POST', '/_fake/script', { behavior, times: 1, contains });

const lower = (headers) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));

/// The upstream requests recorded since the last clear: header names lower-cased, bodies parsed.
export const upstream = async () =>
  (await fake('GET', '/_fake/requests')).map((r) => ({ ...r, headers: lower(r.headers), body: JSON.parse(r.body) }));
export const lastUpstream = async () => (await upstream()).at(-1);
export const clearUpstream = () => fake('DELETE', '/_fake/requests');
