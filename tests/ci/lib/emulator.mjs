// Locates the built binaries and starts the loopback Azure emulator
// (`midcore-azure-emulator --listen 127.0.0.1:0 --state-dir DIR`), returning its startup line
// and the environment that points midcore-sign at it.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Folder of the built binaries: MIDCORE_BIN_DIR, else CARGO_TARGET_DIR/debug, else target/debug. */
export function binDir() {
  if (process.env.MIDCORE_BIN_DIR) return path.resolve(process.env.MIDCORE_BIN_DIR);
  return path.join(process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(REPO, 'target'), 'debug');
}

/** Path of a built binary; throws with the build command when it is missing. */
export function binary(name) {
  const file = path.join(binDir(), name);
  if (!fs.existsSync(file)) {
    throw new Error(`${file} is missing: run cargo build -p midcore-signer --features azure -p midcore-verifier -p midcore-e2e first, or set MIDCORE_BIN_DIR`);
  }
  return file;
}

/**
 * Starts the emulator with the given keys (NAME or NAME:BITS). Resolves once it has printed its
 * startup line.
 */
export async function startEmulator({ keys = [] } = {}) {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-emulator-'));
  const args = ['--listen', '127.0.0.1:0', '--state-dir', stateDir];
  for (const key of keys) args.push('--key', key);
  const child = spawn(binary('midcore-azure-emulator'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const lines = readline.createInterface({ input: child.stdout });
  const info = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the emulator exited with ${code} before its startup line: ${stderr}`)));
    lines.once('line', (line) => resolve(JSON.parse(line)));
  });
  const ca = fs.readFileSync(info.ca_cert);
  const address = info.listen.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');

  /** Sends a request to the control interface and returns the parsed JSON response. */
  function control(method, route, body) {
    const url = new URL(`${info.control_url}/${route}`);
    return new Promise((resolve, reject) => {
      const request = https.request(url, { method, ca, headers: { 'content-type': 'application/json' } }, (response) => {
        let text = '';
        response.on('data', (chunk) => {
          text += chunk;
        });
        response.on('end', () => {
          if (response.statusCode >= 300) reject(new Error(`${method} ${url.pathname}: ${response.statusCode} ${text}`));
          else resolve(text ? JSON.parse(text) : null);
        });
      });
      request.on('error', reject);
      request.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  return {
    info,
    /** Environment for midcore-sign: trust the test CA and map the emulator's host names to loopback. */
    signerEnv: {
      MIDCORE_AZURE_CA_FILE: info.ca_cert,
      MIDCORE_AZURE_RESOLVE: info.resolve.map((host) => `${host}=${address}`).join(','),
      AZURE_AUTHORITY_HOST: info.authority_url,
      AZURE_TENANT_ID: info.tenant_id,
      AZURE_CLIENT_ID: info.client_id,
      NO_PROXY: '*',
    },
    keyReference: (name) => `${info.key_reference_prefix}${name}`,
    setFaults: (faults) => control('POST', 'faults', faults),
    stats: () => control('GET', 'stats'),
    stop() {
      child.kill('SIGTERM');
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once('exit', () => resolve());
      });
    },
  };
}

/** Writes a small unsigned bundle: a text file, a JSON file and a WASM module. */
export function makeSampleBundle() {
  const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-bundle-'));
  fs.writeFileSync(path.join(bundle, 'index.html'), '<!doctype html><title>example</title>\n');
  fs.writeFileSync(path.join(bundle, 'package.json'), '{"name":"example","version":"1.0.0"}\n');
  fs.mkdirSync(path.join(bundle, 'local-compute', 'runners'), { recursive: true });
  // The smallest valid WebAssembly module: magic number and version 1.
  fs.writeFileSync(path.join(bundle, 'local-compute', 'runners', 'empty.wasm'), Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));
  return bundle;
}

/** Copies the repository's unsigned example bundle, examples/bundle, to a temporary folder. */
export function makeExampleBundle() {
  const example = path.join(REPO, 'examples', 'bundle');
  if (!fs.existsSync(example)) throw new Error(`${example} is missing; scripts/make-example-bundle.sh builds it`);
  const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-example-'));
  fs.cpSync(example, bundle, { recursive: true, verbatimSymlinks: true });
  return bundle;
}
