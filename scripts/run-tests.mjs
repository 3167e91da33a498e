// Runs every compiled *.test.js under dist/test with Node's test runner.
// (Node 20's `node --test DIR` would also load the fakes and helpers as tests.)
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? find(path.join(dir, e.name)) : e.name.endsWith('.test.js') ? [path.join(dir, e.name)] : [],
  );
}

// `npm run test:crash` (SMSR_TESTS=crash) runs only the crash-point suite, to repeat it on its own.
const only = process.env.SMSR_TESTS === 'crash' ? 'crash-points.test.js' : undefined;
const files = find('dist/test')
  .filter((f) => only === undefined || path.basename(f) === only)
  .sort();
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...process.argv.slice(2), ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
