#!/usr/bin/env node
// The `cesar` command. npm links this file into node_modules/.bin, where it may be run by any Node on the PATH;
// the CLI itself is TypeScript for the project's own Node 24 (the `node` devDependency), so this launcher
// re-executes that Node on src/cli/main.ts and hands back its exit code. Plain JavaScript on purpose.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const projectNode = path.join(root, 'node_modules', 'node', 'bin', 'node');
const node = existsSync(projectNode) ? projectNode : process.execPath;
const child = spawn(node, [path.join(root, 'src', 'cli', 'main.ts'), ...process.argv.slice(2)], { stdio: 'inherit' });

// A terminal's Ctrl-C reaches the whole foreground process group, the child included; forwarding it as well
// would count as a second signal and skip the graceful shutdown. Signals sent to this process alone are passed on.
for (const signal of /** @type {const} */ (['SIGTERM', 'SIGINT', 'SIGHUP'])) {
  process.on(signal, () => {
    if (!(signal === 'SIGINT' && process.stdin.isTTY)) {
      child.kill(signal);
    }
  });
}
child.on('error', (error) => {
  process.stderr.write(`cesar: cannot start ${node}: ${error.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  process.exit(code ?? (signal === 'SIGINT' ? 130 : 1));
});
