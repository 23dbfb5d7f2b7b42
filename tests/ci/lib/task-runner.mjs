// Runs the Azure DevOps task with the task library's MockTestRunner, pre-seeded with this
// machine's Node so that the runner downloads nothing.
//
// MockTestRunner (azure-pipelines-task-lib 5.x, mock-test.js) picks the Node major version from
// the handler in task.json (Node20_1 gives 20), looks for
// $HOME/azure-pipelines-task-lib/_download/node20/node-v20.13.1-linux-x64/bin/node next to a
// node20.completed marker, and downloads Node only when either is missing. HOME is read once,
// when mock-test.js is loaded, so this module points HOME at a temporary folder, seeds that
// path with a link to the running Node, and only then loads the library.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const moduleDir = path.dirname(fileURLToPath(import.meta.url));
export const TASK_DIR = path.resolve(moduleDir, '..', '..', '..', 'azure', 'devops-task', 'midcore-sign');
const MOCK_RUN = path.resolve(moduleDir, '..', 'devops', 'mock-run.cjs');

// Versions the library maps each major to (mock-test.js, getNodePath).
const MOCK_NODE_VERSIONS = { 20: 'v20.13.1', 24: 'v24.10.0' };

function seedNode(home) {
  const major = Number(process.versions.node.split('.')[0]);
  const version = MOCK_NODE_VERSIONS[major];
  if (!version) throw new Error(`the task runs on Node 20; this machine has Node ${process.versions.node}`);
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error('the pre-seeded Node path is laid out for linux-x64 only');
  }
  const download = path.join(home, 'azure-pipelines-task-lib', '_download');
  const binDir = path.join(download, `node${major}`, `node-${version}-linux-x64`, 'bin');
  fs.mkdirSync(binDir, { recursive: true });
  fs.symlinkSync(process.execPath, path.join(binDir, 'node'));
  fs.writeFileSync(path.join(download, `node${major}.completed`), '');
  return path.join(binDir, 'node');
}

const fakeHome = fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-mock-home-'));
export const seededNode = seedNode(fakeHome);
process.env.HOME = fakeHome;
const { MockTestRunner } = require('azure-pipelines-task-lib/mock-test');
const taskCommand = require('azure-pipelines-task-lib/taskcommand');

/** Parses every ##vso command in `stdout`. */
export function parseCommands(stdout) {
  const commands = [];
  for (const line of stdout.split(/\r?\n/)) {
    const start = line.indexOf('##vso[');
    if (start >= 0) commands.push({ line, ...taskCommand.commandFromString(line.substring(start)) });
  }
  return commands;
}

/**
 * Runs the task with `inputs` and the extra process environment `env` (service connections,
 * variables), then restores the environment. Returns the runner and the parsed commands.
 */
export async function runTaskMocked({ inputs, env = {} }) {
  const saved = {};
  for (const [name, value] of Object.entries(env)) {
    saved[name] = process.env[name];
    process.env[name] = value;
  }
  process.env.MIDCORE_TASK_SCENARIO = JSON.stringify({ inputs });
  try {
    const runner = new MockTestRunner();
    await runner.LoadAsync(MOCK_RUN, path.join(TASK_DIR, 'task.json'));
    await runner.runAsync();
    if (runner.nodePath !== seededNode) throw new Error(`MockTestRunner used ${runner.nodePath}, not the seeded Node`);
    return { runner, commands: parseCommands(runner.stdout) };
  } finally {
    delete process.env.MIDCORE_TASK_SCENARIO;
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

/** Builds the environment variables the agent sets for a service connection. */
export function connectionEnv(id, scheme, parameters) {
  const env = {
    [`ENDPOINT_AUTH_SCHEME_${id}`]: scheme,
    [`ENDPOINT_AUTH_${id}`]: JSON.stringify({ scheme, parameters }),
  };
  for (const [name, value] of Object.entries(parameters)) {
    env[`ENDPOINT_AUTH_PARAMETER_${id}_${name.toUpperCase()}`] = value;
  }
  return env;
}
