// tsc does not keep the executable bit; npm links bin entries but a direct
// ./dist/src/main.js call (systemd ExecStart, tests) needs it.
import { chmodSync } from 'node:fs';
chmodSync(new URL('../dist/src/main.js', import.meta.url), 0o755);
