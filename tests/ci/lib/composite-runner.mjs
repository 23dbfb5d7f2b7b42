// Runs a composite action's steps the way the GitHub Actions runner does, so the action can be
// tested on this machine. It covers inputs with their defaults and `${{ }}` expressions. Each
// `run` step runs in its shell (bash: `bash --noprofile --norc -eo pipefail FILE`) with its
// `env` and fresh GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY files. The
// harness reads the workflow commands a step prints (`::error`, `::warning`, `::add-mask::`),
// evaluates `if:` with the status functions, and computes the action's outputs. `uses:` steps
// and shells other than bash are not supported and raise an error.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';

import { evaluateCondition, interpolate } from './expressions.mjs';

const STEP_TIMEOUT_MS = 5 * 60 * 1000;

function unescapeData(text) {
  return text.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
}

function unescapeProperty(text) {
  return text
    .replace(/%0D/g, '\r')
    .replace(/%0A/g, '\n')
    .replace(/%3A/g, ':')
    .replace(/%2C/g, ',')
    .replace(/%25/g, '%');
}

/** Parses one log line as a workflow command (`::name key=value,...::message`), or returns null. */
export function parseWorkflowCommand(line) {
  const trimmed = line.trim();
  const match = /^::([A-Za-z-]+)( [^:]*)?::(.*)$/s.exec(trimmed);
  if (!match) return null;
  const properties = {};
  for (const pair of (match[2] ?? '').trim().split(',').filter(Boolean)) {
    const equals = pair.indexOf('=');
    if (equals > 0) properties[pair.slice(0, equals)] = unescapeProperty(pair.slice(equals + 1));
  }
  return { command: match[1], properties, message: unescapeData(match[3]) };
}

/**
 * Parses a GITHUB_OUTPUT or GITHUB_ENV file as the runner does: `name=value` lines, and
 * `name<<DELIMITER` blocks that end at a line equal to the delimiter.
 */
export function parseKeyValueFile(text) {
  const values = {};
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index];
    if (line === '') continue;
    const equals = line.indexOf('=');
    const heredoc = line.indexOf('<<');
    if (equals >= 0 && (heredoc < 0 || equals < heredoc)) {
      values[line.slice(0, equals)] = line.slice(equals + 1);
      continue;
    }
    if (heredoc <= 0) throw new Error(`invalid line ${index + 1} in a file command: ${JSON.stringify(line)}`);
    const name = line.slice(0, heredoc);
    const delimiter = line.slice(heredoc + 2);
    const body = [];
    index += 1;
    while (index < lines.length && lines[index] !== delimiter) {
      body.push(lines[index]);
      index += 1;
    }
    if (index >= lines.length) throw new Error(`file command value for '${name}' has no closing delimiter ${delimiter}`);
    values[name] = body.join('\n');
  }
  return values;
}

function runnerPlatform() {
  const runnerOs = { linux: 'Linux', darwin: 'macOS', win32: 'Windows' }[process.platform];
  const runnerArch = { x64: 'X64', arm64: 'ARM64' }[process.arch];
  return { runnerOs, runnerArch };
}

function runBash(scriptPath, env, cwd, logPath) {
  return new Promise((resolve, reject) => {
    const log = fs.openSync(logPath, 'w');
    // One descriptor for stdout and stderr keeps the lines in the order the step printed them.
    const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', scriptPath], {
      cwd,
      env,
      stdio: ['ignore', log, log],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), STEP_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      fs.closeSync(log);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      fs.closeSync(log);
      resolve(signal ? 128 : code);
    });
  });
}

/**
 * Runs the composite action in `actionDir`.
 *
 * @param {object} options
 * @param {string} options.actionDir folder holding action.yml
 * @param {Record<string,string>} options.inputs the `with:` values
 * @param {Record<string,string>} options.env job environment added to PATH, HOME and the runner variables
 * @param {string} options.workspace GITHUB_WORKSPACE and the steps' working folder
 * @param {Record<string,string>} [options.github] extra `github` context values, such as action_ref
 */
export async function runCompositeAction({ actionDir, inputs = {}, env = {}, workspace, github = {} }) {
  const action = YAML.parse(fs.readFileSync(path.join(actionDir, 'action.yml'), 'utf8'));
  if (action.runs?.using !== 'composite') throw new Error('the harness runs composite actions only');

  const runnerTemp = fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-runner-'));
  const { runnerOs, runnerArch } = runnerPlatform();
  const githubContext = {
    action_path: actionDir,
    action_ref: '',
    action_repository: '',
    workspace,
    repository: 'example/midcore',
    server_url: 'https://github.com',
    ...github,
  };

  // 1. Inputs: given values, else defaults (which may hold expressions).
  const baseValues = {
    github: githubContext,
    runner: { os: runnerOs, arch: runnerArch, temp: runnerTemp },
    env: { ...env },
  };
  const inputValues = {};
  for (const [name, spec] of Object.entries(action.inputs ?? {})) {
    inputValues[name] = Object.hasOwn(inputs, name)
      ? String(inputs[name])
      : interpolate(String(spec?.default ?? ''), { values: baseValues });
  }
  for (const name of Object.keys(inputs)) {
    if (!Object.hasOwn(action.inputs ?? {}, name)) throw new Error(`input '${name}' is not declared in action.yml`);
  }

  // 2. The environment every step starts from, as a hosted runner sets it.
  const jobEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANG: 'C.UTF-8',
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: workspace,
    GITHUB_REPOSITORY: githubContext.repository,
    GITHUB_SERVER_URL: githubContext.server_url,
    GITHUB_ACTION_PATH: actionDir,
    RUNNER_OS: runnerOs,
    RUNNER_ARCH: runnerArch,
    RUNNER_TEMP: runnerTemp,
    ...env,
  };
  const addedEnv = {};
  const addedPath = [];

  const steps = {};
  const annotations = [];
  const masks = [];
  const rawLines = [];
  const leaks = [];
  let summary = '';
  let status = 'success';

  for (const [index, step] of (action.runs.steps ?? []).entries()) {
    const id = step.id ?? `__step${index}`;
    const values = { ...baseValues, inputs: inputValues, steps, env: { ...jobEnv, ...addedEnv } };
    const context = { values, status };

    if (!evaluateCondition(step.if, context)) {
      steps[id] = { outcome: 'skipped', conclusion: 'skipped', outputs: {} };
      continue;
    }
    if (step.uses) throw new Error(`step ${id}: 'uses' steps are not supported by the harness`);
    if (step.shell !== 'bash') throw new Error(`step ${id}: shell '${step.shell}' is not supported by the harness`);

    // 3. Fresh file-command files for this step.
    const files = {};
    for (const name of ['GITHUB_OUTPUT', 'GITHUB_ENV', 'GITHUB_PATH', 'GITHUB_STEP_SUMMARY', 'GITHUB_STATE']) {
      files[name] = path.join(runnerTemp, `${name.toLowerCase()}_${index}`);
      fs.writeFileSync(files[name], '');
    }
    const stepEnv = {};
    for (const [name, value] of Object.entries(step.env ?? {})) stepEnv[name] = interpolate(String(value), context);
    const processEnv = { ...jobEnv, ...addedEnv, ...stepEnv, ...files };
    if (addedPath.length) processEnv.PATH = [...addedPath, processEnv.PATH].join(path.delimiter);

    const scriptPath = path.join(runnerTemp, `step_${index}.sh`);
    fs.writeFileSync(scriptPath, interpolate(step.run, context));
    const cwd = step['working-directory'] ? path.resolve(workspace, interpolate(step['working-directory'], context)) : workspace;
    const logPath = path.join(runnerTemp, `step_${index}.log`);
    const exitCode = await runBash(scriptPath, processEnv, cwd, logPath);

    // 4. Workflow commands, in the order the step printed them.
    for (const line of fs.readFileSync(logPath, 'utf8').split(/\r?\n/)) {
      const command = parseWorkflowCommand(line);
      if (command?.command === 'add-mask') {
        // A value printed before it was masked leaked; masking the same value again is not a leak.
        for (const earlier of rawLines) {
          const maskedBefore = parseWorkflowCommand(earlier)?.command === 'add-mask';
          if (command.message && !maskedBefore && earlier.includes(command.message)) leaks.push({ step: id, line: earlier });
        }
        if (command.message) masks.push(command.message);
      } else if (command && ['error', 'warning', 'notice'].includes(command.command)) {
        annotations.push({ step: id, ...command });
      }
      rawLines.push(line);
    }

    // 5. File commands: outputs, environment, PATH and the summary.
    const outputs = parseKeyValueFile(fs.readFileSync(files.GITHUB_OUTPUT, 'utf8'));
    Object.assign(addedEnv, parseKeyValueFile(fs.readFileSync(files.GITHUB_ENV, 'utf8')));
    addedPath.unshift(...fs.readFileSync(files.GITHUB_PATH, 'utf8').split(/\r?\n/).filter(Boolean));
    summary += fs.readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8');

    const outcome = exitCode === 0 ? 'success' : 'failure';
    steps[id] = { outcome, conclusion: step['continue-on-error'] ? 'success' : outcome, outputs, exitCode };
    if (outcome === 'failure' && !step['continue-on-error']) status = 'failure';
  }

  // 6. The action's outputs, evaluated after the last step.
  const outputs = {};
  const finalContext = { values: { ...baseValues, inputs: inputValues, steps }, status };
  for (const [name, spec] of Object.entries(action.outputs ?? {})) {
    outputs[name] = interpolate(String(spec?.value ?? ''), finalContext);
  }

  const mask = (line) => masks.reduce((text, secret) => text.split(secret).join('***'), line);
  return {
    outcome: status,
    steps,
    outputs,
    annotations,
    errors: annotations.filter((annotation) => annotation.command === 'error'),
    masks,
    leaks,
    log: rawLines.map(mask).join('\n'),
    summary,
    runnerTemp,
  };
}
