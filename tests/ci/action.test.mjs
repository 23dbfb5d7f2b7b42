// The composite action run by the runner harness with test doubles of midcore-sign and
// midcore-verify. The tests check that inputs reach the signer as arguments and environment,
// that invalid settings fail with an annotation naming them, and that the install step
// downloads and checks a release archive from a loopback server. action-e2e.test.mjs runs the
// real binaries against the emulator.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { runCompositeAction } from './lib/composite-runner.mjs';
import { makeFakeTools } from './lib/fake-tools.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ACTION_DIR = path.join(REPO, 'github-actions', 'sign');
const KEY = 'azure-kv://signing.vault.test/keys/release';
const OIDC_ENV = {
  ACTIONS_ID_TOKEN_REQUEST_URL: 'https://127.0.0.1:9/token?api-version=2.0',
  ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'request-token-5b1e',
  AZURE_CLIENT_ID: 'client-from-env',
  AZURE_TENANT_ID: 'tenant-from-env',
};

function makeWorkspace() {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-workspace-'));
  fs.mkdirSync(path.join(workspace, 'bundle'));
  fs.writeFileSync(path.join(workspace, 'bundle', 'app.txt'), 'app');
  return workspace;
}

async function runWithFakes({ inputs = {}, env = OIDC_ENV, fakeEnv = {} } = {}) {
  const tools = makeFakeTools();
  const workspace = makeWorkspace();
  const result = await runCompositeAction({
    actionDir: ACTION_DIR,
    workspace,
    inputs: { bundle: 'bundle', key: KEY, 'signer-path': tools.sign, ...inputs },
    env: { ...env, FAKE_RECORD_DIR: tools.recordDir, ...fakeEnv },
  });
  return { ...result, calls: tools.calls(), workspace, tools };
}

test('sign step passes inputs as arguments', async () => {
  const { outcome, calls, log } = await runWithFakes({ inputs: { product: 'example', version: '1.0.0' } });
  assert.equal(outcome, 'success', log);
  const sign = calls.find((call) => call.argv[0] === 'sign');
  assert.deepEqual(sign.argv, ['sign', 'bundle', '--key', KEY, '--auth', 'github-oidc', '--product', 'example', '--version', '1.0.0']);
});

test('client and tenant default to job env', async () => {
  const { calls } = await runWithFakes();
  const sign = calls.find((call) => call.argv[0] === 'sign');
  assert.equal(sign.env.AZURE_CLIENT_ID, 'client-from-env');
  assert.equal(sign.env.AZURE_TENANT_ID, 'tenant-from-env');
});

test('client and tenant inputs override job env', async () => {
  const { calls } = await runWithFakes({ inputs: { 'client-id': 'client-input', 'tenant-id': 'tenant-input' } });
  const sign = calls.find((call) => call.argv[0] === 'sign');
  assert.equal(sign.env.AZURE_CLIENT_ID, 'client-input');
  assert.equal(sign.env.AZURE_TENANT_ID, 'tenant-input');
});

test('sign step runs with GitHub Actions environment', async () => {
  const { calls } = await runWithFakes();
  const sign = calls.find((call) => call.argv[0] === 'sign');
  assert.equal(sign.env.GITHUB_ACTIONS, 'true');
  assert.ok(sign.env.GITHUB_OUTPUT, 'GITHUB_OUTPUT is not set for the signer');
  assert.ok(sign.env.GITHUB_STEP_SUMMARY, 'GITHUB_STEP_SUMMARY is not set for the signer');
  assert.equal(sign.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN, OIDC_ENV.ACTIONS_ID_TOKEN_REQUEST_TOKEN);
});

test('verify step trusts exported key only', async () => {
  const { calls } = await runWithFakes();
  const exported = calls.find((call) => call.argv[0] === 'key');
  assert.deepEqual(exported.argv.slice(0, 6), ['key', 'export-public', '--key', KEY, '--auth', 'github-oidc']);
  const publicKey = exported.argv[exported.argv.indexOf('--out') + 1];
  const launch = calls.find((call) => call.tool === 'midcore-verify');
  assert.deepEqual(launch.argv, ['launch', 'bundle', '--trust', publicKey, '--mode', 'full']);
});

test('local key omits auth argument', async () => {
  const { calls } = await runWithFakes({ inputs: { key: 'local:/tmp/k.pem' }, env: {} });
  const sign = calls.find((call) => call.argv[0] === 'sign');
  assert.ok(!sign.argv.includes('--auth'), sign.argv.join(' '));
});

test('bad bundle path fails with annotation', async () => {
  const { outcome, errors, calls } = await runWithFakes({ inputs: { bundle: 'no-such-folder' } });
  assert.equal(outcome, 'failure');
  assert.equal(errors[0]?.properties.title, "Midcore sign input 'bundle'");
  assert.match(errors[0]?.message ?? '', /^bundle folder not found: 'no-such-folder'/);
  assert.equal(calls.length, 0);
});

test('missing id-token permission fails with annotation', async () => {
  const env = { ...OIDC_ENV };
  delete env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const { outcome, errors } = await runWithFakes({ env });
  assert.equal(outcome, 'failure');
  assert.equal(errors[0]?.properties.title, "Midcore sign input 'auth'");
  assert.match(errors[0]?.message ?? '', /permissions: id-token: write/);
});

test('missing client id fails naming the input', async () => {
  const env = { ...OIDC_ENV };
  delete env.AZURE_CLIENT_ID;
  const { outcome, errors } = await runWithFakes({ env });
  assert.equal(outcome, 'failure');
  assert.equal(errors[0]?.properties.title, "Midcore sign input 'client-id'");
});

test('unknown auth fails naming the input', async () => {
  const { outcome, errors } = await runWithFakes({ inputs: { auth: 'password' } });
  assert.equal(outcome, 'failure');
  assert.equal(errors[0]?.properties.title, "Midcore sign input 'auth'");
});

test('signer failure keeps its own annotation', async () => {
  const { outcome, errors, steps } = await runWithFakes({
    fakeEnv: { FAKE_FAIL: 'midcore-sign sign', FAKE_FAIL_OUTPUT: '::error file=bundle/app.txt::Key Vault returned 403 Forbidden' },
  });
  assert.equal(outcome, 'failure');
  assert.deepEqual(errors.map((error) => error.message), ['Key Vault returned 403 Forbidden']);
  assert.equal(steps.verify.outcome, 'skipped');
});

test('silent signer failure gets fallback annotation', async () => {
  const { outcome, errors } = await runWithFakes({ fakeEnv: { FAKE_FAIL: 'midcore-sign sign' } });
  assert.equal(outcome, 'failure');
  assert.match(errors[0]?.message ?? '', /^midcore-sign exited with status 1/);
});

test('launch check failure fails the action', async () => {
  const { outcome, steps, errors } = await runWithFakes({ fakeEnv: { FAKE_FAIL: 'midcore-verify launch' } });
  assert.equal(outcome, 'failure');
  assert.equal(steps.verify.outcome, 'failure');
  assert.equal(errors[0]?.properties.title, 'Midcore launch check');
});

// Release archives served from loopback, laid out as .github/workflows/release.yml publishes them.

function targetForThisRunner() {
  const targets = { 'linux/x64': 'x86_64-unknown-linux-gnu', 'linux/arm64': 'aarch64-unknown-linux-gnu' };
  return targets[`${process.platform}/${process.arch}`];
}

async function serveRelease({ tag, corruptChecksum = false }) {
  const tools = makeFakeTools();
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-release-'));
  const asset = `midcore-${targetForThisRunner()}.tar.gz`;
  const archive = path.join(staging, asset);
  execFileSync('tar', ['-czf', archive, '-C', tools.dir, 'midcore-sign', 'midcore-verify']);
  const bytes = fs.readFileSync(archive);
  const digest = crypto.createHash('sha256').update(bytes).digest('hex');
  const published = corruptChecksum ? digest.replace(/^./, digest[0] === '0' ? '1' : '0') : digest;
  const files = {
    [`/releases/download/${tag}/${asset}`]: bytes,
    [`/releases/download/${tag}/${asset}.sha256`]: Buffer.from(`${published}  ${asset}\n`),
  };
  const requests = [];
  const server = http.createServer((request, response) => {
    requests.push(request.url);
    const body = files[request.url];
    response.writeHead(body ? 200 : 404);
    response.end(body ?? 'not found');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}/releases`;
  return { base, digest, requests, tools, close: () => new Promise((resolve) => server.close(resolve)) };
}

test('install downloads archive for this runner', { skip: !targetForThisRunner() && 'no release target for this platform' }, async () => {
  const release = await serveRelease({ tag: 'v1.2.3' });
  try {
    const workspace = makeWorkspace();
    const result = await runCompositeAction({
      actionDir: ACTION_DIR,
      workspace,
      inputs: { bundle: 'bundle', key: KEY, 'release-url': release.base },
      env: { ...OIDC_ENV, FAKE_RECORD_DIR: release.tools.recordDir },
      github: { action_ref: 'v1.2.3' },
    });
    assert.equal(result.outcome, 'success', result.log);
    assert.equal(release.requests[0], `/releases/download/v1.2.3/midcore-${targetForThisRunner()}.tar.gz`);
    assert.match(result.log, new RegExp(`Installed midcore-${targetForThisRunner()}\\.tar\\.gz .*SHA-256 ${release.digest}`));
    assert.ok(result.steps.tools.outputs.sign.startsWith(result.runnerTemp), result.steps.tools.outputs.sign);
  } finally {
    await release.close();
  }
});

test('install rejects checksum mismatch', { skip: !targetForThisRunner() && 'no release target for this platform' }, async () => {
  const release = await serveRelease({ tag: 'v1.2.3', corruptChecksum: true });
  try {
    const result = await runCompositeAction({
      actionDir: ACTION_DIR,
      workspace: makeWorkspace(),
      inputs: { bundle: 'bundle', key: KEY, 'release-url': release.base, 'signer-version': 'v1.2.3' },
      env: { ...OIDC_ENV, FAKE_RECORD_DIR: release.tools.recordDir },
    });
    assert.equal(result.outcome, 'failure');
    assert.match(result.errors[0]?.message ?? '', /^SHA-256 mismatch for http/);
    assert.equal(release.tools.calls().length, 0);
  } finally {
    await release.close();
  }
});

test('install rejects pinned sha256 mismatch', { skip: !targetForThisRunner() && 'no release target for this platform' }, async () => {
  const release = await serveRelease({ tag: 'v1.2.3' });
  try {
    const result = await runCompositeAction({
      actionDir: ACTION_DIR,
      workspace: makeWorkspace(),
      inputs: {
        bundle: 'bundle',
        key: KEY,
        'release-url': release.base,
        'signer-version': 'v1.2.3',
        'signer-sha256': 'ab'.repeat(32),
      },
      env: { ...OIDC_ENV, FAKE_RECORD_DIR: release.tools.recordDir },
    });
    assert.equal(result.outcome, 'failure');
    assert.equal(result.errors[0]?.properties.title, "Midcore sign input 'signer-sha256'");
  } finally {
    await release.close();
  }
});

test('install rejects plain http to other hosts', async () => {
  for (const url of [
    'http://releases.example/releases',
    // curl reads "localhost:1@" as user information and connects to the host after it.
    'http://localhost:1@releases.example/releases',
    'http://127.0.0.1:1@127.0.0.2:8080/releases',
    'https://user@releases.example/releases',
    'http://localhost.releases.example/releases',
  ]) {
    const result = await runCompositeAction({
      actionDir: ACTION_DIR,
      workspace: makeWorkspace(),
      inputs: { bundle: 'bundle', key: KEY, 'release-url': url },
      env: OIDC_ENV,
    });
    assert.equal(result.outcome, 'failure', url);
    assert.equal(result.errors[0]?.properties.title, "Midcore sign input 'release-url'", url);
  }
});
