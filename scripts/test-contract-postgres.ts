/**
 * The contract suite on PostgreSQL + S3 (`npm run test:contract:postgres`): every test server gets its own database
 * and bucket (contract-tests/support/backends.ts), PostgreSQL and moto started by the test process itself. Files
 * that cannot mean anything on these backends are left out here, by name, each with its reason; everything else runs
 * as on the SQLite run (`npm run test:contract`). Extra arguments go to `node --test`.
 */
import { spawn } from 'node:child_process';
import { globSync } from 'node:fs';

/** Left out of this run; each still runs on the SQLite run. */
export const SQLITE_ONLY: Record<string, string> = {
  // Tied to SQLite itself.
  'contract-tests/queue.store.test.ts': 'opens SQLite files and drives the SQLite claim SQL with a manual clock; its clock-free cases run on both engines in queue.backends',
  'contract-tests/reliability/crash-recovery.test.ts': 'kills the server mid-write and checks cesar.db (integrity check, rows) afterwards',
  'contract-tests/reliability/shutdown.test.ts': 'reads the job rows and the integrity of cesar.db after a shutdown',
  'contract-tests/reliability/worker-crash.test.ts': 'moves an injected manual clock past the retry delay; pg-boss keeps its time in the database',
  'contract-tests/jobs.retention.test.ts': 'moves an injected manual clock past the retention time; PostgreSQL keeps its own time',
  'contract-tests/cli.serve.test.ts': 'runs `cesar serve` itself (not through the harness) and asserts cesar.db in its data directory',
  // Start no server: they test the same code on both runs, or both backends themselves.
  'contract-tests/cli.models.test.ts': 'starts no server (model downloads)',
  'contract-tests/cli.transcribe.test.ts': 'starts no server (offline transcription)',
  'contract-tests/config.intake.test.ts': 'starts no server (configuration parsing)',
  'contract-tests/config.table.test.ts': 'starts no server (configuration table)',
  'contract-tests/net.safe-request.test.ts': 'starts no server (URL fetching)',
  'contract-tests/net.url-policy.test.ts': 'starts no server (URL policy)',
  'contract-tests/spec.enum-names.test.ts': 'starts no server (spec linting)',
  'contract-tests/transcription.hallucination-guard.test.ts': 'starts no server (engine logic)',
  'contract-tests/transcription.language-vote.test.ts': 'starts no server (engine logic)',
  'contract-tests/transcription.segmentation.test.ts': 'starts no server (engine logic)',
  'contract-tests/transcription.windowing.test.ts': 'starts no server (engine logic)',
  'contract-tests/queue.backends.test.ts': 'runs its cases on SQLite and PostgreSQL itself',
  'contract-tests/storage.blob-store.test.ts': 'runs its cases on local files and S3 itself',
  'contract-tests/postgres.nodes.test.ts': 'chooses PostgreSQL itself for every server it starts',
};

const all = globSync('contract-tests/**/*.test.ts').sort();
for (const file of Object.keys(SQLITE_ONLY)) {
  if (!all.includes(file)) {
    throw new Error(`${file} is listed as left out of the PostgreSQL run but does not exist`);
  }
}
const files = all.filter((file) => !(file in SQLITE_ONLY));
process.stdout.write(`PostgreSQL + S3 run: ${files.length} test files; left out (they run on SQLite):\n`);
for (const [file, reason] of Object.entries(SQLITE_ONLY)) {
  process.stdout.write(`  ${file}: ${reason}\n`);
}

const child = spawn(
  process.execPath,
  ['--test', '--test-isolation=none', '--test-timeout=300000', '--test-reporter=spec', ...process.argv.slice(2), ...files],
  { stdio: 'inherit', env: { ...process.env, CESAR_TEST_BACKEND: 'postgres-s3' } },
);
child.on('exit', (code, signal) => {
  process.exitCode = code ?? (signal ? 1 : 0);
});
