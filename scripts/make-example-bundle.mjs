// Builds the unsigned example bundle (examples/bundle/) from the npm packages
// pinned in scripts/package-lock.json. Run it through make-example-bundle.sh,
// which installs those packages first.
//
// Usage: node make-example-bundle.mjs [--check] [OUTPUT_DIR]
//   OUTPUT_DIR  defaults to <repository>/examples/bundle
//   --check     build into a temporary folder and compare it byte for byte with
//               OUTPUT_DIR instead of replacing it; exit 1 on any difference
//
// The output depends only on the pinned packages and this script: @electron/asar
// sorts the files it packs, stores no timestamps, and file modes are normalised
// to 0644 or 0755 before packing.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WASI } from 'node:wasi';

import { createPackageWithOptions } from '@electron/asar';

const require = createRequire(import.meta.url);
const scriptsDir = path.dirname(fileURLToPath(import.meta.url));
const repoDir = path.dirname(scriptsDir);
const nodeModules = path.join(scriptsDir, 'node_modules');

// Packages copied whole into the packed app's node_modules/. bufferutil ships
// prebuilt native addons (prebuilds/*/bufferutil.node), which go to the
// app.asar.unpacked/ folder because Node cannot load a native addon from
// inside an archive.
const APP_PACKAGES = ['ms', 'semver', 'bufferutil', 'node-gyp-build'];
const UNPACK_GLOB = '*.node';

// Example bundles are committed, so keep them small.
const MAX_BUNDLE_BYTES = 2 * 1024 * 1024;

const ECHO_WAT = path.join(repoDir, 'examples', 'runners', 'echo.wat');
const TREE_SITTER_WASM = path.join(nodeModules, 'web-tree-sitter', 'web-tree-sitter.wasm');
const ECHO_IMPORTS = ['fd_read', 'fd_write', 'proc_exit'];

const APP_PACKAGE_JSON = {
  name: 'midcore-example-app',
  version: '1.0.0',
  description: 'Example Electron app packed for the Midcore signing examples',
  main: 'main.js',
  license: 'MIT',
  dependencies: {},
};

const APP_MAIN_JS = `'use strict';
// Entry point of the example app. It runs under Electron or plain Node and only
// exercises its dependencies, so the archive contains real, loadable code.
const ms = require('ms');
const semver = require('semver');

function describe() {
  const lines = [
    'midcore example app ' + require('./package.json').version,
    'timeout: ' + ms(90 * 1000, { long: true }),
    'electron >= 30: ' + semver.satisfies(process.versions.electron || '0.0.0', '>=30'),
  ];
  try {
    // Loads prebuilds/<platform>-<arch>/bufferutil.node from app.asar.unpacked.
    const { mask } = require('bufferutil');
    const output = Buffer.alloc(4);
    mask(Buffer.from('abcd'), Buffer.from([1, 2, 3, 4]), output, 0, 4);
    lines.push('bufferutil mask: ' + output.toString('hex'));
  } catch (error) {
    lines.push('bufferutil unavailable: ' + error.message);
  }
  return lines.join('\\n');
}

console.log(describe());
`;

async function main() {
  const args = process.argv.slice(2);
  const check = args[0] === '--check';
  if (check) args.shift();
  if (args.length > 1) {
    throw new Error('usage: make-example-bundle.mjs [--check] [OUTPUT_DIR]');
  }
  const outputDir = path.resolve(args[0] ?? path.join(repoDir, 'examples', 'bundle'));

  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-example-'));
  try {
    const stagedBundle = path.join(workDir, 'bundle');
    await buildBundle(path.join(workDir, 'app'), stagedBundle);

    const files = listFiles(stagedBundle);
    const total = files.reduce((sum, file) => sum + file.size, 0);
    if (total > MAX_BUNDLE_BYTES) {
      throw new Error(`example bundle is ${total} bytes, over the ${MAX_BUNDLE_BYTES}-byte limit for a committed bundle`);
    }

    if (check) {
      compareTrees(stagedBundle, outputDir);
      console.log(`ok: ${outputDir} matches a fresh build (${files.length} files, ${total} bytes)`);
      return;
    }

    replaceOutput(stagedBundle, outputDir);
    for (const file of listFiles(outputDir)) {
      console.log(`${file.sha256}  ${String(file.size).padStart(8)}  ${file.relative}`);
    }
    console.log(`wrote ${outputDir}: ${files.length} files, ${total} bytes`);
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

async function buildBundle(appDir, bundleDir) {
  // 1. The app folder: package.json, main.js, dependencies and one symlink.
  fs.mkdirSync(path.join(appDir, 'node_modules', '.bin'), { recursive: true });
  fs.writeFileSync(path.join(appDir, 'package.json'), JSON.stringify(APP_PACKAGE_JSON, null, 2) + '\n');
  fs.writeFileSync(path.join(appDir, 'main.js'), APP_MAIN_JS);
  fs.mkdirSync(path.join(appDir, 'licenses'));
  for (const name of APP_PACKAGES) {
    copyPackage(name, path.join(appDir, 'node_modules', name));
    copyLicense(name, path.join(appDir, 'licenses'));
  }
  // The same relative link npm creates for semver's command; its target stays
  // inside the app, so the packer stores it as a link entry.
  fs.symlinkSync('../semver/bin/semver.js', path.join(appDir, 'node_modules', '.bin', 'semver'));
  normaliseModes(appDir);

  // 2. app.asar and app.asar.unpacked/.
  await createPackageWithOptions(appDir, path.join(bundleDir, 'app.asar'), { unpack: UNPACK_GLOB });
  if (!fs.existsSync(path.join(bundleDir, 'app.asar.unpacked'))) {
    throw new Error(`no file matched the unpack pattern ${UNPACK_GLOB}, so app.asar.unpacked/ is missing`);
  }

  // 3. Runner modules.
  const runnersDir = path.join(bundleDir, 'local-compute', 'runners');
  fs.mkdirSync(runnersDir, { recursive: true });

  const echo = await assembleEcho();
  testEcho(echo);
  fs.writeFileSync(path.join(runnersDir, 'echo.wasm'), echo);

  const treeSitter = fs.readFileSync(TREE_SITTER_WASM);
  // An Emscripten side module: it needs a host loader to run, but it must compile.
  await WebAssembly.compile(treeSitter);
  fs.writeFileSync(path.join(runnersDir, 'tree-sitter.wasm'), treeSitter);
}

function copyPackage(name, destination) {
  const source = path.join(nodeModules, name);
  if (!fs.existsSync(path.join(source, 'package.json'))) {
    throw new Error(`package ${name} is not installed under ${nodeModules}; run make-example-bundle.sh, which runs npm ci`);
  }
  // Packages from the registry contain no symlinks. Reject any, so that a
  // link out of the app can never reach the archive.
  fs.cpSync(source, destination, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (entry) => {
      if (fs.lstatSync(entry).isSymbolicLink()) {
        throw new Error(`unexpected symlink in package ${name}: ${entry}`);
      }
      return true;
    },
  });
}

// Copies a package's license file to licenses/NAME.txt, as apps do for their
// third-party notices. The copy has the same bytes as the file under
// node_modules/, so @electron/asar 4.3 stores the contents once and gives both
// entries the same offset: a verifier must accept that sharing.
function copyLicense(name, licensesDir) {
  const packageDir = path.join(nodeModules, name);
  const license = fs.readdirSync(packageDir).find((file) => /^licen[cs]e(\.md|\.txt)?$/i.test(file));
  if (!license) {
    throw new Error(`package ${name} has no LICENSE file`);
  }
  fs.copyFileSync(path.join(packageDir, license), path.join(licensesDir, `${name}.txt`));
}

// Set files to 0644 or 0755 (by the owner's execute bit) and folders to 0755,
// so that the umask of the machine that ran npm cannot change the archive's
// "executable" flags or the unpacked files' modes.
function normaliseModes(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const entryPath = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) {
      fs.chmodSync(entryPath, 0o755);
      normaliseModes(entryPath);
    } else {
      const executable = (fs.statSync(entryPath).mode & 0o100) !== 0;
      fs.chmodSync(entryPath, executable ? 0o755 : 0o644);
    }
  }
}

async function assembleEcho() {
  const wabt = await require('wabt')();
  const parsed = wabt.parseWat(path.basename(ECHO_WAT), fs.readFileSync(ECHO_WAT, 'utf8'));
  try {
    parsed.validate();
    const { buffer } = parsed.toBinary({ log: false, write_debug_names: false });
    return Buffer.from(buffer);
  } finally {
    parsed.destroy();
  }
}

// Runs echo.wasm under Node's WASI preview 1 host with a few inputs and checks
// that it copies stdin to stdout exactly and exits 0.
function testEcho(wasm) {
  const module = new WebAssembly.Module(wasm);
  const imports = WebAssembly.Module.imports(module);
  const names = imports.map((entry) => `${entry.module}.${entry.name}`).sort();
  const expected = ECHO_IMPORTS.map((name) => `wasi_snapshot_preview1.${name}`).sort();
  if (JSON.stringify(names) !== JSON.stringify(expected)) {
    throw new Error(`echo.wasm imports ${names.join(', ')}; expected exactly ${expected.join(', ')}`);
  }

  const cases = [
    ['empty input', Buffer.alloc(0)],
    ['one line', Buffer.from('hello, runner\n')],
    ['200000 bytes, more than three buffer fills', deterministicBytes(200000)],
  ];
  for (const [label, input] of cases) {
    const { exitCode, output } = runWasiCommand(module, input);
    if (exitCode !== 0) {
      throw new Error(`echo.wasm exited with status ${exitCode} on ${label}; expected 0`);
    }
    if (!output.equals(input)) {
      throw new Error(`echo.wasm wrote ${output.length} bytes for ${label} of ${input.length} bytes, and they differ`);
    }
  }
}

function runWasiCommand(module, input) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-echo-'));
  const inputPath = path.join(dir, 'stdin');
  const outputPath = path.join(dir, 'stdout');
  fs.writeFileSync(inputPath, input);
  const stdin = fs.openSync(inputPath, 'r');
  const stdout = fs.openSync(outputPath, 'w');
  try {
    const wasi = new WASI({ version: 'preview1', args: ['echo'], env: {}, stdin, stdout, returnOnExit: true });
    const instance = new WebAssembly.Instance(module, wasi.getImportObject());
    const exitCode = wasi.start(instance);
    return { exitCode, output: fs.readFileSync(outputPath) };
  } finally {
    fs.closeSync(stdin);
    fs.closeSync(stdout);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Returns bytes from a SHA-256 chain: no short repeating pattern, and the same on every run.
function deterministicBytes(length) {
  const chunks = [];
  let block = createHash('sha256').update('midcore echo test').digest();
  for (let produced = 0; produced < length; produced += block.length) {
    chunks.push(block);
    block = createHash('sha256').update(block).digest();
  }
  return Buffer.concat(chunks).subarray(0, length);
}

// Lists regular files and symlinks under dir, sorted by relative path.
function listFiles(dir) {
  const files = [];
  const walk = (current) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const entryPath = path.join(current, entry.name);
      const relative = path.relative(dir, entryPath).split(path.sep).join('/');
      if (entry.isDirectory()) {
        walk(entryPath);
      } else if (entry.isSymbolicLink()) {
        const target = fs.readlinkSync(entryPath);
        files.push({ relative, size: 0, sha256: `symlink -> ${target}`.padEnd(64) });
      } else {
        const bytes = fs.readFileSync(entryPath);
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        const mode = fs.statSync(entryPath).mode & 0o777;
        files.push({ relative, size: bytes.length, sha256, mode });
      }
    }
  };
  walk(dir);
  return files.sort(compareRelativePaths);
}

function compareRelativePaths(a, b) {
  if (a.relative === b.relative) return 0;
  return a.relative < b.relative ? -1 : 1;
}

function compareTrees(expectedDir, actualDir) {
  if (!fs.existsSync(actualDir)) {
    throw new Error(`${actualDir} does not exist; run make-example-bundle.sh without --check to build it`);
  }
  const expected = new Map(listFiles(expectedDir).map((file) => [file.relative, file]));
  const actual = new Map(listFiles(actualDir).map((file) => [file.relative, file]));
  const problems = [];
  for (const [relative, file] of expected) {
    const other = actual.get(relative);
    if (!other) {
      problems.push(`missing: ${relative}`);
    } else if (other.sha256 !== file.sha256) {
      problems.push(`content differs: ${relative}`);
    } else if ((other.mode & 0o100) !== (file.mode & 0o100)) {
      problems.push(`executable bit differs: ${relative}`);
    }
  }
  for (const relative of actual.keys()) {
    if (!expected.has(relative)) problems.push(`not produced by the build: ${relative}`);
  }
  if (problems.length > 0) {
    throw new Error(`${actualDir} differs from a fresh build:\n  ${problems.join('\n  ')}`);
  }
}

// Replaces outputDir with the staged bundle. An existing outputDir is removed
// only if it looks like a bundle (it contains app.asar), so a wrong argument
// cannot delete an unrelated folder.
function replaceOutput(stagedBundle, outputDir) {
  if (fs.existsSync(outputDir)) {
    if (!fs.existsSync(path.join(outputDir, 'app.asar'))) {
      throw new Error(`${outputDir} exists but contains no app.asar, so it is not replaced; pass an empty or bundle folder`);
    }
    fs.rmSync(outputDir, { recursive: true });
  }
  fs.mkdirSync(path.dirname(outputDir), { recursive: true });
  fs.cpSync(stagedBundle, outputDir, { recursive: true, verbatimSymlinks: true });
}

main().catch((error) => {
  console.error(`make-example-bundle: ${error.message}`);
  process.exit(1);
});
