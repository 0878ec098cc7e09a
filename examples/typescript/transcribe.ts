/**
 * Submit a file to Cesar, poll the job, print its transcript: with openapi-fetch, typed by the types that
 * openapi-typescript generates from openapi.yaml (`npx openapi-typescript openapi.yaml -o openapi.d.ts`; in this
 * repository they are generated/openapi.d.ts).
 *
 *   node examples/typescript/transcribe.ts http://127.0.0.1:8000 meeting.mp3 [model] [format]
 */
import { openAsBlob } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

import createClient from 'openapi-fetch';

import type { components, paths } from '../../generated/openapi.d.ts';

type ResultFormat = components['schemas']['ResultFormat'];

const [server = 'http://127.0.0.1:8000', file = '', model, format = 'txt'] = process.argv.slice(2);
const client = createClient<paths>({ baseUrl: server });

const audio = await openAsBlob(file);
const fileName = path.basename(file);
const created = await client.POST('/jobs', {
  body: { file: fileName, ...(model ? { model } : {}) },
  // multipart/form-data: the typed body names the fields, the form carries the file.
  bodySerializer: () => {
    const form = new FormData();
    if (model) {
      form.append('model', model);
    }
    form.append('file', audio, fileName);
    return form;
  },
});
if (!created.data) {
  process.stderr.write(`submission refused: ${JSON.stringify(created.error)}\n`);
  process.exit(1);
}
let job = created.data;
while (job.status === 'pending' || job.status === 'processing') {
  await sleep(500);
  const polled = await client.GET('/jobs/{id}', { params: { path: { id: job.id } } });
  if (!polled.data) {
    process.stderr.write(`polling failed: ${JSON.stringify(polled.error)}\n`);
    process.exit(1);
  }
  job = polled.data;
  process.stderr.write(`job ${job.id} ${job.status} ${job.progress}%\n`);
}
if (job.status !== 'completed') {
  process.stderr.write(`job ${job.status}: ${JSON.stringify(job.error)}\n`);
  process.exit(1);
}
const result = await client.GET('/jobs/{id}/result', {
  params: { path: { id: job.id }, query: { format: format as ResultFormat } },
  parseAs: 'text',
});
if (result.data === undefined) {
  process.stderr.write(`no transcript: ${JSON.stringify(result.error)}\n`);
  process.exit(1);
}
process.stdout.write(result.data);
