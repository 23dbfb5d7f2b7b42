// The Azure DevOps task with the real midcore-sign and midcore-verify against the loopback
// emulator: through MockTestRunner for each connection scheme and the failure cases, and once
// as the agent runs it, a plain `node index.js` with INPUT_* and ENDPOINT_* variables.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { binary, makeExampleBundle, makeSampleBundle, startEmulator } from './lib/emulator.mjs';
import { TASK_DIR, connectionEnv, parseCommands, runTaskMocked } from './lib/task-runner.mjs';

let emulator;
before(async () => {
  emulator = await startEmulator({ keys: ['release:3072'] });
});
after(async () => {
  await emulator?.stop();
});

/** Environment the agent sets for the connection, plus the emulator's transport settings. */
function agentEnv(scheme) {
  const { info } = emulator;
  const id = info.ado_service_connection_id;
  const transport = { ...emulator.signerEnv };
  // The identity comes from the service connection, not from the job environment.
  delete transport.AZURE_CLIENT_ID;
  delete transport.AZURE_TENANT_ID;
  const base = { ...transport, TF_BUILD: 'True', AGENT_TEMPDIRECTORY: fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-agent-temp-')) };
  if (scheme === 'WorkloadIdentityFederation') {
    return {
      ...base,
      ...connectionEnv(id, scheme, { tenantid: info.tenant_id, serviceprincipalid: info.client_id }),
      ...connectionEnv('SYSTEMVSSCONNECTION', 'OAuth', { AccessToken: info.ado_access_token }),
      SYSTEM_OIDCREQUESTURI: info.ado_oidc_url,
    };
  }
  return {
    ...base,
    ...connectionEnv(id, scheme, {
      tenantid: info.tenant_id,
      serviceprincipalid: info.client_id,
      authenticationType: 'spnKey',
      serviceprincipalkey: info.client_secret,
    }),
  };
}

function inputs(bundle, keyName = 'release') {
  return {
    azureSubscription: emulator.info.ado_service_connection_id,
    bundle,
    key: emulator.keyReference(keyName),
    product: 'example',
    version: '1.0.0',
    signerPath: binary('midcore-sign'),
    verifierPath: binary('midcore-verify'),
  };
}

function outputVariable(commands, name) {
  return commands.find((command) => command.command === 'task.setvariable'
    && command.properties.variable === name && command.properties.isOutput === 'true')?.message;
}

function launch(bundle, trust) {
  return spawnSync(binary('midcore-verify'), ['launch', bundle, '--trust', trust], { encoding: 'utf8' });
}

for (const scheme of ['WorkloadIdentityFederation', 'ServicePrincipal']) {
  test(`mock run signs with ${scheme} connection`, async () => {
    const bundle = makeSampleBundle();
    const { runner, commands } = await runTaskMocked({ inputs: inputs(bundle), env: agentEnv(scheme) });
    assert.ok(runner.succeeded, runner.stdout + runner.stderr);
    const keyId = outputVariable(commands, 'keyId');
    assert.match(keyId ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal(outputVariable(commands, 'manifest'), path.join(bundle, 'build', 'integrity.json'));
    const check = launch(bundle, keyId);
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });
}

test('mock run with ServicePrincipal keeps secret out of log', async () => {
  const { runner } = await runTaskMocked({ inputs: inputs(makeSampleBundle()), env: agentEnv('ServicePrincipal') });
  const leaking = (runner.stdout + runner.stderr).split(/\r?\n/)
    .filter((line) => line.includes(emulator.info.client_secret) && !line.startsWith('##vso[task.setsecret]'));
  assert.deepEqual(leaking, []);
});

test('mock run reports vault 403 as issue', async () => {
  const { runner, commands } = await runTaskMocked({ inputs: inputs(makeSampleBundle(), 'forbidden-release'), env: agentEnv('WorkloadIdentityFederation') });
  assert.ok(runner.failed);
  const issues = commands.filter((command) => command.command === 'task.logissue' && command.properties.type === 'error');
  assert.equal(issues.length, 1, runner.stdout);
  assert.match(issues[0].message, /403|[Ff]orbidden/);
  assert.match(runner.errorIssues.join('\n'), /^midcore-sign failed with exit code 1 while signing/m);
});

test('mock run reports throttling past deadline', async () => {
  await emulator.setFaults({ throttle_for_secs: 120 });
  try {
    const env = { ...agentEnv('WorkloadIdentityFederation'), MIDCORE_SIGN_DEADLINE_SECS: '3', MIDCORE_KV_BACKOFF_BASE_MS: '100' };
    const { runner, commands } = await runTaskMocked({ inputs: inputs(makeSampleBundle()), env });
    assert.ok(runner.failed);
    const issues = commands.filter((command) => command.command === 'task.logissue' && command.properties.type === 'error');
    assert.equal(issues.length, 1, runner.stdout);
    assert.match(issues[0].message, /timed out: the run's deadline of 3 s (passed|would pass)/);
  } finally {
    await emulator.setFaults({ throttle_for_secs: 0 });
  }
});

async function runAsAgent(bundle) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...agentEnv('WorkloadIdentityFederation') };
  for (const [name, value] of Object.entries(inputs(bundle))) env[`INPUT_${name.toUpperCase()}`] = value;
  const child = spawn(process.execPath, [path.join(TASK_DIR, 'index.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const code = await new Promise((resolve) => child.on('close', resolve));
  assert.equal(code, 0, stderr);

  const commands = parseCommands(stdout);
  const complete = commands.find((command) => command.command === 'task.complete');
  assert.equal(complete?.properties.result, 'Succeeded', stdout);
  const keyId = outputVariable(commands, 'keyId');
  const check = launch(bundle, keyId);
  assert.equal(check.status, 0, check.stdout + check.stderr);
  const summary = commands.find((command) => command.command === 'task.uploadsummary');
  assert.match(fs.readFileSync(summary?.message ?? '', 'utf8'), /\| Versioned key \| `https:\/\/[^`]+\/keys\/release\/[0-9a-f]{32}` \|/);
  const leaking = (stdout + stderr).split(/\r?\n/)
    .filter((line) => line.includes(emulator.info.ado_access_token) && !line.startsWith('##vso[task.setsecret]'));
  assert.deepEqual(leaking, []);
}

test('handler run as the agent runs it', async () => {
  await runAsAgent(makeSampleBundle());
});

test('agent run signs the example bundle', async () => {
  await runAsAgent(makeExampleBundle());
});
