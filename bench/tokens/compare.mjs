// Measures switchyard::core::estimate_text_tokens and quick_text_tokens against real tokenizers
// (gpt-tokenizer's o200k_base and cl100k_base). Run through ./run.sh, which builds the driver
// first.
//
//   node compare.mjs --estimator /tmp/switchyard-token-estimate [--bench N] [--instructions]
//                    [--data DIR]
//   node compare.mjs --pieces [--encoding o200k_base]   (the data behind the cost tables)
//   node compare.mjs --quick-fit [--fit-extra GROUP=FILE,FILE...]...  (quick_text_tokens' weights)
//
// Samples (deterministic): every 23rd prompt of routellm_mmlu.jsonl and every 5th of
// routerbench_train.jsonl (grouped by benchmark), plus the hand-written and held-out samples
// below. Each text is estimated decoded, and from its raw JSON string content (escapes left in,
// once as JSON.stringify writes it and once with all non-ASCII as \uXXXX); all three are compared
// with the real count of the decoded text. Each text is also wrapped in a whole chat request
// body, as the gateway sees it, and that body compared with its own real count.
// --instructions counts each estimator's instructions under valgrind's callgrind.

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';

const HAND = [
  { group: 'code: Python', text: String.raw`import heapq
from dataclasses import dataclass, field
from typing import Optional


@dataclass(order=True)
class Job:
    priority: int
    name: str = field(compare=False)
    retries: int = field(default=0, compare=False)


class Scheduler:
    """Runs jobs by priority; a failed job goes back in the queue until it runs out of retries."""

    def __init__(self, max_retries: int = 3) -> None:
        self._queue: list[Job] = []
        self.max_retries = max_retries
        self.done: dict[str, bool] = {}

    def submit(self, name: str, priority: int = 10) -> None:
        heapq.heappush(self._queue, Job(priority, name))

    def run(self, handler) -> Optional[str]:
        while self._queue:
            job = heapq.heappop(self._queue)
            try:
                handler(job.name)
                self.done[job.name] = True
            except Exception as exc:  # noqa: BLE001
                print(f"job {job.name!r} failed ({exc}); retry {job.retries + 1}/{self.max_retries}")
                if job.retries + 1 < self.max_retries:
                    job.retries += 1
                    heapq.heappush(self._queue, job)
                else:
                    self.done[job.name] = False
        failed = [k for k, ok in self.done.items() if not ok]
        return ", ".join(sorted(failed)) or None


if __name__ == "__main__":
    s = Scheduler(max_retries=2)
    for i, n in enumerate(["fetch", "parse", "index", "report"]):
        s.submit(n, priority=i * 5)
    print(s.run(lambda name: len(name) > 4 or 1 / 0))
` },
  { group: 'code: Python', text: String.raw`def parse_csv_line(line, sep=",", quote='"'):
    fields, buf, in_quotes = [], [], False
    i = 0
    while i < len(line):
        ch = line[i]
        if in_quotes:
            if ch == quote and i + 1 < len(line) and line[i + 1] == quote:
                buf.append(quote)
                i += 1
            elif ch == quote:
                in_quotes = False
            else:
                buf.append(ch)
        elif ch == quote:
            in_quotes = True
        elif ch == sep:
            fields.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
        i += 1
    fields.append("".join(buf).strip())
    return fields


assert parse_csv_line('a,b,"c, d"') == ["a", "b", "c, d"]
assert parse_csv_line('x;"y ""z"""', sep=";") == ["x", 'y "z"']
` },
  { group: 'code: C++', text: String.raw`#include <algorithm>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cache {

// Least-recently-used map with a fixed capacity; get() refreshes an entry.
template <typename Key, typename Value>
class LruCache {
 public:
  explicit LruCache(std::size_t capacity) : capacity_(capacity) { slots_.reserve(capacity); }

  const Value* get(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    slots_[it->second].last_used = ++clock_;
    return &slots_[it->second].value;
  }

  void put(const Key& key, Value value) {
    if (auto it = index_.find(key); it != index_.end()) {
      slots_[it->second] = {key, std::move(value), ++clock_};
      return;
    }
    if (slots_.size() < capacity_) {
      index_.emplace(key, slots_.size());
      slots_.push_back({key, std::move(value), ++clock_});
      return;
    }
    auto victim = std::min_element(slots_.begin(), slots_.end(),
                                   [](const Slot& a, const Slot& b) { return a.last_used < b.last_used; });
    index_.erase(victim->key);
    index_.emplace(key, static_cast<std::size_t>(victim - slots_.begin()));
    *victim = {key, std::move(value), ++clock_};
  }

  std::size_t size() const noexcept { return slots_.size(); }

 private:
  struct Slot {
    Key key;
    Value value;
    std::uint64_t last_used = 0;
  };
  std::size_t capacity_;
  std::uint64_t clock_ = 0;
  std::vector<Slot> slots_;
  std::unordered_map<Key, std::size_t> index_;
};

}  // namespace cache
` },
  { group: 'code: C++', text: String.raw`int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [--verbose]\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::perror(argv[1]);
    return 1;
  }
  const bool verbose = argc > 2 && std::string_view(argv[2]) == "--verbose";
  std::map<std::string, int> counts;
  std::string word;
  while (in >> word) {
    std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::tolower(c); });
    word.erase(std::remove_if(word.begin(), word.end(), [](unsigned char c) { return !std::isalnum(c); }), word.end());
    if (!word.empty()) ++counts[word];
  }
  std::vector<std::pair<std::string, int>> top(counts.begin(), counts.end());
  std::partial_sort(top.begin(), top.begin() + std::min<std::size_t>(10, top.size()), top.end(),
                    [](const auto& a, const auto& b) { return a.second > b.second; });
  for (std::size_t i = 0; i < std::min<std::size_t>(10, top.size()); ++i)
    std::printf("%3zu. %-20s %6d\n", i + 1, top[i].first.c_str(), top[i].second);
  if (verbose) std::printf("%zu distinct words\n", counts.size());
  return 0;
}
` },
  { group: 'JSON', text: JSON.stringify({
      model: 'gpt-4o-mini', temperature: 0.2, max_tokens: 512, stream: true,
      messages: [
        { role: 'system', content: 'You are a travel assistant. Answer briefly and use the tools when you need live data.' },
        { role: 'user', content: 'Is there a direct train from Zurich to Milan tomorrow morning, and what does it cost?' },
      ],
      tools: [{ type: 'function', function: { name: 'search_trains', description: 'Search train connections between two stations.',
        parameters: { type: 'object', required: ['from', 'to', 'date'], properties: {
          from: { type: 'string', description: 'Departure station, e.g. "Zürich HB"' },
          to: { type: 'string', description: 'Arrival station' },
          date: { type: 'string', format: 'date' },
          earliest_departure: { type: 'string', pattern: '^[0-2][0-9]:[0-5][0-9]$' },
          max_changes: { type: 'integer', minimum: 0, maximum: 5, default: 1 } } } } }],
      tool_choice: 'auto', user: 'u_8f3a2c91' }, null, 2) },
  { group: 'JSON', text: JSON.stringify({ id: 'chatcmpl-9XkQ2rT7bLmN4pVs', object: 'chat.completion', created: 1732540800, model: 'gpt-4o-2024-08-06',
      choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null,
        tool_calls: [{ id: 'call_Qm3xT9', type: 'function', function: { name: 'get_weather', arguments: JSON.stringify({ city: 'Berlin', unit: 'celsius', days: 3 }) } },
                     { id: 'call_Zp71Lk', type: 'function', function: { name: 'get_time', arguments: JSON.stringify({ timezone: 'Europe/Berlin' }) } }] } }],
      usage: { prompt_tokens: 214, completion_tokens: 48, total_tokens: 262, prompt_tokens_details: { cached_tokens: 128 } },
      system_fingerprint: 'fp_5f20662549',
      items: Array.from({ length: 6 }, (_, k) => ({ sku: `A-${1040 + k * 7}`, qty: (k * 3) % 5 + 1, price: Math.round((k + 1) * 12.49 * 100) / 100, tags: ['stock', k % 2 ? 'sale' : 'new'] })) }) },
  { group: 'Chinese', text: '人工智能正在深刻地改变我们的生活和工作方式。从智能手机上的语音助手，到医院里辅助医生诊断疾病的影像分析系统，再到城市交通中的信号灯优化，机器学习技术已经渗透到社会的各个角落。然而，技术的快速发展也带来了新的问题：算法是否公平？个人数据如何得到保护？当自动驾驶汽车发生事故时，责任应该由谁来承担？这些问题没有简单的答案，需要政府、企业和公众共同讨论。专家们认为，只有在透明、可解释和可监督的前提下，人工智能才能真正造福人类。因此，许多国家已经开始制定相关的法律法规，希望在鼓励创新与防范风险之间找到平衡。' },
  { group: 'Chinese', text: '请帮我写一封邮件给客户，说明我们的产品将推迟两周发货。原因是上游供应商的芯片短缺，我们已经找到了替代方案，但需要额外的测试时间。邮件的语气要诚恳、专业，并且提供百分之十的折扣作为补偿。另外，请提醒客户可以随时通过电话或者微信联系我们的客服团队，我们会在二十四小时内回复。最后，感谢客户一直以来的信任和支持。' },
  { group: 'German', text: 'Die Energiewende stellt Deutschland vor große Herausforderungen. Während der Anteil erneuerbarer Energien am Stromverbrauch in den letzten Jahren deutlich gestiegen ist, hinkt der Ausbau der Übertragungsnetze hinterher. Besonders der Transport von Windstrom aus dem Norden in die Industriezentren im Süden bereitet Schwierigkeiten, weil neue Leitungen oft auf den Widerstand von Anwohnern stoßen. Gleichzeitig müssen Speichertechnologien weiterentwickelt werden, damit auch bei Windstille und Dunkelheit genügend Strom zur Verfügung steht. Experten fordern deshalb schnellere Genehmigungsverfahren, mehr Investitionen in Forschung und eine engere Zusammenarbeit mit den europäischen Nachbarländern.' },
  { group: 'German', text: 'Sehr geehrte Damen und Herren,\n\nhiermit möchte ich meine Bestellung Nr. 48213 vom 3. März stornieren. Leider ist die Lieferung bis heute nicht bei mir eingetroffen, obwohl mir eine Zustellung innerhalb von fünf Werktagen zugesichert wurde. Bitte erstatten Sie den bereits gezahlten Betrag von 129,90 € auf mein Konto zurück und bestätigen Sie mir die Stornierung schriftlich.\n\nFalls die Ware inzwischen unterwegs sein sollte, werde ich die Annahme verweigern.\n\nMit freundlichen Grüßen\nKatharina Müller' },
  { group: 'numbers/tables', text: '| Region | Q1 2024 | Q2 2024 | Q3 2024 | Q4 2024 | YoY |\n|---|---:|---:|---:|---:|---:|\n| North America | 1,284,550 | 1,312,090 | 1,407,332 | 1,563,918 | +12.4% |\n| Europe | 948,120 | 901,775 | 977,410 | 1,020,006 | +6.1% |\n| Asia-Pacific | 1,102,487 | 1,188,230 | 1,254,901 | 1,349,775 | +18.9% |\n| Latin America | 214,330 | 226,914 | 231,008 | 249,612 | +9.7% |\n| Total | 3,549,487 | 3,629,009 | 3,870,651 | 4,183,311 | +12.0% |\n\nAverage order value rose from $48.12 to $52.87; refunds fell to 2.3% (from 3.1%).' },
  { group: 'numbers/tables', text: 'timestamp,sensor_id,temp_c,humidity,pressure_hpa\n2024-11-25T08:00:00Z,S-017,21.4,0.43,1013.2\n2024-11-25T08:05:00Z,S-017,21.6,0.44,1013.1\n2024-11-25T08:10:00Z,S-017,21.9,0.44,1012.9\n2024-11-25T08:15:00Z,S-018,19.8,0.51,1012.8\n2024-11-25T08:20:00Z,S-018,19.7,0.52,1012.8\n2024-11-25T08:25:00Z,S-018,19.5,0.52,1012.7\n2024-11-25T08:30:00Z,S-019,23.1,0.38,1012.5\n2024-11-25T08:35:00Z,S-019,23.4,0.37,1012.4\nSolve for x: 3x^2 - 12x + 9 = 0, so x = 1 or x = 3; check: 3(1) - 12(1) + 9 = 0 and 27 - 36 + 9 = 0.' },
];

// Written after the constants were set and not used to set them: a check on the samples above,
// whose code, JSON and Chinese pieces were looked at when setting the punctuation and CJK costs.
const HELD_OUT = [
  { group: 'held-out: code', text: String.raw`export async function fetchWithRetry(url: string, opts: RequestInit = {}, retries = 3): Promise<Response> {
  let lastError: unknown;
  for (let attempt = 0; attempt <= retries; attempt++) {
    try {
      const res = await fetch(url, { ...opts, signal: AbortSignal.timeout(10_000) });
      if (res.status >= 500 && attempt < retries) {
        await new Promise((r) => setTimeout(r, 2 ** attempt * 250));
        continue;
      }
      return res;
    } catch (err) {
      lastError = err;
      console.warn(` + "`fetch ${url} failed (attempt ${attempt + 1}/${retries + 1}):`" + String.raw`, err);
    }
  }
  throw new Error("giving up on " + url, { cause: lastError });
}

const users = await Promise.all(ids.map((id) => fetchWithRetry(` + "`/api/users/${id}`" + String.raw`).then((r) => r.json())));
console.table(users.filter((u) => u.active).map(({ id, name, email }) => ({ id, name, email })));
` },
  { group: 'held-out: code', text: String.raw`package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
)

type entry struct {
	word  string
	count int
}

func main() {
	counts := make(map[string]int)
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Split(bufio.ScanWords)
	for scanner.Scan() {
		w := strings.ToLower(strings.Trim(scanner.Text(), ".,;:!?\"'()"))
		if w != "" {
			counts[w]++
		}
	}
	entries := make([]entry, 0, len(counts))
	for w, c := range counts {
		entries = append(entries, entry{w, c})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].count > entries[j].count })
	for i := 0; i < 10 && i < len(entries); i++ {
		fmt.Printf("%-15s %d\n", entries[i].word, entries[i].count)
	}
}
` },
  { group: 'held-out: code', text: "#!/usr/bin/env bash\nset -euo pipefail\nBACKUP_DIR=\"${BACKUP_DIR:-/var/backups/pg}\"\nKEEP_DAYS=14\nstamp=$(date +%Y%m%d-%H%M%S)\nmkdir -p \"$BACKUP_DIR\"\nfor db in $(psql -At -c \"SELECT datname FROM pg_database WHERE NOT datistemplate\"); do\n  echo \"dumping $db\"\n  pg_dump --format=custom --compress=9 \"$db\" > \"$BACKUP_DIR/$db-$stamp.dump\"\ndone\nfind \"$BACKUP_DIR\" -name '*.dump' -mtime +\"$KEEP_DAYS\" -print -delete\ndu -sh \"$BACKUP_DIR\"\n" },
  { group: 'held-out: JSON/YAML', text: String.raw`server:
  listen: 0.0.0.0:8080
  workers: 4
  access_log: off
routes:
  - name: default
    match: { model: "gpt-4o*" }
    targets:
      - provider: openai
        model: gpt-4o-2024-08-06
        weight: 3
      - provider: azure
        deployment: gpt4o-eu
        weight: 1
    retry: { attempts: 2, backoff_ms: 250 }
  - name: cheap
    match: { header: { x-tier: free } }
    targets:
      - provider: anthropic
        model: claude-3-5-haiku-latest
limits:
  tokens_per_minute: 200000
  requests_per_minute: 600
` },
  { group: 'held-out: JSON/YAML', text: JSON.stringify([
      { ts: '2024-11-25T09:14:03.512Z', level: 'info', msg: 'request completed', route: 'default', provider: 'openai', status: 200, latency_ms: 812, prompt_tokens: 1532, completion_tokens: 211 },
      { ts: '2024-11-25T09:14:03.977Z', level: 'warn', msg: 'upstream timeout, retrying', route: 'default', provider: 'azure', attempt: 1, error: 'ETIMEDOUT' },
      { ts: '2024-11-25T09:14:05.004Z', level: 'info', msg: 'request completed', route: 'cheap', provider: 'anthropic', status: 200, latency_ms: 433, prompt_tokens: 288, completion_tokens: 97 },
      { ts: '2024-11-25T09:14:06.250Z', level: 'error', msg: 'rate limited', route: 'default', provider: 'openai', status: 429, retry_after_s: 12 } ]) },
  { group: 'held-out: JSON/YAML', text: JSON.stringify({ model: 'claude-3-5-sonnet-20241022', max_tokens: 1024, system: [{ type: 'text', text: 'You summarise support tickets in three bullet points.', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Ticket #4411: customer reports that invoices generated after the 1.8.2 update show the wrong VAT rate (19% instead of 7%) for books shipped to Germany. Affects about 40 orders since Monday.' }] }] }, null, 2) },
  { group: 'held-out: English chat', text: 'Hey! Can you help me write a short, friendly email to my landlord? The kitchen faucet has been dripping for about two weeks now and it\'s getting worse - I can hear it all night. I\'d like to ask if someone could come and fix it sometime next week, ideally Tuesday or Thursday afternoon since I work from home those days. Please keep it polite but make it clear that it\'s a bit urgent because the water bill is going up.' },
  { group: 'held-out: English chat', text: 'I\'m preparing a 10-minute talk for my team about why our test suite got so slow. Here\'s what I found:\n\n- The integration tests spin up a fresh Postgres container for every test file (about 140 files).\n- About 30% of the unit tests hit the network because of a misconfigured mock.\n- CI runs everything twice: once on push and once on the merge request.\n\nCould you suggest a structure for the talk, with a catchy title, and for each point a one-sentence fix? Keep the tone light; the audience is engineers who are a bit frustrated already.' },
  { group: 'held-out: English chat', text: '# Release notes - v2.4.0\n\n## Highlights\n\n* **Streaming responses** are now relayed chunk by chunk instead of being buffered, cutting time-to-first-token by roughly 40% in our benchmarks.\n* New `fallback` policy: when a provider returns 5xx twice in a row, traffic moves to the next target for 60 seconds.\n\n## Breaking changes\n\n1. The `timeout` setting is now in milliseconds (it used to be seconds).\n2. Support for Python 3.8 has been dropped.\n\n## Fixes\n\n- Fixed a crash when the `Authorization` header contained trailing whitespace (#1287).\n- Usage numbers are no longer double-counted for retried requests (#1301).' },
  { group: 'held-out: other languages', text: '在微服务架构中，API 网关负责请求路由、认证、限流和监控等功能。当后端服务出现故障时，网关可以根据预先配置的策略，把流量切换到备用节点，从而提高整个系统的可用性。常见的开源方案包括 Nginx、Kong 和 Envoy。' },
  { group: 'held-out: other languages', text: '明日の会議は午後三時から始まります。資料は事前に共有フォルダにアップロードしておいてください。質問がある場合は、遠慮なく私に連絡してください。' },
  { group: 'held-out: other languages', text: 'Nous avons bien reçu votre demande de remboursement. Après vérification, le montant de 84,50 € sera crédité sur votre compte dans un délai de cinq à sept jours ouvrés. Si vous avez d’autres questions, n’hésitez pas à contacter notre service client.' },
  { group: 'held-out: other languages', text: 'Para preparar la tortilla de patatas, pela y corta las patatas en láminas finas. Fríelas a fuego medio con abundante aceite de oliva y una cebolla picada. Bate seis huevos, mezcla todo y cuaja la tortilla por ambos lados.' },
];

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const dataDir = opt('--data', '/work/shared/data/routing');
const MMLU_EVERY = 23, ROUTERBENCH_EVERY = 5;

// Special-token text ("<|endoftext|>") in a prompt is plain text to a gateway.
const encOpts = { disallowedSpecial: new Set() };
const count = (enc, text) => enc.encode(text, encOpts).length;

function readRows(file, keep) {
  return fs.readFileSync(path.join(dataDir, file), 'utf8').split('\n').filter(Boolean)
    .map(l => JSON.parse(l)).filter((_, i) => keep(i));
}

function evalSamples() {
  const out = [];
  for (const r of readRows('routellm_mmlu.jsonl', i => i % MMLU_EVERY === 0)) out.push({ group: 'MMLU', text: r.prompt, dataset: true });
  for (const r of readRows('routerbench_train.jsonl', i => i % ROUTERBENCH_EVERY === 0)) out.push({ group: r.benchmark, text: r.prompt, dataset: true });
  return out.concat(HAND, HELD_OUT);
}

// One line a text: "accurate quick".
function runEstimator(bin, file, extra = []) {
  return execFileSync(bin, [...extra, file], { encoding: 'utf8', maxBuffer: 1 << 26 })
    .trim().split('\n').map(l => l.split(' ').map(Number));
}

// Instructions of one estimator over a file's texts, from callgrind: the estimator's own and its
// callees', nothing of the driver's.
function instructions(bin, file, which) {
  const fn = which === 'accurate' ? 'estimate_text_tokens' : 'quick_text_tokens';
  const run = spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', '--collect-atstart=no',
    `--toggle-collect=switchyard::core::${fn}*`, bin, '--only', which, file], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const m = (run.stderr ?? '').match(/Collected : (\d+)/);
  if (run.status !== 0 || !m) throw new Error(`callgrind failed: ${run.error ?? run.stderr}`);
  return Number(m[1]);
}

const pct = x => (100 * x).toFixed(1) + '%';
const mean = xs => xs.reduce((a, b) => a + b, 0) / xs.length;
function errors(items, key, est) {
  const ape = items.map(s => Math.abs(s[est] - s[key]) / s[key]).sort((a, b) => a - b);
  const p90 = ape[Math.ceil(0.9 * ape.length) - 1];
  const m = mean(items.map(s => s[est]));
  return `${m.toFixed(1)} | ${pct(mean(ape))} | ${pct(p90)} | ${(m / mean(items.map(s => s[key]))).toFixed(3)}`;
}
function row(name, items, key) {
  return `| ${name} | ${items.length} | ${mean(items.map(s => s[key])).toFixed(1)} | ` +
    `${errors(items, key, 'est')} | ${errors(items, key, 'quick')} |`;
}

function table(samples, key, totals) {
  const lines = ['| group | n | mean real | accurate: mean est | mean abs % err | p90 abs % err | est / real ' +
    '| quick: mean est | mean abs % err | p90 abs % err | est / real |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const g of new Set(samples.map(s => s.group))) lines.push(row(g, samples.filter(s => s.group === g), key));
  for (const [name, pick] of totals) lines.push(row(`**${name}**`, samples.filter(pick), key));
  return lines.join('\n');
}

// A whole OpenAI chat request body around a prompt, as the gateway receives it.
const chatBody = text => JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: text }] });
// JSON with every non-ASCII character as \uXXXX, as Python's json.dumps writes it.
const asciiJson = json => json.replace(/[\u007f-\uffff]/g, c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
const jsonl = texts => texts.map(t => JSON.stringify({ text: t })).join('\n') + '\n';

function compare() {
  const bin = opt('--estimator');
  if (!bin) throw new Error('--estimator PATH required (run ./run.sh)');
  const samples = evalSamples();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-tokens-'));
  try {
    const file = path.join(dir, 'samples.jsonl');
    fs.writeFileSync(file, jsonl(samples.map(s => s.text)));
    // The same texts with non-ASCII as \uXXXX escapes.
    const asciiFile = path.join(dir, 'samples-ascii.jsonl');
    fs.writeFileSync(asciiFile, samples.map(s => asciiJson(JSON.stringify({ text: s.text }))).join('\n') + '\n');
    // Whole request bodies, estimated as they are (the driver decodes the JSONL line, which gives
    // back the body's own text); once more with non-ASCII as \uXXXX.
    const bodies = samples.map(s => ({ ...s, body: chatBody(s.text), asciiBody: asciiJson(chatBody(s.text)) }));
    const bodyFile = path.join(dir, 'bodies.jsonl');
    fs.writeFileSync(bodyFile, jsonl(bodies.map(s => s.body)));
    const asciiBodyFile = path.join(dir, 'bodies-ascii.jsonl');
    fs.writeFileSync(asciiBodyFile, jsonl(bodies.map(s => s.asciiBody)));

    const est = runEstimator(bin, file);
    const estRaw = runEstimator(bin, file, ['--raw-json']);
    const estAscii = runEstimator(bin, asciiFile, ['--raw-json']);
    const estBody = runEstimator(bin, bodyFile);
    const estAsciiBody = runEstimator(bin, asciiBodyFile);
    samples.forEach((s, i) => {
      s.o200k = count(o200k, s.text); s.cl100k = count(cl100k, s.text);
      [s.est, s.quick] = est[i];
    });
    const nonAscii = s => /[^\x00-\x7e]/.test(s.text);
    const totals = [['all dataset prompts (English)', s => s.dataset], ['all', () => true]];
    for (const [name, key] of [['o200k_base', 'o200k'], ['cl100k_base', 'cl100k']]) {
      console.log(`**${name}** (real = gpt-tokenizer ${name}; accurate = estimate_text_tokens, quick = quick_text_tokens)\n`);
      console.log(table(samples, key, totals), '\n');
    }
    const raw = samples.map((s, i) => ({ ...s, group: s.dataset ? 'dataset prompts' : 'hand-written and held-out', est: estRaw[i][0], quick: estRaw[i][1] }))
      .concat(samples.filter(nonAscii)
        .map(s => { const i = samples.indexOf(s); return { ...s, group: 'non-ASCII samples as \\uXXXX escapes', est: estAscii[i][0], quick: estAscii[i][1] }; }));
    console.log('**Estimated from the raw JSON string content** (escapes undecoded; real = o200k_base of the decoded text)\n');
    console.log(table(raw, 'o200k', []), '\n');
    const whole = bodies.map((s, i) => ({ ...s, group: s.dataset ? `${s.group} bodies` : 'hand-written and held-out bodies', real: count(o200k, s.body), est: estBody[i][0], quick: estBody[i][1] }))
      .concat(bodies.filter(nonAscii).map(s => { const i = bodies.indexOf(s); return { ...s, group: 'non-ASCII bodies with \\uXXXX escapes', real: count(o200k, s.asciiBody), est: estAsciiBody[i][0], quick: estAsciiBody[i][1] }; }));
    console.log('**Whole chat request bodies** (`{"model":"gpt-4o","messages":[{"role":"user","content":...}]}` estimated as it is; real = o200k_base of the same body text)\n');
    console.log(table(whole, 'real', [['all bodies', () => true]]), '\n');

    if (args.includes('--instructions')) {
      const bytes = texts => texts.reduce((a, t) => a + Buffer.byteLength(t), 0);
      const sets = [['decoded texts', file, bytes(samples.map(s => s.text))],
        ['request bodies', bodyFile, bytes(bodies.map(s => s.body))]];
      console.log('**Instructions per byte** (valgrind --tool=callgrind, the estimator alone, all samples)\n');
      console.log('| estimator | ' + sets.map(([name, , b]) => `${name} (${(b / 1e3).toFixed(0)} kB)`).join(' | ') + ' |');
      console.log('| --- |' + sets.map(() => ' ---: |').join(''));
      for (const which of ['accurate', 'quick']) {
        const cells = sets.map(([, f, b]) => (instructions(bin, f, which) / b).toFixed(2));
        console.log(`| ${which === 'accurate' ? 'estimate_text_tokens' : 'quick_text_tokens'} | ${cells.join(' | ')} |`);
      }
      console.log();
    }
    const passes = Number(opt('--bench', '0'));
    if (passes > 0) {
      console.log('**Throughput** (estimate_main --bench, decoded texts, then request bodies):\n');
      execFileSync(bin, ['--bench', String(passes), file], { stdio: ['ignore', 'inherit', 'inherit'] });
      execFileSync(bin, ['--bench', String(passes), bodyFile], { stdio: ['ignore', 'inherit', 'inherit'] });
    }
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

// The byte classes quick_text_tokens counts, as src/core/token_estimate.cpp defines them (bytes
// compared as signed: >= 0x80 is below everything ASCII): [1, bytes, marks, starts, trailing,
// breaks].
function quickCounts(text) {
  let marks = 0, starts = 0, trailing = 0, breaks = 0, prev = 0;
  const bytes = Buffer.from(text, 'utf8');
  for (const byte of bytes) {
    const b = (byte << 24) >> 24;
    if (b > 0x20 && b <= 0x60) marks++;
    if (b > 0x20 && prev <= 0x20) starts++;
    if (b < -64) trailing++;
    if (b === 0x0a || (prev === 0x5c && b > 0x60)) breaks++;
    prev = b;
  }
  return [1, bytes.length, marks, starts, trailing, breaks];
}

// quick_text_tokens' weights: least mean absolute relative error (iteratively reweighted least
// squares) against o200k_base on texts kept out of the error tables: the dataset rows not
// sampled (every 7th MMLU row, every 3rd routerbench row, of those), chunks of the files given
// with --fit-extra (code, other languages), and chat request bodies around a quarter of all
// those (every other one with \uXXXX escapes) and around a few MMLU prompts with a system
// prompt (pretty-printed every other time). Groups weigh by how little of them there is.
function quickFit() {
  const weights = { prompt: 1, code: 6, lang: 8, json: 2 };
  const train = [];
  readRows('routellm_mmlu.jsonl', i => i % MMLU_EVERY !== 0 && i % 7 === 3).forEach(r => train.push({ group: 'prompt', text: r.prompt }));
  readRows('routerbench_train.jsonl', i => i % ROUTERBENCH_EVERY !== 0 && i % 3 === 1).forEach(r => train.push({ group: 'prompt', text: r.prompt }));
  for (let a = args.indexOf('--fit-extra'); a >= 0; a = args.indexOf('--fit-extra', a + 1)) {
    const [group, files] = args[a + 1].split('=');
    if (!(group in weights)) throw new Error(`--fit-extra ${group}: one of ${Object.keys(weights)}`);
    for (const f of files.split(',')) {
      const t = fs.readFileSync(f, 'utf8');
      for (let i = 0, k = 0; i + 200 < t.length && k < 6; i += 1500, k++) train.push({ group, text: t.slice(i, i + 1500) });
    }
  }
  readRows('routellm_mmlu.jsonl', i => i % MMLU_EVERY !== 0 && i % 97 === 5).forEach((r, i) => train.push({ group: 'json',
    text: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: r.prompt }], temperature: 0.2 }, null, i % 2 ? 2 : undefined) }));
  const n = train.length;
  for (let i = 0; i < n; i += 4) {
    const body = chatBody(train[i].text);
    train.push({ group: train[i].group, text: i % 8 === 0 ? asciiJson(body) : body });
  }
  for (const s of train) { s.x = quickCounts(s.text); s.real = count(o200k, s.text); s.w = weights[s.group]; }
  const k = 6;
  let beta = null;
  for (let iter = 0; iter < 50; iter++) {
    const A = Array.from({ length: k }, () => new Array(k + 1).fill(0));
    for (const s of train) {
      let w = s.w / (s.real * s.real);
      if (beta) w /= Math.max(Math.abs(s.x.reduce((a, v, j) => a + v * beta[j], 0) - s.real) / s.real, 0.005);
      for (let i = 0; i < k; i++) { A[i][k] += w * s.x[i] * s.real; for (let j = 0; j < k; j++) A[i][j] += w * s.x[i] * s.x[j]; }
    }
    for (let c = 0; c < k; c++) {  // Gauss-Jordan; the normal matrix is positive definite
      for (let r = 0; r < k; r++) if (r !== c) { const m = A[r][c] / A[c][c]; for (let j = c; j <= k; j++) A[r][j] -= m * A[c][j]; }
    }
    beta = A.map((r, i) => r[k] / r[i]);
  }
  const ape = train.map(s => Math.abs(s.x.reduce((a, v, j) => a + v * beta[j], 0) - s.real) / s.real);
  console.log(`${train.length} training texts (${Object.keys(weights).map(g => `${g} ${train.filter(s => s.group === g).length}`).join(', ')}); mean abs % err ${pct(mean(ape))}`);
  ['base', 'byte', 'mark', 'start', 'trailing', 'break'].forEach((name, i) =>
    console.log(`${name.padEnd(8)} ${beta[i].toFixed(4)}  (${Math.round(beta[i] * 1024)}/1024)`));
}

// Mean real tokens per pre-tokenizer piece shape, on MMLU rows not used for the error table:
// the data the cost tables in src/core/token_estimate.cpp come from. The split is o200k's
// pattern without the contraction suffix, as the estimator prices "'s" separately.
function pieces() {
  const enc = opt('--encoding', 'o200k_base') === 'cl100k_base' ? cl100k : o200k;
  const re = /[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;
  const texts = readRows('routellm_mmlu.jsonl', i => i % MMLU_EVERY !== 0 && i % 2 === 1).map(r => r.prompt);
  const agg = new Map();
  const add = (k, t) => { const a = agg.get(k) ?? [0, 0]; a[0]++; a[1] += t; agg.set(k, a); };
  for (const t of texts) for (const [p] of t.matchAll(re)) {
    const n = count(enc, p);
    const w = p.match(/^([^\p{L}\p{N}]?)([A-Za-z]+)$/u);
    if (w) {
      const lead = w[1] === '' || /\s/.test(w[1]) ? 'space' : 'punct';
      const up = (w[2].match(/[A-Z]/g) ?? []).length;
      const shape = up === 0 ? 'lower' : up === w[2].length && up > 1 ? 'upper' : 'capital';
      add(`word ${lead} ${shape} ${String(Math.min(w[2].length, 20)).padStart(2)}`, n);
    } else if (/^\p{N}+$/u.test(p)) add(`digits ${p.length}`, n);
    else if (/^\s+$/u.test(p)) add(`space ${/[\r\n]/.test(p) ? 'newline' : 'blank'}`, n);
    else if (!/\p{L}/u.test(p)) add(`punct ${Math.min([...p.replace(/^ /, '').replace(/[\r\n]+$/, '')].length, 8)}`, n);
    else add('other (non-ASCII letters)', n);
  }
  console.log(`${texts.length} texts; piece shape, count, mean ${enc === o200k ? 'o200k_base' : 'cl100k_base'} tokens`);
  for (const k of [...agg.keys()].sort()) if (agg.get(k)[0] >= 20) console.log(k.padEnd(28), String(agg.get(k)[0]).padStart(7), (agg.get(k)[1] / agg.get(k)[0]).toFixed(3));
}

if (args.includes('--pieces')) pieces(); else if (args.includes('--quick-fit')) quickFit(); else compare();
