// Turns the launch benchmark's measurements (hyperfine JSON exports and GNU
// time peak memory) into the Markdown section of docs/benchmarks.md.
// Called by launch.sh; every value comes from its arguments or the JSON files.

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: options } = parseArgs({
  options: {
    results: { type: 'string' },
    date: { type: 'string' },
    machine: { type: 'string' },
    versions: { type: 'string' },
    load: { type: 'string' },
    'bundle-files': { type: 'string' },
    'bundle-bytes': { type: 'string' },
    halves: { type: 'string' },
    runs: { type: 'string' },
    bundle: { type: 'string' },
    timer: { type: 'string' },
    rss: { type: 'string' },
  },
});

const MIB = 1024 * 1024;

// Targets for the launch check.
const MAX_FULL_OVER_OPENSSL_TWO = 1.3;
const MIN_NODE_OVER_FULL = 2;
const MAX_LAZY_SECONDS = 0.01;
const MAX_PEAK_RSS_KIB = 64 * 1024;

function readResult(name) {
  const file = path.join(options.results, `${name}.json`);
  const [result] = JSON.parse(fs.readFileSync(file, 'utf8')).results;
  return result;
}

const rows = [
  ['sign', 'midcore-sign sign (local key)'],
  ['full', 'midcore-verify launch --mode full'],
  ['lazy', 'midcore-verify launch --mode lazy'],
  ['openssl-one', 'openssl dgst -sha256, 1 process, all files'],
  ['openssl-two', 'openssl dgst -sha256, 2 processes, half the bytes each'],
  ['node', 'Node 20 + @electron/asar, every entry and loose file'],
].map(([key, label]) => ({ key, label, ...readResult(key) }));
const byKey = Object.fromEntries(rows.map((row) => [row.key, row]));

const rss = Object.fromEntries(
  options.rss.split(',').map((pair) => {
    const [key, kib] = pair.split('=');
    return [key, Number(kib)];
  }),
);
const rssForRow = { sign: rss.sign, full: rss.full, lazy: rss.lazy, 'openssl-one': rss.openssl, node: rss.node };

const bundleBytes = Number(options['bundle-bytes']);
const [half1, half2] = options.halves.split(',').map(Number);

// Describes how far a measurement is over a limit: a percentage, or a multiple
// when it is at least twice the limit.
function overBy(measured, limit) {
  const ratio = measured / limit;
  return ratio >= 2 ? `${ratio.toFixed(1)}× the limit` : `${((ratio - 1) * 100).toFixed(0)}% over`;
}

function formatSeconds(seconds) {
  return seconds < 1 ? `${(seconds * 1000).toFixed(1)} ms` : `${seconds.toFixed(3)} s`;
}

// CPU time (user + system) is far less sensitive than wall time to other
// processes on the machine. The bash fallback does not measure it.
function formatCpu(row) {
  if (row.user === undefined || row.system === undefined) return 'n/a';
  return formatSeconds(row.user + row.system);
}

function formatRss(kib) {
  return kib === undefined ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`;
}

const fullOverOpensslTwo = byKey.full.mean / byKey['openssl-two'].mean;
const nodeOverFull = byKey.node.mean / byKey.full.mean;
const lazySeconds = byKey.lazy.mean;
const peakRss = Math.max(rss.full, rss.lazy);

// Each target: what was measured, whether it is met, and by how much it is missed.
const targets = [
  {
    name: 'full check / two-process openssl',
    target: `≤ ${MAX_FULL_OVER_OPENSSL_TWO}×`,
    measured: `${fullOverOpensslTwo.toFixed(2)}×`,
    met: fullOverOpensslTwo <= MAX_FULL_OVER_OPENSSL_TWO,
    miss: overBy(fullOverOpensslTwo, MAX_FULL_OVER_OPENSSL_TWO),
  },
  {
    name: 'Node script / full check',
    target: `≥ ${MIN_NODE_OVER_FULL}× (full check faster)`,
    measured: `${nodeOverFull.toFixed(2)}×`,
    met: nodeOverFull >= MIN_NODE_OVER_FULL,
    miss: `${((1 - nodeOverFull / MIN_NODE_OVER_FULL) * 100).toFixed(0)}% short`,
  },
  {
    name: 'lazy check, mean wall time',
    target: `< ${MAX_LAZY_SECONDS * 1000} ms`,
    measured: formatSeconds(lazySeconds),
    met: lazySeconds < MAX_LAZY_SECONDS,
    miss: overBy(lazySeconds, MAX_LAZY_SECONDS),
  },
  {
    name: 'peak RSS of the launch check (max of full, lazy)',
    target: `< ${MAX_PEAK_RSS_KIB / 1024} MiB`,
    measured: formatRss(peakRss),
    met: peakRss < MAX_PEAK_RSS_KIB,
    miss: overBy(peakRss, MAX_PEAK_RSS_KIB),
  },
];

const timerText =
  options.timer === 'hyperfine'
    ? 'hyperfine without a shell'
    : 'a bash loop that starts each run through `bash -c` (a few ms more per run than hyperfine)';

const lines = [];
lines.push(`Measured ${options.date} with \`RUNS=${options.runs} scripts/bench/launch.sh ${options.bundle}\`.`);
lines.push('');
lines.push(`- Machine: ${options.machine}; load average (1, 5, 15 min) ${options.load}.`);
lines.push(`- Versions: ${options.versions}.`);
lines.push(
  `- Input: \`${options.bundle}\`, ${options['bundle-files']} covered files, ` +
    `${(bundleBytes / MIB).toFixed(1)} MiB (the two openssl lists hold ${(half1 / MIB).toFixed(1)} and ${(half2 / MIB).toFixed(1)} MiB).`,
);
lines.push(
  `- Method: warm page cache (every file is read once before timing, then 2 warm-up runs per command), ` +
    `${options.runs} timed runs per command, ${timerText}. Peak RSS is GNU \`time -v\` "Maximum resident set size" of one run; ` +
    'for the two-process openssl baseline it would be one process, so only the one-process figure is listed.',
);
lines.push('');
lines.push('| command | wall mean ± σ | wall min | CPU (user + sys) mean | peak RSS |');
lines.push('|---|---|---|---|---|');
for (const row of rows) {
  lines.push(`| ${row.label} | ${formatSeconds(row.mean)} ± ${formatSeconds(row.stddev)} | ${formatSeconds(row.min)} | ${formatCpu(row)} | ${formatRss(rssForRow[row.key])} |`);
}
lines.push('');
lines.push('| target | goal | measured | result |');
lines.push('|---|---|---|---|');
for (const target of targets) {
  lines.push(`| ${target.name} | ${target.target} | ${target.measured} | ${target.met ? 'met' : `**missed** (${target.miss})`} |`);
}
const cpu = (row) => row.user + row.system;
if (rows.every((row) => row.user !== undefined)) {
  lines.push('');
  lines.push(
    `CPU-time ratios, less affected by load: full check / two-process openssl ${(cpu(byKey.full) / cpu(byKey['openssl-two'])).toFixed(2)}×, ` +
      `Node script / full check ${(cpu(byKey.node) / cpu(byKey.full)).toFixed(2)}×, lazy check ${formatSeconds(cpu(byKey.lazy))}.`,
  );
}
console.log(lines.join('\n'));
