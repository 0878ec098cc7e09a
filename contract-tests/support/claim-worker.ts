/**
 * A separate process that claims jobs from a database until none is left, then prints the ids it got, one per
 * line. Run by the racing-claimers test: `node claim-worker.ts <db file> <owner>`.
 */
import { openDatabase } from '../../src/jobs/database.ts';
import { createJobStore } from '../../src/jobs/job-store.ts';

const [file, owner] = process.argv.slice(2);
if (!file || !owner) {
  throw new Error('usage: claim-worker.ts <db file> <owner>');
}
const db = await openDatabase(file);
const store = createJobStore(db);
const claimed: string[] = [];
for (;;) {
  const job = await store.claim(owner, Date.now(), 60_000);
  if (!job) {
    break;
  }
  claimed.push(job.id);
}
await db.close();
process.stdout.write(claimed.map((id) => `${id}\n`).join(''));
