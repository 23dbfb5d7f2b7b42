// Baseline for the launch-check benchmark: recomputes, in one Node process,
// the SHA-256 of every ASAR archive's header and of every entry through
// @electron/asar (packed entries and those in the .unpacked folder), plus the
// SHA-256 of every other file in the bundle. It covers the same files as
// `midcore-verify launch --mode full`, so both hash the same bytes.
//
// Usage: node launch-node-hash.mjs BUNDLE
// Prints the counts and one digest over all results, so no work can be skipped.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { extractFile, getRawHeader } from '@electron/asar';

// The signer writes these two files and excludes them from the manifest.
const MANIFEST_FILES = new Set(['build/integrity.json', 'build/integrity.pub.pem']);

function main() {
  const args = process.argv.slice(2);
  if (args.length !== 1) {
    throw new Error('usage: launch-node-hash.mjs BUNDLE');
  }
  const bundleDir = path.resolve(args[0]);
  const summary = createHash('sha256');
  const counts = { archives: 0, entries: 0, looseFiles: 0, bytes: 0 };

  // 1. Loose files, found by walking the bundle. Archive files and their
  //    .unpacked folders are hashed entry by entry in step 2 instead.
  const archives = [];
  for (const relative of listFiles(bundleDir)) {
    if (MANIFEST_FILES.has(relative)) continue;
    if (relative.endsWith('.asar')) {
      archives.push(relative);
      continue;
    }
    if (relative.split('/').some((component) => component.endsWith('.asar.unpacked'))) continue;
    const bytes = fs.readFileSync(path.join(bundleDir, relative));
    summary.update(`${relative}\0${createHash('sha256').update(bytes).digest('hex')}\n`);
    counts.looseFiles += 1;
    counts.bytes += bytes.length;
  }

  // 2. Archives: the header, then every file entry (links have no contents).
  for (const relative of archives) {
    const archive = path.join(bundleDir, relative);
    const { headerString } = getRawHeader(archive);
    summary.update(`${relative}\0header\0${createHash('sha256').update(headerString).digest('hex')}\n`);
    counts.archives += 1;
    counts.bytes += Buffer.byteLength(headerString);

    for (const entry of listEntries(JSON.parse(headerString))) {
      const bytes = extractFile(archive, entry, false);
      summary.update(`${relative}\0${entry}\0${createHash('sha256').update(bytes).digest('hex')}\n`);
      counts.entries += 1;
      counts.bytes += bytes.length;
    }
  }

  console.log(
    `archives ${counts.archives}, entries ${counts.entries}, loose files ${counts.looseFiles}, ` +
      `bytes ${counts.bytes}, digest ${summary.digest('hex')}`,
  );
}

// Lists the file entries (not directories or links) of an ASAR header, with
// `/`-separated paths from the archive root.
function listEntries(header) {
  const entries = [];
  const walk = (node, prefix) => {
    for (const [name, child] of Object.entries(node.files)) {
      const entryPath = prefix ? `${prefix}/${name}` : name;
      if (child.files) {
        walk(child, entryPath);
      } else if (child.link === undefined) {
        entries.push(entryPath);
      }
    }
  };
  walk(header, '');
  return entries;
}

// Lists regular files under dir as sorted `/`-separated relative paths.
function listFiles(dir) {
  const files = [];
  const walk = (current) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const entryPath = path.join(current, entry.name);
      if (entry.isDirectory()) {
        walk(entryPath);
      } else if (entry.isFile()) {
        files.push(path.relative(dir, entryPath).split(path.sep).join('/'));
      }
    }
  };
  walk(dir);
  return files.sort();
}

try {
  main();
} catch (error) {
  console.error(`launch-node-hash: ${error.message}`);
  process.exit(1);
}
