/**
 * The whole job flow with openapi-fetch, typed by the types that openapi-typescript generates from openapi.yaml
 * (in this repository generated/openapi.d.ts):
 *
 *   node examples/typescript/flow.ts http://127.0.0.1:8000 meeting.mp3 [model]
 *
 * Uploads the file, polls the job, prints its SRT subtitles and its typed JSON transcript, finds it in the job
 * list, shows that a finished job cannot be canceled (409 problem), and deletes it.
 */
import { openAsBlob } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

import createClient from 'openapi-fetch';

import type { paths } from '../../generated/openapi.d.ts';

const [server = 'http://127.0.0.1:8000', file = '', model] = process.argv.slice(2);
const client = createClient<paths>({ baseUrl: server });

function fail(step: string, status: number, problem: unknown): never {
  process.stderr.write(`${step}: ${status} ${JSON.stringify(problem)}\n`);
  process.exit(1);
}

const audio = new File([await openAsBlob(file)], path.basename(file));
const created = await client.POST('/jobs', {
  body: { file: audio.name, ...(model ? { model } : {}) },
  // openapi-typescript types a binary field as its name; the form carries the file itself.
  bodySerializer: (body) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(body)) {
      form.append(name, name === 'file' ? audio : String(value));
    }
    return form;
  },
});
if (!created.data) {
  fail('submit', created.response.status, created.error);
}
let job = created.data;
while (job.status === 'pending' || job.status === 'processing') {
  await sleep(500);
  const polled = await client.GET('/jobs/{id}', { params: { path: { id: job.id } } });
  if (!polled.data) {
    fail('poll', polled.response.status, polled.error);
  }
  job = polled.data;
}
process.stdout.write(`job ${job.id} ${job.status}\n`);
if (job.status !== 'completed') {
  process.exit(1);
}
const params = { path: { id: job.id } };
const srt = await client.GET('/jobs/{id}/transcript/srt', { params, parseAs: 'text' });
if (srt.data === undefined) {
  fail('srt', srt.response.status, srt.error);
}
process.stdout.write(srt.data);
const transcript = await client.GET('/jobs/{id}/transcript', { params });
if (!transcript.data) {
  fail('transcript', transcript.response.status, transcript.error);
}
process.stdout.write(`text: ${transcript.data.text}\nsegments: ${transcript.data.segments.length}\n`);
const listed = await client.GET('/jobs', { params: { query: { limit: 100 } } });
if (!listed.data) {
  fail('list', listed.response.status, listed.error);
}
process.stdout.write(`listed: ${listed.data.jobs.some((listedJob) => listedJob.id === job.id)}\n`);
const canceled = await client.POST('/jobs/{id}/cancel', { params });
process.stdout.write(canceled.error ? `cancel: ${canceled.response.status} ${canceled.error.code}\n` : 'cancel: accepted\n');
const deleted = await client.DELETE('/jobs/{id}', { params });
if (deleted.error) {
  fail('delete', deleted.response.status, deleted.error);
}
const gone = await client.GET('/jobs/{id}', { params });
process.stdout.write(gone.data ? 'deleted: still there\n' : `deleted: ${gone.response.status}\n`);
