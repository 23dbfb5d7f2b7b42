// The composite action run by the runner harness with the real midcore-sign and midcore-verify.
// One run uses a local key. The others sign through the loopback Key Vault emulator with the
// GitHub OIDC token it issues, which a runner would put in ACTIONS_ID_TOKEN_REQUEST_URL and
// ACTIONS_ID_TOKEN_REQUEST_TOKEN. Needs the binaries built (see lib/emulator.mjs).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { runCompositeAction } from './lib/composite-runner.mjs';
import { REPO, binary, makeExampleBundle, makeSampleBundle, startEmulator } from './lib/emulator.mjs';

const ACTION_DIR = path.join(REPO, 'github-actions', 'sign');

function makeWorkspace(makeBundle = makeSampleBundle) {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-workspace-'));
  fs.cpSync(makeBundle(), path.join(workspace, 'bundle'), { recursive: true, verbatimSymlinks: true });
  return workspace;
}

function launch(bundle, trust) {
  return spawnSync(binary('midcore-verify'), ['launch', bundle, '--trust', trust], { encoding: 'utf8' });
}

async function runAction({ key, env, inputs = {}, makeBundle }) {
  const workspace = makeWorkspace(makeBundle);
  const result = await runCompositeAction({
    actionDir: ACTION_DIR,
    workspace,
    inputs: { bundle: 'bundle', key, 'signer-path': binary('midcore-sign'), product: 'example', version: '1.0.0', ...inputs },
    env,
  });
  return { ...result, bundle: path.join(workspace, 'bundle') };
}

test('action signs and verifies with local key', async () => {
  const keys = fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-keys-'));
  const keygen = spawnSync(binary('midcore-sign'), ['keygen', '--private', path.join(keys, 'k.pem'), '--public', path.join(keys, 'k.pub.pem'), '--bits', '2048'], { encoding: 'utf8' });
  assert.equal(keygen.status, 0, keygen.stderr);
  const keyId = keygen.stdout.trim();

  const result = await runAction({ key: `local:${path.join(keys, 'k.pem')}`, env: {} });
  assert.equal(result.outcome, 'success', result.log);
  assert.equal(result.outputs['key-id'], keyId);
  assert.equal(result.outputs.manifest, path.join('bundle', 'build', 'integrity.json'));
  assert.ok(Number(result.outputs.files) > 0, `files output: ${result.outputs.files}`);
  assert.match(result.summary, /\| Files covered \| \d+ \(\d+ bytes/);
  assert.equal(result.steps.verify.outcome, 'success');
});

let emulator;
before(async () => {
  emulator = await startEmulator({ keys: ['release:3072'] });
});
after(async () => {
  await emulator?.stop();
});

function oidcEnv(extra = {}) {
  return {
    ...emulator.signerEnv,
    ACTIONS_ID_TOKEN_REQUEST_URL: emulator.info.github_oidc_url,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: emulator.info.github_oidc_token,
    ...extra,
  };
}

test('action signs through vault with github oidc', async () => {
  const result = await runAction({ key: emulator.keyReference('release'), env: oidcEnv() });
  assert.equal(result.outcome, 'success', result.log);
  assert.match(result.outputs['key-id'], /^sha256:[0-9a-f]{64}$/);
  assert.equal(result.steps.verify.outcome, 'success');
  assert.deepEqual(result.errors, []);
});

test('action signs the example bundle through vault', async () => {
  const result = await runAction({ key: emulator.keyReference('release'), env: oidcEnv(), makeBundle: makeExampleBundle });
  assert.equal(result.outcome, 'success', result.log);
  const check = launch(result.bundle, result.outputs['key-id']);
  assert.equal(check.status, 0, check.stdout + check.stderr);
});

test('vault-signed bundle passes independent launch check', async () => {
  const result = await runAction({ key: emulator.keyReference('release'), env: oidcEnv() });
  const check = launch(result.bundle, result.outputs['key-id']);
  assert.equal(check.status, 0, check.stdout + check.stderr);
});

test('vault summary names the versioned key', async () => {
  const result = await runAction({ key: emulator.keyReference('release'), env: oidcEnv() });
  assert.match(result.summary, /\| Versioned key \| `https:\/\/[^`]+\/keys\/release\/[0-9a-f]{32}` \|/);
  assert.match(result.summary, /\| Key id \| `sha256:[0-9a-f]{64}` \|/);
  assert.match(result.summary, /\| Duration \| \d+ ms \|/);
});

test('vault run prints no token before masking it', async () => {
  const result = await runAction({ key: emulator.keyReference('release'), env: oidcEnv() });
  assert.deepEqual(result.leaks, []);
  assert.ok(!result.log.includes(emulator.info.github_oidc_token), 'the OIDC request token appears in the log');
});

test('vault run masks the tokens it handles', async () => {
  const result = await runAction({ key: emulator.keyReference('release'), env: oidcEnv() });
  const jwtMasks = result.masks.filter((mask) => /^[\w-]+\.[\w-]+\.[\w-]*$/.test(mask));
  assert.ok(jwtMasks.length >= 2, `expected the OIDC assertion and the access token to be masked, got ${result.masks.length} masks`);
});

test('vault 403 fails with annotation', async () => {
  const result = await runAction({ key: emulator.keyReference('forbidden-release'), env: oidcEnv() });
  assert.equal(result.outcome, 'failure');
  assert.equal(result.steps.sign.outcome, 'failure');
  assert.equal(result.errors.length, 1, JSON.stringify(result.errors));
  assert.match(result.errors[0].message, /403|[Ff]orbidden/);
  assert.match(result.errors[0].message, /forbidden-release/);
});

test('throttling beyond deadline fails with annotation', async () => {
  await emulator.setFaults({ throttle_for_secs: 120 });
  try {
    const result = await runAction({
      key: emulator.keyReference('release'),
      env: oidcEnv({ MIDCORE_SIGN_DEADLINE_SECS: '3', MIDCORE_KV_BACKOFF_BASE_MS: '100' }),
    });
    assert.equal(result.outcome, 'failure');
    assert.equal(result.steps.sign.outcome, 'failure');
    assert.equal(result.errors.length, 1, JSON.stringify(result.errors));
    assert.match(result.errors[0].message, /timed out: the run's deadline of 3 s (passed|would pass)/);
  } finally {
    await emulator.setFaults({ throttle_for_secs: 0 });
  }
});
