import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { chromium } from 'playwright-core';
import type { BrowserContext, Locator, Page } from 'playwright-core';

import { loadSpec } from '../src/http/app.ts';
import { requireTool } from './support/cli.ts';
import { FIXTURES, requireModel, startServer, tempDir, waitForJob, words } from './support/harness.ts';
import type { TestServer } from './support/harness.ts';

const CHROMIUM = process.env.CESAR_TEST_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Every operation of the spec as Swagger UI titles it: paths by route, top-level webhooks by name. */
function specOperations(): string[] {
  const spec = loadSpec() as ReturnType<typeof loadSpec> & { webhooks?: Record<string, object> };
  const operations: string[] = [];
  for (const [route, item] of [...Object.entries(spec.paths ?? {}), ...Object.entries(spec.webhooks ?? {})]) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch', 'head', 'options']) {
      if (item && method in item) {
        operations.push(`${method.toUpperCase()} ${route}`);
      }
    }
  }
  return operations.sort();
}

describe('the Swagger UI at /docs, in headless Chromium', () => {
  test('renders every operation of the spec, and "Try it out" on GET /health shows a 200', async (t) => {
    if (!requireModel(t) || !requireTool(t, `Chromium at ${CHROMIUM}`, existsSync(CHROMIUM), 'apt-get install chromium')) {
      return;
    }
    const server = await startServer();
    const profile = await tempDir('cesar-chromium-');
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
    t.after(async () => {
      await context.close();
      await server.close();
      await rm(profile, { recursive: true, force: true });
    });
    const page = await context.newPage();
    await page.goto(`${server.client.baseUrl}/docs/`);
    await page.locator('.opblock').first().waitFor();
    const blocks = page.locator('.opblock');
    const rendered: string[] = [];
    for (let index = 0; index < (await blocks.count()); index += 1) {
      const block = blocks.nth(index);
      rendered.push(`${await block.locator('.opblock-summary-method').textContent()} ${await block.locator('.opblock-summary-path').getAttribute('data-path')}`);
    }
    assert.deepEqual(rendered.sort(), specOperations());

    const health = page.locator('.opblock', { has: page.locator('.opblock-summary-path[data-path="/health"]') });
    await health.locator('.opblock-summary').click();
    await health.locator('button.try-out__btn').click();
    await health.locator('button.execute').click();
    const status = health.locator('.live-responses-table tbody .response-col_status').first();
    await status.waitFor();
    assert.equal((await status.textContent())?.trim(), '200');
    assert.match((await health.locator('.live-responses-table tbody .response-col_description').first().textContent()) ?? '', /"status": "ready"/);
  });

  test('works with no internet access, and "Try it out" uploads a file to POST /jobs (202), then shows the job and its transcript', async (t) => {
    if (!requireModel(t) || !requireTool(t, `Chromium at ${CHROMIUM}`, existsSync(CHROMIUM), 'apt-get install chromium')) {
      return;
    }
    const server = await startServer();
    const { context, page, offSite } = await openDocs(t, server);
    t.after(async () => {
      await context.close();
      await server.close();
    });

    const create = operation(page, 'post', '/jobs');
    await create.locator('.opblock-summary').click();
    await create.locator('button.try-out__btn').click();
    // Only the file, as a person would: every other field left as the form shows it.
    await create.locator('input[type=file]').setInputFiles(path.join(FIXTURES, 'jfk.ogg'));
    const created = await execute(create);
    assert.equal(created.status, '202', created.body);
    const id = /"id": "([0-9a-f-]{36})"/.exec(created.body)?.[1];
    assert.ok(id, created.body);
    assert.match(created.body, /"file_name": "jfk.ogg"/);
    const job = await waitForJob(server.client, id, ['completed', 'failed']);
    assert.equal(job.status, 'completed', JSON.stringify(job.error));

    const getJob = operation(page, 'get', '/jobs/{id}');
    await getJob.locator('.opblock-summary').click();
    await getJob.locator('button.try-out__btn').click();
    await getJob.locator('tr[data-param-name="id"] input').fill(id);
    const shown = await execute(getJob);
    assert.equal(shown.status, '200', shown.body);
    assert.match(shown.body, /"status": "completed"/);

    const result = operation(page, 'get', '/jobs/{id}/result');
    await result.locator('.opblock-summary').click();
    await result.locator('button.try-out__btn').click();
    await result.locator('tr[data-param-name="id"] input').fill(id);
    const transcript = await execute(result);
    assert.equal(transcript.status, '200', transcript.body);
    // The answer is an attachment (Content-Disposition): Swagger UI offers it as a download of its blob.
    const download = result.locator('.live-responses-table .response-col_description a[download]').first();
    assert.equal(await download.getAttribute('download'), `${id}.txt`);
    const href = (await download.getAttribute('href')) ?? '';
    const text = await page.evaluate(async (url) => (await fetch(url)).text(), href);
    assert.ok(words(text).join(' ').includes('ask not what your country can do for you'), text);

    const list = operation(page, 'get', '/jobs');
    await list.locator('.opblock-summary').click();
    await list.locator('button.try-out__btn').click();
    const listed = await execute(list);
    assert.equal(listed.status, '200', listed.body);
    assert.match(listed.body, new RegExp(id));

    assert.deepEqual(offSite, [], 'the docs page asked for something off this server');
  });
});

/** Opens /docs with every request to another host refused (and recorded), as on a machine without internet. */
async function openDocs(t: { after: (fn: () => Promise<void>) => void }, server: TestServer): Promise<{ context: BrowserContext; page: Page; offSite: string[] }> {
  const profile = await tempDir('cesar-chromium-');
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
  t.after(() => rm(profile, { recursive: true, force: true }));
  const offSite: string[] = [];
  const origin = new URL(server.client.baseUrl).origin;
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin || url.startsWith('data:') || url.startsWith('blob:')) {
      await route.continue();
      return;
    }
    offSite.push(url);
    await route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  await page.goto(`${server.client.baseUrl}/docs/`);
  await page.locator('.opblock').first().waitFor();
  return { context, page, offSite };
}

function operation(page: Page, method: string, route: string): Locator {
  return page.locator(`.opblock.opblock-${method}`, { has: page.locator(`.opblock-summary-path[data-path="${route}"]`) });
}

/** Presses Execute and reads the live response's status and body. */
async function execute(block: Locator): Promise<{ status: string; body: string }> {
  await block.locator('button.execute').click();
  const status = block.locator('.live-responses-table tbody .response-col_status').first();
  await status.waitFor({ timeout: 60_000 });
  const body = block.locator('.live-responses-table tbody .response-col_description .highlight-code, .live-responses-table tbody .response-col_description pre').first();
  return { status: (await status.textContent())?.trim() ?? '', body: (await body.textContent()) ?? '' };
}
