/**
 * A process that opens a write transaction, changes a job, and SIGKILLs itself before committing. Run by the
 * crash-mid-transaction test: `node die-in-transaction.ts <db file> <job id>`.
 */
import { openDatabase } from '../../src/jobs/database.ts';

const [file, id] = process.argv.slice(2);
if (!file || !id) {
  throw new Error('usage: die-in-transaction.ts <db file> <job id>');
}
const db = await openDatabase(file);
await db.transaction(async (tx) => {
  await tx.run("UPDATE jobs SET status = 'failed', error_code = 'internal_error' WHERE id = ?", [id]);
  process.stdout.write('updated\n');
  process.kill(process.pid, 'SIGKILL');
  await new Promise(() => undefined);
});
