import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { jobForm, modelsDir, requireModel, startServer } from './support/harness.ts';
import type { JobBody, TestServer } from './support/harness.ts';

interface JobList {
  jobs: JobBody[];
  next_cursor: string | null;
}

describe('listing jobs', () => {
  let server: TestServer;
  const ids: string[] = [];
  before(async () => {
    server = await startServer();
    if (modelsDir() !== null) {
      for (let i = 0; i < 5; i++) {
        // Not audio: each job fails fast, which is all a listing needs.
        const response = await server.client.post('/jobs', { body: await jobForm('not-audio.mp3') });
        if (response.status === 202) {
          ids.push((response.json as JobBody).id);
        }
      }
    }
  });
  after(() => server.close());

  test('pages by cursor, newest first, without gaps or repeats', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: JobList = (await server.client.get(`/jobs?limit=2${cursor ? `&cursor=${cursor}` : ''}`)).json as JobList;
      assert.ok(page.jobs.length <= 2);
      seen.push(...page.jobs.map((job) => job.id));
      cursor = page.next_cursor;
    } while (cursor !== null);
    assert.deepEqual(seen, [...ids].reverse());
  });

  test('pages by offset and filters by status', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const page = (await server.client.get('/jobs?limit=2&offset=2')).json as JobList;
    assert.deepEqual(page.jobs.map((job) => job.id), [...ids].reverse().slice(2, 4));
    const completed = (await server.client.get('/jobs?status=completed')).json as JobList;
    assert.ok(completed.jobs.every((job) => job.status === 'completed'));
  });

  test('refuses a bad limit or a cursor not of the documented shape', async () => {
    for (const query of ['limit=0', 'limit=101', 'limit=abc', 'status=done', 'cursor=!!', `cursor=${Buffer.from('s1').toString('base64url')}`, 'cursor=12345678901']) {
      const response = await server.client.get(`/jobs?${query}`);
      assert.equal(response.status, 400, query);
      assert.equal((response.json as { code: string }).code, 'invalid_request', query);
    }
  });

  test('offset with a cursor skips that many jobs after the cursor', async (t) => {
    if (!requireModel(t)) {
      return;
    }
    const first = (await server.client.get('/jobs?limit=1')).json as JobList;
    assert.ok(first.next_cursor);
    const page = (await server.client.get(`/jobs?limit=2&offset=1&cursor=${first.next_cursor}`)).json as JobList;
    assert.deepEqual(page.jobs.map((job) => job.id), [...ids].reverse().slice(2, 4));
    // Any cursor of the documented shape is a position: one past every job lists from the newest.
    const fromTop = (await server.client.get('/jobs?limit=5&cursor=zzzzzzzzzz')).json as JobList;
    assert.deepEqual(fromTop.jobs.map((job) => job.id), [...ids].reverse());
  });

  test('an unknown job id is 404 job_not_found', async () => {
    const response = await server.client.get('/jobs/00000000-0000-4000-8000-000000000000');
    assert.equal(response.status, 404);
    assert.equal((response.json as { code: string }).code, 'job_not_found');
  });
});
