// Node baseline for the sandbox benchmark: the echo runner run by node:wasi
// inside worker_threads Workers, the way the shell runs runners today.
//
// Usage: node scripts/bench/sandbox-node.mjs ECHO.wasm [TASKS] [WORKERS]
// Prints the Worker start time, the per-task time (fresh WASI + instance per
// task, request and response through temporary files because node:wasi only
// takes file descriptors for stdio) and tasks per second over all workers.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { readFileSync, writeFileSync, openSync, closeSync, readFileSync as readFile, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WASI } from 'node:wasi';

if (isMainThread) {
  const [wasmPath, tasksArg = '20000', workersArg = '2'] = process.argv.slice(2);
  if (!wasmPath) {
    console.error('usage: node sandbox-node.mjs ECHO.wasm [TASKS] [WORKERS]');
    process.exit(2);
  }
  const tasks = Number(tasksArg);
  const workerCount = Number(workersArg);
  const bytes = readFileSync(wasmPath);

  // Worker start: spawn until the worker has compiled the module and is ready.
  const starts = [];
  const workers = [];
  for (let i = 0; i < workerCount; i++) {
    const t0 = performance.now();
    const worker = new Worker(new URL(import.meta.url), { workerData: { bytes, index: i } });
    await new Promise((resolve) => worker.once('message', resolve));
    starts.push(performance.now() - t0);
    workers.push(worker);
  }

  const perWorker = Math.ceil(tasks / workerCount);
  const t0 = performance.now();
  const results = await Promise.all(workers.map((worker) => new Promise((resolve) => {
    worker.once('message', resolve);
    worker.postMessage({ tasks: perWorker });
  })));
  const elapsed = (performance.now() - t0) / 1000;
  const total = perWorker * workerCount;
  const perTaskUs = results.reduce((sum, r) => sum + r.perTaskUs, 0) / results.length;
  console.log(`BENCH node worker start (spawn + compile echo): ${starts.map((s) => s.toFixed(1)).join(', ')} ms`);
  console.log(`BENCH node per task (new WASI + instance + run, 64-byte request): ${perTaskUs.toFixed(1)} us`);
  console.log(`BENCH node echo throughput on ${workerCount} workers: ${(total / elapsed).toFixed(0)} tasks/s (${total} tasks in ${elapsed.toFixed(2)} s)`);
  for (const worker of workers) await worker.terminate();
} else {
  const module = new WebAssembly.Module(workerData.bytes);
  const dir = mkdtempSync(join(tmpdir(), `sandbox-node-${workerData.index}-`));
  const requestPath = join(dir, 'request');
  const responsePath = join(dir, 'response');
  writeFileSync(requestPath, Buffer.alloc(64, 'x'));
  parentPort.postMessage('ready');
  parentPort.once('message', ({ tasks }) => {
    const t0 = performance.now();
    for (let i = 0; i < tasks; i++) {
      const stdin = openSync(requestPath, 'r');
      const stdout = openSync(responsePath, 'w');
      const wasi = new WASI({ version: 'preview1', args: ['echo'], env: {}, preopens: {}, stdin, stdout, returnOnExit: true });
      const instance = new WebAssembly.Instance(module, wasi.getImportObject());
      const code = wasi.start(instance);
      closeSync(stdin);
      closeSync(stdout);
      if (code !== 0 || readFile(responsePath).length !== 64) throw new Error(`echo failed: exit ${code}`);
    }
    const perTaskUs = ((performance.now() - t0) * 1000) / tasks;
    rmSync(dir, { recursive: true, force: true });
    parentPort.postMessage({ perTaskUs });
  });
}
