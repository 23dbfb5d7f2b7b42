// Creates midcore-sign and midcore-verify wrappers around fixtures/fake-midcore.mjs in a
// temporary folder, and reads back the calls they recorded.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FAKE = fileURLToPath(new URL('../fixtures/fake-midcore.mjs', import.meta.url));

export function makeFakeTools() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midcore-fake-tools-'));
  const recordDir = path.join(dir, 'calls');
  fs.mkdirSync(recordDir);
  for (const tool of ['midcore-sign', 'midcore-verify']) {
    const wrapper = path.join(dir, tool);
    fs.writeFileSync(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${FAKE}" ${tool} "$@"\n`);
    fs.chmodSync(wrapper, 0o755);
  }
  return {
    dir,
    recordDir,
    sign: path.join(dir, 'midcore-sign'),
    verify: path.join(dir, 'midcore-verify'),
    calls() {
      return fs.readdirSync(recordDir).sort()
        .map((name) => JSON.parse(fs.readFileSync(path.join(recordDir, name), 'utf8')));
    },
  };
}
