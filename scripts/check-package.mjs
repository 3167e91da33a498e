// The package as a user gets it: `npm pack`, installed into an empty
// directory (dependencies from the registry, nothing from this checkout),
// then `sms-router --version` and `sms-router doctor` on the demo config it
// ships. Run by .ci/run after the tests; exits non-zero when any step fails.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const work = mkdtempSync(path.join(tmpdir(), 'smsr-pack-'));
const run = (cmd, args, cwd) => {
  process.stdout.write(`$ ${cmd} ${args.join(' ')}\n`);
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
};

try {
  // The tests have just built dist/ (npm test builds first); packing does not build again.
  const packed = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], repo));
  const tarball = path.join(work, packed[0].filename);
  process.stdout.write(`packed ${packed[0].filename}: ${packed[0].entryCount} files, ${packed[0].size} bytes\n`);
  for (const f of packed[0].files.map((f) => f.path)) {
    if (/^(test|bench|src)\//.test(f) || f.startsWith('dist/test/')) throw new Error(`the package carries ${f}, which users do not need`);
  }

  const app = path.join(work, 'app');
  mkdirSync(app);
  run('npm', ['init', '-y'], app);
  run('npm', ['install', '--no-audit', '--no-fund', tarball], app);

  const bin = path.join(app, 'node_modules', '.bin', 'sms-router');
  const version = run(bin, ['--version'], app).trim();
  const expected = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')).version;
  if (version !== expected) throw new Error(`--version printed ${JSON.stringify(version)}, expected ${expected}`);
  process.stdout.write(`sms-router --version: ${version}\n`);

  const demo = path.join(app, 'node_modules', 'sms-router', 'config', 'demo.toml');
  process.stdout.write(run(bin, ['doctor', '--config', demo], app));
  process.stdout.write('package check: the packed tarball installs and runs\n');
} finally {
  rmSync(work, { recursive: true, force: true });
}
