// The Azure DevOps task run through the task library's MockTestRunner, with test doubles of
// midcore-sign and midcore-verify that record their arguments and environment. These tests
// check how the handler maps service connections to the signer's credentials, keeps secrets
// out of arguments and logs, sets output variables and reports failures. devops-e2e.test.mjs
// runs the real binaries against the loopback emulator.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { connectionEnv, parseCommands, runTaskMocked } from './lib/task-runner.mjs';
import { makeFakeTools } from './lib/fake-tools.mjs';

const KEY = 'azure-kv://signing.vault.test/keys/release';
const TENANT = '11111111-2222-3333-4444-555555555555';
const CLIENT = '66666666-7777-8888-9999-000000000000';
const ACCESS_TOKEN = 'job-access-token-3f9c2a7e';
const CLIENT_SECRET = 'spn-client-secret-9d81b4';

function makeBundle() {
  const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-bundle-'));
  fs.writeFileSync(path.join(bundle, 'app.txt'), 'app');
  return bundle;
}

function wifEnv(id) {
  return {
    ...connectionEnv(id, 'WorkloadIdentityFederation', { tenantid: TENANT, serviceprincipalid: CLIENT }),
    ...connectionEnv('SYSTEMVSSCONNECTION', 'OAuth', { AccessToken: ACCESS_TOKEN }),
    SYSTEM_OIDCREQUESTURI: 'https://127.0.0.1:9/oidc',
  };
}

function secretEnv(id, authenticationType = 'spnKey') {
  return connectionEnv(id, 'ServicePrincipal', {
    tenantid: TENANT,
    serviceprincipalid: CLIENT,
    authenticationType,
    serviceprincipalkey: CLIENT_SECRET,
  });
}

async function runWithFakes({ connection, env, inputs = {}, fakeEnv = {} }) {
  const tools = makeFakeTools();
  const bundle = inputs.bundle ?? makeBundle();
  const result = await runTaskMocked({
    inputs: {
      azureSubscription: connection,
      bundle,
      key: KEY,
      product: 'example',
      version: '1.0.0',
      signerPath: tools.sign,
      verifierPath: tools.verify,
      ...inputs,
    },
    env: { FAKE_RECORD_DIR: tools.recordDir, AGENT_TEMPDIRECTORY: os.tmpdir(), ...env, ...fakeEnv },
  });
  return { ...result, calls: tools.calls(), bundle };
}

function outputVariable(commands, name) {
  return commands.find((command) => command.command === 'task.setvariable'
    && command.properties.variable === name && command.properties.isOutput === 'true');
}

function completion(commands) {
  return commands.find((command) => command.command === 'task.complete');
}

test('workload identity connection signs with azure-pipelines auth', async () => {
  const { runner, calls, bundle } = await runWithFakes({ connection: 'conn-wif', env: wifEnv('conn-wif') });
  assert.ok(runner.succeeded, runner.stdout);
  const sign = calls.find((call) => call.argv[0] === 'sign');
  assert.deepEqual(sign.argv, ['sign', bundle, '--key', KEY, '--auth', 'azure-pipelines', '--json', '--product', 'example', '--version', '1.0.0']);
  assert.equal(sign.env.AZURE_TENANT_ID, TENANT);
  assert.equal(sign.env.AZURE_CLIENT_ID, CLIENT);
  assert.equal(sign.env.AZURE_SERVICE_CONNECTION_ID, 'conn-wif');
  assert.equal(sign.env.SYSTEM_ACCESSTOKEN, ACCESS_TOKEN);
  assert.equal(sign.env.SYSTEM_OIDCREQUESTURI, 'https://127.0.0.1:9/oidc');
});

test('workload identity connection masks the job token', async () => {
  const { commands, calls } = await runWithFakes({ connection: 'conn-wif', env: wifEnv('conn-wif') });
  const masked = commands.some((command) => command.command === 'task.setsecret' && command.message === ACCESS_TOKEN);
  assert.ok(masked, 'task.setsecret was not issued for the access token');
  for (const call of calls) assert.ok(!call.argv.join(' ').includes(ACCESS_TOKEN), `token in argv of ${call.tool}`);
});

test('secret connection signs with client-secret auth', async () => {
  const { runner, calls } = await runWithFakes({ connection: 'conn-spn', env: secretEnv('conn-spn') });
  assert.ok(runner.succeeded, runner.stdout);
  const sign = calls.find((call) => call.argv[0] === 'sign');
  assert.equal(sign.argv[sign.argv.indexOf('--auth') + 1], 'client-secret');
  assert.equal(sign.env.AZURE_CLIENT_SECRET, CLIENT_SECRET);
  assert.equal(sign.env.AZURE_CLIENT_ID, CLIENT);
});

test('secret connection keeps secret out of log', async () => {
  const { runner, commands, calls } = await runWithFakes({ connection: 'conn-spn', env: secretEnv('conn-spn') });
  const setSecret = commands.find((command) => command.command === 'task.setsecret');
  assert.equal(setSecret?.message, CLIENT_SECRET);
  const leaking = runner.stdout.split(/\r?\n/)
    .filter((line) => line.includes(CLIENT_SECRET) && !line.startsWith('##vso[task.setsecret]'));
  assert.deepEqual(leaking, []);
  for (const call of calls) assert.ok(!call.argv.join(' ').includes(CLIENT_SECRET), `secret in argv of ${call.tool}`);
});

test('secret only in per-parameter variable is not read through the logging accessor', async () => {
  const env = secretEnv('conn-spn');
  env['ENDPOINT_AUTH_conn-spn'] = JSON.stringify({
    scheme: 'ServicePrincipal',
    parameters: { tenantid: TENANT, serviceprincipalid: CLIENT, authenticationType: 'spnKey' },
  });
  const { runner } = await runWithFakes({ connection: 'conn-spn', env: { ...env, SYSTEM_DEBUG: 'true' } });
  assert.ok(runner.failed, runner.stdout);
  assert.ok(runner.stdout.includes('has no client secret'), runner.stdout);
  assert.ok(!runner.stdout.includes(CLIENT_SECRET), 'the client secret reached the log');
});

test('launch check gets no credentials', async () => {
  const { calls } = await runWithFakes({ connection: 'conn-spn', env: secretEnv('conn-spn') });
  const launch = calls.find((call) => call.tool === 'verify' || call.argv[0] === 'launch');
  assert.ok(launch, 'the launch check did not run');
  assert.equal(launch.env.AZURE_CLIENT_SECRET, undefined);
  assert.equal(launch.env.AZURE_CLIENT_ID, undefined);
});

test('successful run sets output variables', async () => {
  const { commands, bundle } = await runWithFakes({ connection: 'conn-spn', env: secretEnv('conn-spn') });
  assert.equal(outputVariable(commands, 'manifest')?.message, path.join(bundle, 'build', 'integrity.json'));
  assert.equal(outputVariable(commands, 'keyId')?.message, 'sha256:' + '0'.repeat(64));
});

test('successful run verifies with exported key', async () => {
  const { calls, bundle } = await runWithFakes({ connection: 'conn-spn', env: secretEnv('conn-spn') });
  const exported = calls.find((call) => call.argv[0] === 'key' && call.argv[1] === 'export-public');
  const publicKey = exported.argv[exported.argv.indexOf('--out') + 1];
  const launch = calls.find((call) => call.tool === 'midcore-verify');
  assert.deepEqual(launch.argv, ['launch', bundle, '--trust', publicKey, '--mode', 'full']);
});

test('certificate connection fails naming the cause', async () => {
  const { runner, calls } = await runWithFakes({ connection: 'conn-cert', env: secretEnv('conn-cert', 'spnCertificate') });
  assert.ok(runner.failed);
  assert.ok(runner.createdErrorIssue("Service connection 'conn-cert' uses a service-principal certificate, which the signer does not support: use workload identity federation or a client secret"), runner.stdout);
  assert.equal(calls.length, 0);
});

test('managed identity scheme fails naming the scheme', async () => {
  const env = connectionEnv('conn-msi', 'ManagedServiceIdentity', { tenantid: TENANT, serviceprincipalid: CLIENT });
  const { runner } = await runWithFakes({ connection: 'conn-msi', env });
  assert.ok(runner.failed);
  assert.match(completion(parseCommands(runner.stdout)).message, /authorization scheme 'ManagedServiceIdentity'/);
});

test('missing connection fails naming the variable', async () => {
  const { runner } = await runWithFakes({ connection: 'conn-absent', env: {} });
  assert.ok(runner.failed);
  assert.match(completion(parseCommands(runner.stdout)).message, /ENDPOINT_AUTH_SCHEME_conn-absent is not set/);
});

test('workload identity without oidc uri fails', async () => {
  const env = wifEnv('conn-wif');
  delete env.SYSTEM_OIDCREQUESTURI;
  const { runner } = await runWithFakes({ connection: 'conn-wif', env });
  assert.ok(runner.failed);
  assert.match(completion(parseCommands(runner.stdout)).message, /System\.OidcRequestUri is not set/);
});

test('bad bundle path fails naming the input', async () => {
  const missing = path.join(os.tmpdir(), 'midcore-no-such-bundle');
  const { runner, calls } = await runWithFakes({ connection: 'conn-spn', env: secretEnv('conn-spn'), inputs: { bundle: missing } });
  assert.ok(runner.failed);
  assert.ok(runner.createdErrorIssue(`Input 'bundle': folder not found: ${missing}`), runner.stdout);
  assert.equal(calls.length, 0);
});

test('signer failure fails the task', async () => {
  const { runner, commands } = await runWithFakes({
    connection: 'conn-spn',
    env: secretEnv('conn-spn'),
    fakeEnv: {
      FAKE_FAIL: 'midcore-sign sign',
      FAKE_FAIL_OUTPUT: '##vso[task.logissue type=error]Key Vault returned 403 Forbidden',
    },
  });
  assert.ok(runner.failed);
  assert.ok(commands.some((command) => command.command === 'task.logissue' && command.message === 'Key Vault returned 403 Forbidden'));
  assert.match(completion(commands).message, /^midcore-sign failed with exit code 1 while signing/);
});

test('launch check failure fails the task', async () => {
  const { runner, commands } = await runWithFakes({
    connection: 'conn-spn',
    env: secretEnv('conn-spn'),
    fakeEnv: { FAKE_FAIL: 'midcore-verify launch' },
  });
  assert.ok(runner.failed);
  assert.match(completion(commands).message, /^Launch check failed \(midcore-verify exit code 1\)/);
});

test('missing signer path fails naming the input', async () => {
  const { runner } = await runWithFakes({
    connection: 'conn-spn',
    env: secretEnv('conn-spn'),
    inputs: { signerPath: path.join(os.tmpdir(), 'no-such-midcore-sign') },
  });
  assert.ok(runner.failed);
  assert.match(completion(parseCommands(runner.stdout)).message, /^Input 'signerPath': no file at/);
});


test('workload identity keeps token out of log', async () => {
  const { runner } = await runWithFakes({ connection: 'conn-wif', env: wifEnv('conn-wif') });
  const leaking = runner.stdout.split(/\r?\n/)
    .filter((line) => line.includes(ACCESS_TOKEN) && !line.startsWith('##vso[task.setsecret]'));
  assert.deepEqual(leaking, []);
});

test('missing key input fails naming the input', async () => {
  const { runner } = await runWithFakes({ connection: 'conn-spn', env: secretEnv('conn-spn'), inputs: { key: '' } });
  assert.ok(runner.failed);
  assert.match(completion(parseCommands(runner.stdout)).message, /^Input required: key$/);
});
